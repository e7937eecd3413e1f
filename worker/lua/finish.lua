-- Record how an attempt ended: completed, scheduled for a retry, or dead.
-- Invariant: an order leaves every schedule when it ends and is never moved out of a final
-- state; only the lease holder schedules a retry or kills it (a completion is always kept:
-- the API placed the order, whoever asked).
-- KEYS: queued, waiting, leases, dead, events
-- ARGV: key, token, mode (complete|retry|dead|release), score_ms, ttl_s, maxlen, record_prefix,
--       history_key, history_entry, n_fields, fields..., n_incr, incr pairs..., event pairs...
local key, token, mode, score = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ttl, maxlen, rk, hk, entry = tonumber(ARGV[5]), ARGV[6], ARGV[7] .. key, ARGV[8], ARGV[9]
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
local i = 10
local nf = tonumber(ARGV[i])
for j = i + 1, i + nf, 2 do redis.call('HSET', rk, ARGV[j], ARGV[j + 1]) end
i = i + nf + 1
local ni = tonumber(ARGV[i])
for j = i + 1, i + ni, 2 do redis.call('HINCRBY', rk, ARGV[j], ARGV[j + 1]) end
i = i + ni + 1
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
