-- Take the orders a message names, for one worker, under a lease.
-- Invariant: an order is held by at most one worker at a time, and only an order that is
-- queued (never one that is completed, dead, waiting for a retry or held by another) is taken.
-- KEYS: queued, leases
-- ARGV: expiry_ms, token, now_iso, worker, record_prefix, keys...
local expiry, token, now_iso, worker, prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local out = {}
for i = 6, #ARGV do
  local key = ARGV[i]
  local rk = prefix .. key
  if redis.call('ZREM', KEYS[1], key) == 1 then
    local status = redis.call('HGET', rk, 'status')
    if status and status ~= 'completed' and status ~= 'delivered' and status ~= 'dead' then
      redis.call('ZADD', KEYS[2], expiry, key)
      redis.call('HSET', rk, 'status', 'submitting', 'lease', token, 'worker', worker,
        'updated_at', now_iso)
      redis.call('HDEL', rk, 'next_attempt_at', 'waiting_for')
      local f = redis.call('HMGET', rk, 'payload', 'account_id', 'order_id', 'attempts',
        'ambiguous_attempts', 'created_ms', 'deadline_ms', 'callback_url')
      out[#out + 1] = key
      for _, v in ipairs(f) do out[#out + 1] = v or '' end
    end
  end
end
return out
