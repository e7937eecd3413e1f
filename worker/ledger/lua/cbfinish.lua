-- Record how a callback attempt ended: delivered, to be tried again, or dead.
-- Invariants: only the lease holder records it; a delivered callback of a completed order
-- makes the order `delivered`; a failed callback never touches the order's placement.
-- KEYS: cb_leases, cb_waiting, dead_callback, counters
-- ARGV: key, token, mode (delivered|retry|dead), score_ms, record_prefix, now_iso, error,
--       http_status, counter
local key, token, mode, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rk = ARGV[5] .. key
if redis.call('HGET', rk, 'cb_lease') ~= token then return 0 end
redis.call('ZREM', KEYS[1], key)
redis.call('HSET', rk, 'cb_lease', '', 'updated_at', ARGV[6])
redis.call('HINCRBY', KEYS[4], ARGV[9], 1)
if mode == 'delivered' then
  redis.call('HSET', rk, 'callback', 'delivered', 'cb_delivered_at', ARGV[6])
  redis.call('HDEL', rk, 'cb_last_error', 'cb_http_status', 'cb_event')
  if redis.call('HGET', rk, 'status') == 'completed' then
    redis.call('HSET', rk, 'status', 'delivered')
  end
  return 1
end
redis.call('HINCRBY', rk, 'cb_attempts', 1)
redis.call('HSET', rk, 'cb_last_error', ARGV[7], 'cb_http_status', ARGV[8])
if mode == 'retry' then
  redis.call('ZADD', KEYS[2], score, key)
else
  redis.call('HSET', rk, 'callback', 'failed', 'cb_died_at', ARGV[6])
  redis.call('ZADD', KEYS[3], score, key)
end
return 1
