-- Note that a worker holds a message naming these orders and waits for room to claim them, or
-- renew that note. The pump republishes an order whose note lapsed (its worker died with the
-- message) and never one whose note is alive (the message only waits inside a worker).
-- Invariant: only orders still queued are noted; claiming, or the end of the message, removes
-- the note (unreserve.lua), so a note never outlives what it stands for by more than a lease.
-- KEYS: queued, reserved
-- ARGV: lease_ms, keys...
-- Returns how many orders were noted.
local QUEUED, RESERVED = KEYS[1], KEYS[2]
local LEASE_MS = tonumber(ARGV[1])
local t = redis.call('TIME')
local until_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + LEASE_MS

local n = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', QUEUED, ARGV[i]) then
    redis.call('ZADD', RESERVED, until_ms, ARGV[i])
    n = n + 1
  end
end
return n
