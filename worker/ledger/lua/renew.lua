-- Extend the leases a live worker still holds (of orders, or of callbacks).
-- Invariant: a lease is extended only by its holder (same token), so a lease taken over after
-- an expiry is never given back to the worker that lost it.
-- KEYS: leases zset
-- ARGV: expiry_ms, record_prefix, lease_field (lease | cb_lease), then pairs: key, token
local renewed = 0
for i = 4, #ARGV, 2 do
  if redis.call('HGET', ARGV[2] .. ARGV[i], ARGV[3]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
