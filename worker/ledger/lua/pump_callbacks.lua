-- Put due callbacks back on the queue: retries whose time has come, callbacks held by dead
-- workers, and callbacks whose message was lost.
-- Invariant: as pump_orders.lua, each entry moves to cb_queued at most once per due time.
-- Nothing is ambiguous about sending an event twice (receivers dedupe on its id).
-- KEYS: cb_waiting, cb_leases, cb_queued, seq, queue, reply, then the records of the due keys
--       and of the lost keys (in ARGV's order)
-- ARGV: clock, limit, batch_max, spread, nonce, parts_json (of the deliver task), stale_ms,
--       queue_empty (0|1), reply_ttl_s, n_due, then the due keys, then the lost keys (as
--       pump_scan.lua found them)
-- Returns how many callbacks were queued again.
local CB_WAITING, CB_LEASES, CB_QUEUED, SEQ, QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local REPLY, FIRST_RECORD = KEYS[6], 7
local NOW_MS, LIMIT, BATCH_MAX = clock_ms(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local SPREAD, NONCE, PARTS = tonumber(ARGV[4]), ARGV[5], cjson.decode(ARGV[6])
local STALE_MS, QUEUE_EMPTY, REPLY_TTL_S = tonumber(ARGV[7]), ARGV[8] == '1', tonumber(ARGV[9])
local N_DUE, FIRST_KEY = tonumber(ARGV[10]), 11
local N_KEYS = #ARGV - FIRST_KEY + 1

local before = remembered(REPLY)
if before then return before end
local moved = {}
for n = 0, N_KEYS - 1 do
  local key, rk = ARGV[FIRST_KEY + n], KEYS[FIRST_RECORD + n]
  local from = n < N_DUE and CB_WAITING or CB_LEASES
  if take(from, key, NOW_MS) and redis.call('EXISTS', rk) == 1 then
    if from == CB_LEASES then redis.call('HSET', rk, 'cb_lease', '') end
    redis.call('ZADD', CB_QUEUED, NOW_MS, key)
    moved[#moved + 1] = key
  end
end
requeue_stale(CB_QUEUED, nil, moved, NOW_MS, STALE_MS, LIMIT, QUEUE_EMPTY)
publish(QUEUE, SEQ, NONCE, PARTS, moved, BATCH_MAX, SPREAD)
if #moved == 0 then return 0 end  -- as pump_orders.lua: nothing to tell a resend
return remember(REPLY, #moved, REPLY_TTL_S)
