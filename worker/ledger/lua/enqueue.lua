-- Create order records and their queue messages.
-- Invariant: a record is created at most once per key, however many producers race, and a new
-- record is never without a message naming it (both are written by this one script).
-- KEYS: queued, seq, queue, counters
-- ARGV: now_ms, now_iso, ttl_s, batch, nonce, parts_json, record_prefix, deadline_ms,
--       then 5 per order: key, account_id, order_id, payload, callback_url
local now_ms, now_iso, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local batch, nonce, parts = tonumber(ARGV[4]), ARGV[5], cjson.decode(ARGV[6])
local prefix, deadline_ms = ARGV[7], ARGV[8]
local out, created = {}, {}
for i = 9, #ARGV, 5 do
  local key = ARGV[i]
  local rk = prefix .. key
  local status = redis.call('HGET', rk, 'status')
  if status then
    out[#out + 1] = status
  else
    redis.call('HSET', rk, 'key', key, 'account_id', ARGV[i + 1], 'order_id', ARGV[i + 2],
      'payload', ARGV[i + 3], 'callback_url', ARGV[i + 4], 'status', 'queued', 'attempts', 0,
      'ambiguous_attempts', 0, 'callback', 'none', 'created_at', now_iso, 'updated_at', now_iso,
      'created_ms', now_ms, 'deadline_ms', deadline_ms)
    redis.call('EXPIRE', rk, ttl)
    redis.call('ZADD', KEYS[1], now_ms, key)
    created[#created + 1] = key
    out[#out + 1] = 'accepted'
  end
end
if #created > 0 then push_tickets(KEYS[3], KEYS[2], nonce, parts, created, batch) end
redis.call('HINCRBY', KEYS[4], 'orders_accepted', #created)
redis.call('HINCRBY', KEYS[4], 'orders_duplicate', #out - #created)
return out
