-- Replay dead letters. A dead order is placed again with a fresh attempt budget (its record
-- keeps its history and its count of ambiguous attempts: a later 409 must still be read as a
-- conflict); a dead callback is sent again, the order itself untouched.
-- Invariant: only a dead letter is replayed, once per death.
-- KEYS: dead, queued, seq, queue, dead_callback, cb_waiting
-- ARGV: now_ms, now_iso, deadline_ms, nonce, parts_json, batch, record_prefix, stage
--       (submit|callback|any), keys...
local now, now_iso, deadline = ARGV[1], ARGV[2], ARGV[3]
local nonce, parts, batch, prefix = ARGV[4], cjson.decode(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local stage = ARGV[8]
local placed, replayed = {}, {}
for i = 9, #ARGV do
  local key = ARGV[i]
  local rk = prefix .. key
  if stage ~= 'callback' and redis.call('HGET', rk, 'status') == 'dead'
      and redis.call('ZREM', KEYS[1], key) == 1 then
    redis.call('HDEL', rk, 'dead_stage', 'dead_reason', 'died_at', 'http_status', 'lease',
      'sending', 'next_attempt_at')
    redis.call('HSET', rk, 'status', 'queued', 'attempts', 0, 'deadline_ms', deadline,
      'updated_at', now_iso, 'replayed_at', now_iso)
    redis.call('HINCRBY', rk, 'replays', 1)
    -- The order.failed event is moot now: a new event comes when the order ends again.
    if redis.call('ZREM', KEYS[5], key) == 1 then redis.call('HSET', rk, 'callback', 'none') end
    redis.call('ZADD', KEYS[2], now, key)
    placed[#placed + 1] = key
    replayed[#replayed + 1] = key
  elseif stage ~= 'submit' and redis.call('ZREM', KEYS[5], key) == 1 then
    redis.call('HSET', rk, 'callback', 'pending', 'cb_attempts', 0, 'updated_at', now_iso)
    redis.call('HDEL', rk, 'cb_died_at')
    redis.call('ZADD', KEYS[6], now, key)
    replayed[#replayed + 1] = key
  end
end
if #placed > 0 then push_tickets(KEYS[4], KEYS[3], nonce, parts, placed, batch) end
return replayed
