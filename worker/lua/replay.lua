-- Put dead orders back on the queue with a fresh attempt budget.
-- Invariant: only a dead order is replayed, once per death; its record keeps its history and
-- its count of ambiguous attempts (a later 409 must still be read as a conflict).
-- KEYS: dead, queued, seq, queue
-- ARGV: now_ms, now_iso, deadline_ms, nonce, parts_json, batch, record_prefix, keys...
local now, now_iso, deadline = ARGV[1], ARGV[2], ARGV[3]
local nonce, parts, batch, prefix = ARGV[4], cjson.decode(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local replayed = {}
for i = 8, #ARGV do
  local key = ARGV[i]
  local rk = prefix .. key
  if redis.call('HGET', rk, 'status') == 'dead' and redis.call('ZREM', KEYS[1], key) == 1 then
    redis.call('HDEL', rk, 'dead_stage', 'dead_reason', 'died_at', 'http_status', 'lease',
      'sending', 'next_attempt_at')
    redis.call('HSET', rk, 'status', 'queued', 'attempts', 0, 'deadline_ms', deadline,
      'updated_at', now_iso, 'replayed_at', now_iso)
    redis.call('HINCRBY', rk, 'replays', 1)
    redis.call('ZADD', KEYS[2], now, key)
    replayed[#replayed + 1] = key
  end
end
if #replayed > 0 then push_tickets(KEYS[4], KEYS[3], nonce, parts, replayed, batch) end
return replayed
