-- Shared by the pump's scripts (put before them by ledger/scripts.py).
-- take: remove `key` from `zset` if it is (still) due by `now_ms`; true if this caller did.
local function take(zset, key, now_ms)
  local score = redis.call('ZSCORE', zset, key)
  if not score or tonumber(score) > tonumber(now_ms) then return false end
  return redis.call('ZREM', zset, key) == 1
end

-- requeue_stale: a message can vanish (a worker killed between taking it and noting it, the
-- last second of writes lost with Redis); once the queue is empty every message still
-- published has been taken, so an entry queued longer than stale_ms and noted by no live
-- worker (`reserved`: a worker that holds its message renews the note while the message waits
-- for room) has lost its message. A second message for it is harmless (claims). `queue_empty`
-- is what the pump saw before any of its scripts published. `reserved` may be nil (callbacks,
-- whose messages are sent at once and never wait).
local function requeue_stale(zset, reserved, moved, now_ms, stale_ms, limit, queue_empty)
  if not queue_empty then return 0 end
  local n = 0
  local ceiling = tonumber(now_ms) - stale_ms
  for _, key in ipairs(redis.call('ZRANGEBYSCORE', zset, '-inf', ceiling, 'LIMIT', 0, limit)) do
    if not (reserved and redis.call('ZSCORE', reserved, key)) then
      redis.call('ZADD', zset, now_ms, key)
      moved[#moved + 1] = key
      n = n + 1
    end
  end
  return n
end

-- publish: spread the keys over enough messages for every worker (as tickets.batch_size);
-- `head`: where workers take the next message (see push_tickets).
local function publish(queue, seq, nonce, parts, keys, batch_max, spread, head)
  if #keys == 0 then return end
  local batch = math.max(1, math.min(batch_max, math.ceil(#keys / spread)))
  push_tickets(queue, seq, nonce, parts, keys, batch, head)
end
