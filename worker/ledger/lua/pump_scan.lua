-- What the pump may have to move: entries due in a schedule, leases past their expiry, and
-- notes of messages held by workers that stopped renewing them (reserve.lua).
-- Read first, so that the scripts that move them can name their records in KEYS; they check
-- each entry again when they run (ZREM decides who moves it). Changes nothing.
-- KEYS: waiting, leases, cb_waiting, cb_leases, queue, reserved
-- ARGV: clock, limit
-- Returns {due, lost, cb_due, cb_lost (lists of keys), queue_empty (0|1), orphaned (keys)}.
local WAITING, LEASES, CB_WAITING, CB_LEASES, QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local RESERVED = KEYS[6]
local NOW_MS, LIMIT = clock_ms(ARGV[1]), tonumber(ARGV[2])

local function due(zset)
  return redis.call('ZRANGEBYSCORE', zset, '-inf', NOW_MS, 'LIMIT', 0, LIMIT)
end

local queue_empty = 0
if redis.call('LLEN', QUEUE) == 0 then queue_empty = 1 end
return {due(WAITING), due(LEASES), due(CB_WAITING), due(CB_LEASES), queue_empty, due(RESERVED)}
