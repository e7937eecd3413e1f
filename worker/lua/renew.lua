-- Extend the leases a live worker still holds.
-- Invariant: a lease is extended only by its holder (same token), so a lease taken over after
-- an expiry is never given back to the worker that lost it.
-- KEYS: leases
-- ARGV: expiry_ms, record_prefix, then pairs: key, token
local renewed = 0
for i = 3, #ARGV, 2 do
  if redis.call('HGET', ARGV[2] .. ARGV[i], 'lease') == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
    renewed = renewed + 1
  end
end
return renewed
