-- Take the callbacks a message names, for one worker, under a lease.
-- Invariant: a callback is sent by at most one worker at a time, and only while pending.
-- KEYS: cb_queued, cb_leases
-- ARGV: expiry_ms, token, record_prefix, keys...
local out = {}
for i = 4, #ARGV do
  local key = ARGV[i]
  local rk = ARGV[3] .. key
  if redis.call('ZREM', KEYS[1], key) == 1 and redis.call('HGET', rk, 'callback') == 'pending' then
    redis.call('ZADD', KEYS[2], ARGV[1], key)
    redis.call('HSET', rk, 'cb_lease', ARGV[2])
    local f = redis.call('HMGET', rk, 'cb_event', 'cb_id', 'callback_url', 'cb_attempts')
    out[#out + 1] = key
    for _, v in ipairs(f) do out[#out + 1] = v or '' end
  end
end
return out
