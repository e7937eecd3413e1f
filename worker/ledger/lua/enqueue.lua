-- Create order records and their queue messages.
-- Invariant: a record is created at most once per key, however many producers race, and a new
-- record is never without a message naming it (both are written by this one script); a resend
-- of the same request (its nonce) reports what the first run did, and does nothing more.
-- KEYS: queued, seq, queue, counters, reply (this request's remembered reply), then the record
--       of each order (in ARGV's order)
-- ARGV: clock, ttl_s, batch, nonce, parts_json, deadline_in_ms, reply_ttl_s,
--       then 5 per order: key, account_id, order_id, payload, callback_url
local QUEUED, SEQ, QUEUE, COUNTERS, REPLY = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local FIRST_RECORD = 6
local NOW_MS, TTL_S = clock_ms(ARGV[1]), tonumber(ARGV[2])
local BATCH, NONCE, PARTS = tonumber(ARGV[3]), ARGV[4], cjson.decode(ARGV[5])
local DEADLINE_MS, REPLY_TTL_S = NOW_MS + tonumber(ARGV[6]), tonumber(ARGV[7])
local NOW_ISO, FIRST_ORDER, PER_ORDER = iso(NOW_MS), 8, 5

local before = remembered(REPLY)
if before then return before end
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
return remember(REPLY, out, REPLY_TTL_S)
