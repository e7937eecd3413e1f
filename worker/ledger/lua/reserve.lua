-- Note that a worker holds a message naming these orders and waits for room to claim them, or
-- renew that note. The pump republishes an order whose note lapsed (its worker died with the
-- message) and never one whose note is alive (the message only waits inside a worker).
-- Invariant: only orders still queued are noted; claiming, or the end of the message, removes
-- the note (unreserve.lua), so a note never outlives what it stands for by more than a lease.
-- KEYS: queued, reserved
-- ARGV: clock, lease_ms, keys...
-- Returns how many orders were noted.
local QUEUED, RESERVED = KEYS[1], KEYS[2]
local UNTIL_MS = clock_ms(ARGV[1]) + tonumber(ARGV[2])

local n = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', QUEUED, ARGV[i]) then
    redis.call('ZADD', RESERVED, UNTIL_MS, ARGV[i])
    n = n + 1
  end
end
return n
