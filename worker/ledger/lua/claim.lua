-- Take the orders a message names, for one worker, under a lease.
-- Invariant: an order is held by at most one worker at a time, and only an order that is
-- queued (never one that is final, waiting for a retry or held by another) is taken; a resend
-- of the same claim (same token) hands back what the first run took.
-- FINAL (the final statuses, from ledger/keys.py) is put before this script by the loader.
-- KEYS: queued, leases, then the record of each key (in ARGV's order)
-- ARGV: clock, lease_ms, token, worker, keys...
-- Returns Redis's time (ms), then 9 values per order taken, in the order ledger/ops.py reads
-- them: key, payload, account_id, order_id, attempts, ambiguous_attempts, created_ms,
-- deadline_ms, callback_url.
local QUEUED, LEASES, FIRST_RECORD = KEYS[1], KEYS[2], 3
local NOW_MS = clock_ms(ARGV[1])
local EXPIRY_MS, TOKEN, WORKER = NOW_MS + tonumber(ARGV[2]), ARGV[3], ARGV[4]
local NOW_ISO, FIRST_KEY = iso(NOW_MS), 5

local out = {NOW_MS}
for i = FIRST_KEY, #ARGV do
  local key, rk = ARGV[i], KEYS[FIRST_RECORD + i - FIRST_KEY]
  local taken = false
  if redis.call('ZREM', QUEUED, key) == 1 then
    local status = redis.call('HGET', rk, 'status')
    if status and not FINAL[status] then
      redis.call('HSET', rk, 'status', 'submitting', 'lease', TOKEN, 'worker', WORKER,
        'updated_at', NOW_ISO)
      redis.call('HDEL', rk, 'next_attempt_at', 'waiting_for')
      taken = true
    end
  else
    taken = redis.call('HGET', rk, 'lease') == TOKEN  -- ours already: this is a resend
  end
  if taken then
    redis.call('ZADD', LEASES, EXPIRY_MS, key)
    local f = redis.call('HMGET', rk, 'payload', 'account_id', 'order_id', 'attempts',
      'ambiguous_attempts', 'created_ms', 'deadline_ms', 'callback_url')
    out[#out + 1] = key
    for _, v in ipairs(f) do out[#out + 1] = v or '' end
  end
end
return out
