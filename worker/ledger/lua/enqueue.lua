-- Create order records and their queue messages.
-- Invariant: a record is created at most once per key, however many producers race, and a new
-- record is never without a message naming it (both are written by this one script).
-- KEYS: queued, seq, queue, counters, then the record of each order (in ARGV's order)
-- ARGV: now_ms, now_iso, ttl_s, batch, nonce, parts_json, deadline_ms,
--       then 5 per order: key, account_id, order_id, payload, callback_url
local QUEUED, SEQ, QUEUE, COUNTERS = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local FIRST_RECORD = 5
local NOW_MS, NOW_ISO, TTL_S = ARGV[1], ARGV[2], tonumber(ARGV[3])
local BATCH, NONCE, PARTS = tonumber(ARGV[4]), ARGV[5], cjson.decode(ARGV[6])
local DEADLINE_MS = ARGV[7]
local FIRST_ORDER, PER_ORDER = 8, 5

local out, created = {}, {}
for n = 0, #KEYS - FIRST_RECORD do
  local i = FIRST_ORDER + n * PER_ORDER
  local key, rk = ARGV[i], KEYS[FIRST_RECORD + n]
  local status = redis.call('HGET', rk, 'status')
  if status then
    out[#out + 1] = status
  else
    redis.call('HSET', rk, 'key', key, 'account_id', ARGV[i + 1], 'order_id', ARGV[i + 2],
      'payload', ARGV[i + 3], 'callback_url', ARGV[i + 4], 'status', 'queued', 'attempts', 0,
      'ambiguous_attempts', 0, 'callback', 'none', 'created_at', NOW_ISO, 'updated_at', NOW_ISO,
      'created_ms', NOW_MS, 'deadline_ms', DEADLINE_MS)
    redis.call('EXPIRE', rk, TTL_S)
    redis.call('ZADD', QUEUED, NOW_MS, key)
    created[#created + 1] = key
    out[#out + 1] = 'accepted'
  end
end
if #created > 0 then push_tickets(QUEUE, SEQ, NONCE, PARTS, created, BATCH) end
redis.call('HINCRBY', COUNTERS, 'orders_accepted', #created)
redis.call('HINCRBY', COUNTERS, 'orders_duplicate', #out - #created)
return out
