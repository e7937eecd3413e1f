-- Extend the leases a live worker still holds (of orders, or of callbacks).
-- Invariant: a lease is extended only by its holder (same token), so a lease taken over after
-- an expiry is never given back to the worker that lost it. Sent again, it extends them again.
-- KEYS: leases zset, then the record of each key (in ARGV's order)
-- ARGV: clock, lease_ms, lease_field (lease | cb_lease), then pairs: key, token
local LEASES, FIRST_RECORD = KEYS[1], 2
local EXPIRY_MS, LEASE_FIELD = clock_ms(ARGV[1]) + tonumber(ARGV[2]), ARGV[3]
local FIRST_PAIR = 4

local renewed = 0
for n = 0, #KEYS - FIRST_RECORD do
  local key, token = ARGV[FIRST_PAIR + 2 * n], ARGV[FIRST_PAIR + 2 * n + 1]
  if redis.call('HGET', KEYS[FIRST_RECORD + n], LEASE_FIELD) == token then
    redis.call('ZADD', LEASES, 'XX', EXPIRY_MS, key)
    renewed = renewed + 1
  end
end
return renewed
