-- Put due work back on the queue: retries whose time has come, orders and callbacks held by
-- dead workers, and orders or callbacks whose message was lost.
-- Runs inside every worker, every second: safe with any number of them, because each entry
-- moves from waiting or leases to queued at most once per due time (ZREM decides who moves it).
-- It also forgets dead letters older than the retention (their records have expired) and
-- heartbeats of workers gone for a day.
-- KEYS: waiting, leases, queued, seq, queue, dead, events, cb_waiting, cb_leases, cb_queued,
--       dead_callback, workers
-- ARGV: now_ms, now_iso, limit, batch_max, nonce, parts_json, stale_ms, record_prefix,
--       hold (0|1), ttl_s, maxlen, spread, cb_parts_json
local now, now_iso, limit, batch_max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nonce, parts, stale_ms, prefix = ARGV[5], cjson.decode(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
local hold, ttl, maxlen, spread = ARGV[9] == '1', tonumber(ARGV[10]), ARGV[11], tonumber(ARGV[12])
local cb_parts = cjson.decode(ARGV[13])
local queue_empty = redis.call('LLEN', KEYS[5]) == 0

-- Due entries of `from` go to `to` (scored now); returns the keys moved.
local function due(from, to, moved)
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', from, '-inf', now, 'LIMIT', 0, limit)) do
    redis.call('ZREM', from, key)
    if redis.call('EXISTS', prefix .. key) == 1 then
      redis.call('ZADD', to, now, key)
      moved[#moved + 1] = key
    end
  end
end

-- A message can vanish with a worker killed between taking it and recording it as unacked;
-- once the queue is empty every message still published has been taken, so an entry queued
-- longer than stale_ms has lost its message. A second message for it is harmless (claims).
local function stale(zset, moved)
  if not queue_empty then return 0 end
  local n = 0
  local ceiling = tonumber(now) - stale_ms
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', ceiling, 'LIMIT', 0, limit)) do
    redis.call('ZADD', zset, now, key)
    moved[#moved + 1] = key
    n = n + 1
  end
  return n
end

-- Spread the keys over enough messages that every worker process gets some (tickets.batch_size).
local function publish(template, keys)
  if #keys == 0 then return end
  local batch = math.max(1, math.min(batch_max, math.ceil(#keys / spread)))
  push_tickets(KEYS[5], KEYS[4], nonce, template, keys, batch)
end

-- Orders.
local moved, held = {}, {}
due(KEYS[1], KEYS[3], moved)
local n_due, n_lost = #moved, 0
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
local n_stale = stale(KEYS[3], moved)
publish(parts, moved)

-- Callbacks: nothing is ambiguous about sending an event twice (receivers dedupe on its id).
local cb_moved = {}
due(KEYS[8], KEYS[10], cb_moved)
for _, key in ipairs(redis.call('ZRANGEBYSCORE', KEYS[9], '-inf', now, 'LIMIT', 0, limit)) do
  redis.call('ZREM', KEYS[9], key)
  if redis.call('EXISTS', prefix .. key) == 1 then
    redis.call('HSET', prefix .. key, 'cb_lease', '')
    redis.call('ZADD', KEYS[10], now, key)
    cb_moved[#cb_moved + 1] = key
  end
end
stale(KEYS[10], cb_moved)
publish(cb_parts, cb_moved)

local forgotten = tonumber(now) - ttl * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', forgotten)
redis.call('ZREMRANGEBYSCORE', KEYS[11], '-inf', forgotten)
redis.call('ZREMRANGEBYSCORE', KEYS[12], '-inf', tonumber(now) - 86400000)
return {n_due, n_lost, n_stale, held, #cb_moved}
