-- Put due retries, orders of dead workers and orders whose message was lost back on the queue.
-- Runs inside every worker, every second: safe with any number of them, because each order
-- moves from waiting or leases to queued at most once per due time (ZREM decides who moves it).
-- KEYS: waiting, leases, queued, seq, queue, dead, events
-- ARGV: now_ms, now_iso, limit, batch_max, nonce, parts_json, stale_ms, record_prefix,
--       hold (0|1), ttl_s, maxlen, spread
local now, now_iso, limit, batch = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nonce, parts, stale_ms, prefix = ARGV[5], cjson.decode(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local hold, ttl, maxlen, spread = ARGV[9] == '1', tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local moved, held = {}, {}
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[1], key)
  if redis.call('EXISTS', prefix .. key) == 1 then
    redis.call('ZADD', KEYS[3], now, key)
    moved[#moved + 1] = key
  end
end
local n_due, n_lost, n_stale = #moved, 0, 0
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[2], key)
  local rk = prefix .. key
  if redis.call('EXISTS', rk) == 1 then
    n_lost = n_lost + 1
    local sending = redis.call('HGET', rk, 'sending')
    local ambiguous = sending and sending ~= ''
    if ambiguous then redis.call('HINCRBY', rk, 'ambiguous_attempts', 1) end
    redis.call('HSET', rk, 'lease', '', 'sending', '', 'updated_at', now_iso,
      'last_error', 'worker lost while holding the order')
    if ambiguous and hold then
      redis.call('ZADD', KEYS[6], now, key)
      redis.call('HSET', rk, 'status', 'dead', 'dead_stage', 'submit', 'dead_reason', 'ambiguous',
        'died_at', now_iso)
      redis.call('EXPIRE', rk, ttl)
      local f = redis.call('HMGET', rk, 'account_id', 'order_id')
      redis.call('XADD', KEYS[7], 'MAXLEN', '~', maxlen, '*', 'type', 'order.failed', 'key', key,
        'account_id', f[1] or '', 'order_id', f[2] or '', 'reason', 'ambiguous',
        'stage', 'submit', 'http_status', '', 'timestamp', now_iso)
      held[#held + 1] = key
    else
      redis.call('HSET', rk, 'status', 'retrying')
      redis.call('ZADD', KEYS[3], now, key)
      moved[#moved + 1] = key
    end
  end
end
-- A message can vanish with a worker killed between taking it and recording it as unacked;
-- once the queue is empty every message still published has been taken, so an order queued
-- longer than stale_ms has lost its message. A second message for it is harmless (claim).
if redis.call('LLEN', KEYS[5]) == 0 then
  local ceiling = tonumber(now) - stale_ms
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ceiling, 'LIMIT', 0, limit)) do
    redis.call('ZADD', KEYS[3], now, key)
    moved[#moved + 1] = key
    n_stale = n_stale + 1
  end
end
if #moved > 0 then
  -- Spread the orders over enough messages for every worker thread (as tickets.batch_size).
  batch = math.max(1, math.min(batch, math.ceil(#moved / spread)))
  push_tickets(KEYS[5], KEYS[4], nonce, parts, moved, batch)
end
return {n_due, n_lost, n_stale, held}
