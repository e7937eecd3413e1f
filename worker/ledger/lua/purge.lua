-- Forget dead letters for good: a dead order's record, history and entries; a dead callback's
-- entry (its order, which was placed, keeps its record).
-- Invariant: only dead letters are purged (a live order would lose its place in the pipeline);
-- a resend of the same request (its id) gets the first run's reply.
-- KEYS: dead, dead_callback, reply, then 2 per key (in ARGV's order): its record, its history
-- ARGV: reply_ttl_s, keys...
local DEAD, DEAD_CALLBACK, REPLY, FIRST_RECORD = KEYS[1], KEYS[2], KEYS[3], 4
local REPLY_TTL_S, FIRST_KEY = tonumber(ARGV[1]), 2

local before = remembered(REPLY)
if before then return before end
local purged = {}
for i = FIRST_KEY, #ARGV do
  local key, n = ARGV[i], i - FIRST_KEY
  local rk, hk = KEYS[FIRST_RECORD + 2 * n], KEYS[FIRST_RECORD + 2 * n + 1]
  local was_callback = redis.call('ZREM', DEAD_CALLBACK, key) == 1
  if redis.call('HGET', rk, 'status') == 'dead' then
    redis.call('DEL', rk, hk)
    redis.call('ZREM', DEAD, key)
    purged[#purged + 1] = key
  elseif was_callback then
    redis.call('HSET', rk, 'callback', 'failed')
    purged[#purged + 1] = key
  end
end
return remember(REPLY, purged, REPLY_TTL_S)
