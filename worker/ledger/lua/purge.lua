-- Forget dead letters for good: a dead order's record, history and entries; a dead callback's
-- entry (its order, which was placed, keeps its record).
-- Invariant: only dead letters are purged (a live order would lose its place in the pipeline).
-- KEYS: dead, dead_callback, then 2 per key (in ARGV's order): its record, its history
-- ARGV: keys...
local DEAD, DEAD_CALLBACK, FIRST_RECORD = KEYS[1], KEYS[2], 3

local purged = {}
for i, key in ipairs(ARGV) do
  local rk, hk = KEYS[FIRST_RECORD + 2 * (i - 1)], KEYS[FIRST_RECORD + 2 * (i - 1) + 1]
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
return purged
