-- Take the callbacks a message names, for one worker, under a lease.
-- Invariant: a callback is sent by at most one worker at a time, and only while pending.
-- KEYS: cb_queued, cb_leases, then the record of each key (in ARGV's order)
-- ARGV: expiry_ms, token, keys...
-- Returns 5 values per callback taken: key, cb_event, cb_id, callback_url, cb_attempts.
local CB_QUEUED, CB_LEASES, FIRST_RECORD = KEYS[1], KEYS[2], 3
local EXPIRY_MS, TOKEN, FIRST_KEY = ARGV[1], ARGV[2], 3

local out = {}
for i = FIRST_KEY, #ARGV do
  local key, rk = ARGV[i], KEYS[FIRST_RECORD + i - FIRST_KEY]
  if redis.call('ZREM', CB_QUEUED, key) == 1 and redis.call('HGET', rk, 'callback') == 'pending' then
    redis.call('ZADD', CB_LEASES, EXPIRY_MS, key)
    redis.call('HSET', rk, 'cb_lease', TOKEN)
    local f = redis.call('HMGET', rk, 'cb_event', 'cb_id', 'callback_url', 'cb_attempts')
    out[#out + 1] = key
    for _, v in ipairs(f) do out[#out + 1] = v or '' end
  end
end
return out
