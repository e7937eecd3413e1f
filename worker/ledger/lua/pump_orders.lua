-- Put due orders back on the queue: retries whose time has come, orders held by dead
-- workers, orders named by a message a dead worker held (first in line: they have waited
-- already), and orders whose message was lost.
-- Invariants: any number of workers may run it at once, because each entry moves from
-- waiting or leases to queued at most once per due time (ZREM decides who moves it); an
-- order lost while its POST was on the wire is ambiguous: counted, then queued again, or
-- (hold) dead-lettered for a person to decide; a resend (its nonce) gets the first run's reply.
-- KEYS: waiting, leases, queued, seq, queue, dead, events, reply, reserved, counters, then the
--       records of the due keys and of the lost keys (in ARGV's order)
-- ARGV: clock, limit, batch_max, spread, nonce, parts_json, stale_ms, hold (0|1),
--       ttl_s, maxlen, queue_empty (0|1), reply_ttl_s, n_due, orphaned (JSON list of keys whose
--       message note lapsed), then the due keys, then the lost keys (as pump_scan.lua found them)
-- Returns {due, lost, stale (counts), held (the keys dead-lettered as ambiguous)}.
local WAITING, LEASES, QUEUED, SEQ, QUEUE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local DEAD, EVENTS, REPLY, RESERVED, COUNTERS = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local FIRST_RECORD = 11
local NOW_MS, LIMIT = clock_ms(ARGV[1]), tonumber(ARGV[2])
local BATCH_MAX, SPREAD, NONCE = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local PARTS, STALE_MS, HOLD = cjson.decode(ARGV[6]), tonumber(ARGV[7]), ARGV[8] == '1'
local TTL_S, MAXLEN, QUEUE_EMPTY = tonumber(ARGV[9]), ARGV[10], ARGV[11] == '1'
local REPLY_TTL_S, N_DUE = tonumber(ARGV[12]), tonumber(ARGV[13])
local ORPHANED, FIRST_KEY = cjson.decode(ARGV[14]), 15
local N_KEYS, NOW_ISO = #ARGV - FIRST_KEY + 1, iso(NOW_MS)

local before = remembered(REPLY)
if before then return before end
local moved, held = {}, {}
local n_due, n_lost = 0, 0
for n = 0, N_KEYS - 1 do
  local key, rk = ARGV[FIRST_KEY + n], KEYS[FIRST_RECORD + n]
  if n < N_DUE then
    -- A retry whose time has come.
    if take(WAITING, key, NOW_MS) and redis.call('EXISTS', rk) == 1 then
      redis.call('ZADD', QUEUED, NOW_MS, key)
      moved[#moved + 1] = key
      n_due = n_due + 1
    end
  elseif take(LEASES, key, NOW_MS) and redis.call('EXISTS', rk) == 1 then
    -- Its worker is presumed dead.
    n_lost = n_lost + 1
    local sending = redis.call('HGET', rk, 'sending')
    local ambiguous = sending and sending ~= ''
    if ambiguous then
      redis.call('HINCRBY', rk, 'ambiguous_attempts', 1)
      redis.call('HINCRBY', COUNTERS, 'retries_ambiguous', 1)  -- the counter matches records
    end
    redis.call('HSET', rk, 'lease', '', 'sending', '', 'updated_at', NOW_ISO,
      'last_error', 'worker lost while holding the order')
    if ambiguous and HOLD then
      redis.call('ZADD', DEAD, NOW_MS, key)
      redis.call('HSET', rk, 'status', 'dead', 'dead_stage', 'submit', 'dead_reason', 'ambiguous',
        'died_at', NOW_ISO)
      redis.call('EXPIRE', rk, TTL_S)
      local f = redis.call('HMGET', rk, 'account_id', 'order_id')
      redis.call('XADD', EVENTS, 'MAXLEN', '~', MAXLEN, '*', 'type', 'order.failed', 'key', key,
        'account_id', f[1] or '', 'order_id', f[2] or '', 'reason', 'ambiguous',
        'stage', 'submit', 'http_status', '', 'timestamp', NOW_ISO)
      held[#held + 1] = key
    else
      redis.call('HSET', rk, 'status', 'retrying')
      redis.call('ZADD', QUEUED, NOW_MS, key)
      moved[#moved + 1] = key
    end
  end
end
-- Named by a message whose worker stopped renewing its note: that worker died holding it.
local orphans = {}
for _, key in ipairs(ORPHANED) do
  if take(RESERVED, key, NOW_MS) and redis.call('ZSCORE', QUEUED, key) then
    redis.call('ZADD', QUEUED, NOW_MS, key)
    orphans[#orphans + 1] = key
  end
end
local n_stale = requeue_stale(QUEUED, RESERVED, moved, NOW_MS, STALE_MS, LIMIT, QUEUE_EMPTY)
publish(QUEUE, SEQ, NONCE, PARTS, moved, BATCH_MAX, SPREAD)
publish(QUEUE, SEQ, NONCE, PARTS, orphans, BATCH_MAX, SPREAD, true)
n_stale = n_stale + #orphans
local reply = {n_due, n_lost, n_stale, held}
-- Nothing moved: a resend would move nothing either (or what became due since), so the
-- reply of most runs is not kept.
if n_due + n_lost + n_stale == 0 then return reply end
return remember(REPLY, reply, REPLY_TTL_S)
