-- Record how an attempt ended: completed, scheduled for a retry, postponed, or dead.
-- Invariants: an order leaves every schedule when it ends and is never moved out of a final
-- state; only the lease holder schedules a retry or kills it (a completion is always kept:
-- the API placed the order, whoever asked); an ending with a callback event hands the event
-- to the callback stage in the same step, so it cannot be lost in between.
-- It also tells the shared flow state what the API did (flow): 'ok' closes the circuit,
-- 'fail' counts a consecutive failure and opens it at the threshold (at once after a failed
-- probe), '429:<ms>' pauses the key for every worker, '' leaves it alone; and it adds to the
-- fleet-wide counters.
-- KEYS: queued, waiting, leases, dead, events, pause, circuit, probe, counters, cb_waiting
-- ARGV: key, token, mode (complete|retry|dead|release), score_ms, ttl_s, maxlen, record_prefix,
--       history_key, history_entry, flow, now_ms, threshold, cooldown_ms, cb_event, cb_id,
--       cb_due_ms,
--       then sections, each a count and pairs: record fields to set, record fields to add to,
--       counters to add to, event fields (the last section: the rest of ARGV)
local key, token, mode, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, maxlen, rk, hk, entry = tonumber(ARGV[5]), ARGV[6], ARGV[7] .. key, ARGV[8], ARGV[9]
local flow, now = ARGV[10], tonumber(ARGV[11])
if flow == 'ok' then
  redis.call('DEL', KEYS[7])
  if redis.call('GET', KEYS[8]) == token then redis.call('DEL', KEYS[8]) end
elseif flow == 'fail' then
  local failures = redis.call('HINCRBY', KEYS[7], 'failures', 1)
  local probing = redis.call('GET', KEYS[8]) == token
  if probing or failures >= tonumber(ARGV[12]) then
    redis.call('HSET', KEYS[7], 'open_until_ms', now + tonumber(ARGV[13]))
    if probing then redis.call('DEL', KEYS[8]) end
  end
elseif string.sub(flow, 1, 4) == '429:' then
  local pause_ms = tonumber(string.sub(flow, 5))
  if pause_ms > 0 and redis.call('PTTL', KEYS[6]) < pause_ms then
    redis.call('SET', KEYS[6], '1', 'PX', pause_ms)
  end
  if redis.call('GET', KEYS[8]) == token then redis.call('DEL', KEYS[8]) end
end
local status = redis.call('HGET', rk, 'status')
if not status or status == 'completed' or status == 'delivered' or status == 'dead' then
  return 0
end
if mode ~= 'complete' and token ~= '' and redis.call('HGET', rk, 'lease') ~= token then
  return 0
end
redis.call('ZREM', KEYS[1], key)
redis.call('ZREM', KEYS[2], key)
redis.call('ZREM', KEYS[3], key)
if mode == 'retry' or mode == 'release' then
  redis.call('ZADD', KEYS[2], score, key)
elseif mode == 'dead' then
  redis.call('ZADD', KEYS[4], score, key)
end
local i = 17
local n = tonumber(ARGV[i])
for j = i + 1, i + n, 2 do redis.call('HSET', rk, ARGV[j], ARGV[j + 1]) end
i = i + n + 1
n = tonumber(ARGV[i])
for j = i + 1, i + n, 2 do redis.call('HINCRBY', rk, ARGV[j], ARGV[j + 1]) end
i = i + n + 1
n = tonumber(ARGV[i])
for j = i + 1, i + n, 2 do redis.call('HINCRBY', KEYS[9], ARGV[j], ARGV[j + 1]) end
i = i + n + 1
if ARGV[14] ~= '' then
  redis.call('HSET', rk, 'callback', 'pending', 'cb_event', ARGV[14], 'cb_id', ARGV[15],
    'cb_attempts', 0)
  redis.call('HDEL', rk, 'cb_lease', 'cb_last_error', 'cb_http_status')
  redis.call('ZADD', KEYS[10], ARGV[16], key)
end
redis.call('EXPIRE', rk, ttl)
if entry ~= '' then
  redis.call('RPUSH', hk, entry)
  redis.call('LTRIM', hk, -50, -1)
  redis.call('EXPIRE', hk, ttl)
end
if i <= #ARGV then
  local ev = {}
  for j = i, #ARGV do ev[#ev + 1] = ARGV[j] end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', unpack(ev))
end
return 1
