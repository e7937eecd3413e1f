-- Record how an attempt ended: completed, scheduled for a retry, postponed, or dead.
-- Invariants: an order leaves every schedule when it ends and is never moved out of a final
-- state; only the lease holder schedules a retry, postpones or kills it (a completion is
-- always kept: the API placed the order, whoever asked); an ending with a callback event hands
-- the event to the callback stage in the same step, so it cannot be lost in between.
-- What the API's answer says about the shared flow state is report_flow.lua's, sent just
-- before this script in the same round trip.
-- FINAL (the final statuses, from ledger/keys.py) is put before this script by the loader.
-- KEYS: record, history, queued, waiting, leases, dead, events, counters, cb_waiting
-- ARGV: key, token, mode (complete|retry|release|dead), score_ms, ttl_s, maxlen,
--       history_entry ('': none), cb_event ('': no callback), cb_id, cb_due_ms,
--       changes (JSON: set = {field: value}, incr = {field: n} of the record,
--                counters = {name: n}, event = [field, value, ...] for the stream, [] for none)
-- Returns 1 when recorded, 0 when it was not this attempt's to record.
local RECORD, HISTORY, QUEUED, WAITING = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local LEASES, DEAD, EVENTS, COUNTERS, CB_WAITING = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local KEY, TOKEN, MODE, SCORE_MS = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local TTL_S, MAXLEN, HISTORY_ENTRY = tonumber(ARGV[5]), ARGV[6], ARGV[7]
local CB_EVENT, CB_ID, CB_DUE_MS = ARGV[8], ARGV[9], ARGV[10]
local CHANGES = cjson.decode(ARGV[11])

local status = redis.call('HGET', RECORD, 'status')
if not status or FINAL[status] then return 0 end
if MODE ~= 'complete' and redis.call('HGET', RECORD, 'lease') ~= TOKEN then return 0 end

redis.call('ZREM', QUEUED, KEY)
redis.call('ZREM', WAITING, KEY)
redis.call('ZREM', LEASES, KEY)
if MODE == 'retry' or MODE == 'release' then
  redis.call('ZADD', WAITING, SCORE_MS, KEY)
elseif MODE == 'dead' then
  redis.call('ZADD', DEAD, SCORE_MS, KEY)
end

for field, value in pairs(CHANGES.set) do redis.call('HSET', RECORD, field, value) end
for field, n in pairs(CHANGES.incr) do redis.call('HINCRBY', RECORD, field, n) end
for name, n in pairs(CHANGES.counters) do redis.call('HINCRBY', COUNTERS, name, n) end
if CB_EVENT ~= '' then
  redis.call('HSET', RECORD, 'callback', 'pending', 'cb_event', CB_EVENT, 'cb_id', CB_ID,
    'cb_attempts', 0)
  redis.call('HDEL', RECORD, 'cb_lease', 'cb_last_error', 'cb_http_status')
  redis.call('ZADD', CB_WAITING, CB_DUE_MS, KEY)
end

redis.call('EXPIRE', RECORD, TTL_S)
if HISTORY_ENTRY ~= '' then
  redis.call('RPUSH', HISTORY, HISTORY_ENTRY)
  redis.call('LTRIM', HISTORY, -50, -1)
  redis.call('EXPIRE', HISTORY, TTL_S)
end
if #CHANGES.event > 0 then
  redis.call('XADD', EVENTS, 'MAXLEN', '~', MAXLEN, '*', unpack(CHANGES.event))
end
return 1
