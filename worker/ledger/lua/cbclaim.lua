-- Take the callbacks a message names, for one worker, under a lease.
-- Invariant: a callback is sent by at most one worker at a time, and only while pending; a
-- resend of the same claim (same token) hands back what the first run took.
-- KEYS: cb_queued, cb_leases, then the record of each key (in ARGV's order)
-- ARGV: clock, lease_ms, token, keys...
-- Returns 5 values per callback taken: key, cb_event, cb_id, callback_url, cb_attempts.
local CB_QUEUED, CB_LEASES, FIRST_RECORD = KEYS[1], KEYS[2], 3
local EXPIRY_MS, TOKEN, FIRST_KEY = clock_ms(ARGV[1]) + tonumber(ARGV[2]), ARGV[3], 4

local out = {}
for i = FIRST_KEY, #ARGV do
  local key, rk = ARGV[i], KEYS[FIRST_RECORD + i - FIRST_KEY]
  local taken
  if redis.call('ZREM', CB_QUEUED, key) == 1 then
    taken = redis.call('HGET', rk, 'callback') == 'pending'
    if taken then redis.call('HSET', rk, 'cb_lease', TOKEN) end
  else
    taken = redis.call('HGET', rk, 'cb_lease') == TOKEN  -- ours already: this is a resend
  end
  if taken then
    redis.call('ZADD', CB_LEASES, EXPIRY_MS, key)
    local f = redis.call('HMGET', rk, 'cb_event', 'cb_id', 'callback_url', 'cb_attempts')
    out[#out + 1] = key
    for _, v in ipairs(f) do out[#out + 1] = v or '' end
  end
end
return out
