-- Record how an attempt ended: completed, scheduled for a retry, postponed, or dead.
-- Invariants: an order leaves every schedule when it ends and is never moved out of a final
-- state; only the lease holder schedules a retry, postpones or kills it (a completion is
-- always kept: the API placed the order, whoever asked); an ending with a callback event hands
-- the event to the callback stage in the same step, so it cannot be lost in between; an
-- attempt (its token) is recorded once, however often it is sent. Times are Redis's: `@@NOW@@`
-- in a value stands for now, `@@DUE@@` for when the order is due again (now + delay).
-- What the API's answer says about the shared flow state is report_flow.lua's, sent just
-- before this script in the same round trip.
-- FINAL (the final statuses, from ledger/keys.py) is put before this script by the loader.
-- KEYS: record, history, queued, waiting, leases, dead, events, counters, cb_waiting
-- ARGV: clock, key, token, mode (complete|retry|release|dead), delay_ms, ttl_s, maxlen,
--       history_entry ('': none), cb_event ('': no callback), cb_id, cb_delay_ms,
--       changes (JSON: set = {field: value}, incr = {field: n} of the record,
--                counters = {name: n}, event = [field, value, ...] for the stream, [] for none)
-- Returns 1 when recorded, 0 when it was not this attempt's to record.
local RECORD, HISTORY, QUEUED, WAITING = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local LEASES, DEAD, EVENTS, COUNTERS, CB_WAITING = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local NOW_MS, KEY, TOKEN, MODE = clock_ms(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local DUE_MS, TTL_S, MAXLEN = NOW_MS + tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local HISTORY_ENTRY, CB_EVENT, CB_ID = ARGV[8], ARGV[9], ARGV[10]
local CB_DUE_MS, CHANGES = NOW_MS + tonumber(ARGV[11]), cjson.decode(ARGV[12])
local STAMPS = {['@@NOW@@'] = iso(NOW_MS), ['@@DUE@@'] = iso(DUE_MS)}

local function stamped(value) return STAMPS[value] or value end

if redis.call('HGET', RECORD, 'finished_by') == TOKEN then return 1 end
local status = redis.call('HGET', RECORD, 'status')
if not status or FINAL[status] then return 0 end
if MODE ~= 'complete' and redis.call('HGET', RECORD, 'lease') ~= TOKEN then return 0 end

redis.call('ZREM', QUEUED, KEY)
redis.call('ZREM', WAITING, KEY)
redis.call('ZREM', LEASES, KEY)
if MODE == 'retry' or MODE == 'release' then
  redis.call('ZADD', WAITING, DUE_MS, KEY)
elseif MODE == 'dead' then
  redis.call('ZADD', DEAD, NOW_MS, KEY)
end

redis.call('HSET', RECORD, 'finished_by', TOKEN)
for field, value in pairs(CHANGES.set) do redis.call('HSET', RECORD, field, stamped(value)) end
for field, n in pairs(CHANGES.incr) do redis.call('HINCRBY', RECORD, field, n) end
for name, n in pairs(CHANGES.counters) do redis.call('HINCRBY', COUNTERS, name, n) end
if CB_EVENT ~= '' then
  -- The event's body is JSON: its timestamp, a string there, is stamped the same way.
  redis.call('HSET', RECORD, 'callback', 'pending', 'cb_event',
    string.gsub(CB_EVENT, '@@NOW@@', STAMPS['@@NOW@@']), 'cb_id', CB_ID, 'cb_attempts', 0)
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
  local event = {}
  for i, v in ipairs(CHANGES.event) do event[i] = stamped(v) end
  redis.call('XADD', EVENTS, 'MAXLEN', '~', MAXLEN, '*', unpack(event))
end
return 1
