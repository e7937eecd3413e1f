-- Replay dead letters. A dead order is placed again with a fresh attempt budget (its record
-- keeps its history and its count of ambiguous attempts: a later 409 must still be read as a
-- conflict); a dead callback is sent again, the order itself untouched.
-- Invariant: only a dead letter is replayed, once per death; a resend of the same request (its
-- nonce) gets the first run's reply.
-- KEYS: dead, queued, seq, queue, dead_callback, cb_waiting, reply, then the record of each
--       key (in ARGV's order)
-- ARGV: clock, deadline_in_ms, nonce, parts_json, batch, stage (submit|callback|any),
--       reply_ttl_s, keys...
local DEAD, QUEUED, SEQ, QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local DEAD_CALLBACK, CB_WAITING, REPLY, FIRST_RECORD = KEYS[5], KEYS[6], KEYS[7], 8
local NOW_MS = clock_ms(ARGV[1])
local NOW_ISO, DEADLINE_MS = iso(NOW_MS), NOW_MS + tonumber(ARGV[2])
local NONCE, PARTS, BATCH = ARGV[3], cjson.decode(ARGV[4]), tonumber(ARGV[5])
local STAGE, REPLY_TTL_S, FIRST_KEY = ARGV[6], tonumber(ARGV[7]), 8

local before = remembered(REPLY)
if before then return before end
local placed, replayed = {}, {}
for i = FIRST_KEY, #ARGV do
  local key, rk = ARGV[i], KEYS[FIRST_RECORD + i - FIRST_KEY]
  if STAGE ~= 'callback' and redis.call('HGET', rk, 'status') == 'dead'
      and redis.call('ZREM', DEAD, key) == 1 then
    redis.call('HDEL', rk, 'dead_stage', 'dead_reason', 'died_at', 'http_status', 'lease',
      'sending', 'next_attempt_at')
    redis.call('HSET', rk, 'status', 'queued', 'attempts', 0, 'deadline_ms', DEADLINE_MS,
      'updated_at', NOW_ISO, 'replayed_at', NOW_ISO)
    redis.call('HINCRBY', rk, 'replays', 1)
    -- The order.failed event is moot now: a new event comes when the order ends again.
    if redis.call('ZREM', DEAD_CALLBACK, key) == 1 then redis.call('HSET', rk, 'callback', 'none') end
    redis.call('ZADD', QUEUED, NOW_MS, key)
    placed[#placed + 1] = key
    replayed[#replayed + 1] = key
  elseif STAGE ~= 'submit' and redis.call('ZREM', DEAD_CALLBACK, key) == 1 then
    redis.call('HSET', rk, 'callback', 'pending', 'cb_attempts', 0, 'updated_at', NOW_ISO)
    redis.call('HDEL', rk, 'cb_died_at')
    redis.call('ZADD', CB_WAITING, NOW_MS, key)
    replayed[#replayed + 1] = key
  end
end
if #placed > 0 then push_tickets(QUEUE, SEQ, NONCE, PARTS, placed, BATCH) end
return remember(REPLY, replayed, REPLY_TTL_S)
