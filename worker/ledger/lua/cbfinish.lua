-- Record how a callback attempt ended: delivered, to be tried again, or dead.
-- Invariants: only the lease holder records it, once (a resend of the same token is told it
-- was recorded); a delivered callback of a completed order makes the order `delivered`; a
-- failed callback never touches the order's placement.
-- KEYS: record, cb_leases, cb_waiting, dead_callback, counters
-- ARGV: clock, key, token, mode (delivered|retry|dead), delay_ms, error, http_status, counter
local RECORD, CB_LEASES, CB_WAITING, DEAD_CALLBACK = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local COUNTERS = KEYS[5]
local NOW_MS, KEY, TOKEN, MODE = clock_ms(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local DUE_MS, ERROR, HTTP_STATUS, COUNTER = NOW_MS + tonumber(ARGV[5]), ARGV[6], ARGV[7], ARGV[8]
local NOW_ISO = iso(NOW_MS)

if redis.call('HGET', RECORD, 'cb_finished_by') == TOKEN then return 1 end
if redis.call('HGET', RECORD, 'cb_lease') ~= TOKEN then return 0 end
redis.call('ZREM', CB_LEASES, KEY)
redis.call('HSET', RECORD, 'cb_lease', '', 'cb_finished_by', TOKEN, 'updated_at', NOW_ISO)
redis.call('HINCRBY', COUNTERS, COUNTER, 1)
if MODE == 'delivered' then
  redis.call('HSET', RECORD, 'callback', 'delivered', 'cb_delivered_at', NOW_ISO)
  redis.call('HDEL', RECORD, 'cb_last_error', 'cb_http_status', 'cb_event')
  if redis.call('HGET', RECORD, 'status') == 'completed' then
    redis.call('HSET', RECORD, 'status', 'delivered')
  end
  return 1
end
redis.call('HINCRBY', RECORD, 'cb_attempts', 1)
redis.call('HSET', RECORD, 'cb_last_error', ERROR, 'cb_http_status', HTTP_STATUS)
if MODE == 'retry' then
  redis.call('ZADD', CB_WAITING, DUE_MS, KEY)
else
  redis.call('HSET', RECORD, 'callback', 'failed', 'cb_died_at', NOW_ISO)
  redis.call('ZADD', DEAD_CALLBACK, DUE_MS, KEY)
end
return 1
