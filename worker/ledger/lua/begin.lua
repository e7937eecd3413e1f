-- Pass the shared flow gates, then mark that a POST is about to be sent and count the attempt.
-- Invariants: no worker sends for an API key while its 429 pause lasts or its circuit is open;
-- once the cooldown is over exactly one worker at a time sends a probe; POSTs start at least
-- `interval_ms` apart (`limit` per `window`), paced on Redis's clock for every worker on every
-- host: each caller reserves its own start time (GCRA), so nobody polls and nobody herds;
-- an attempt is counted once, and only by the worker that holds the lease. A lease that
-- expires with the sending mark set is an attempt whose outcome is unknown (ambiguous).
-- KEYS: pause, circuit (hash: failures, open_until_ms), probe, rate (the next free start, ms)
-- ARGV: record_key, token, now_iso, now_ms, probe_ttl_ms, interval_ms, max_wait_ms
-- Returns {attempts, 'go'|'probe', start_in_ms}, {-1, 'lost', 0}, or
-- {wait_ms, 'paused'|'open'|'probing'|'rate', 0}.
local rk, token, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
if redis.call('HGET', rk, 'lease') ~= token then return {-1, 'lost', 0} end
local mode = 'go'
if redis.call('HGET', rk, 'sending') ~= token then
  local pause = redis.call('PTTL', KEYS[1])
  if pause > 0 then return {pause, 'paused', 0} end
  local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until_ms') or '0')
  if open_until > now then return {open_until - now, 'open', 0} end
  local interval, max_wait = tonumber(ARGV[6]), tonumber(ARGV[7])
  local t = redis.call('TIME')
  local server_ms = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
  local start = math.max(tonumber(redis.call('GET', KEYS[4]) or '0'), server_ms)
  local start_in = start - server_ms
  if start_in > max_wait then return {math.ceil(start_in), 'rate', 0} end
  if open_until > 0 then
    -- Cooldown over: half open. One probe at a time; the others wait for its verdict.
    if not redis.call('SET', KEYS[3], token, 'NX', 'PX', ARGV[5]) then
      -- Look again soon: the probe's verdict usually comes with its first reply.
      return {math.min(redis.call('PTTL', KEYS[3]), 1000), 'probing', 0}
    end
    mode = 'probe'
  end
  redis.call('SET', KEYS[4], string.format('%.3f', start + interval), 'PX',
    math.ceil(start_in + interval) + 1000)
  redis.call('HSET', rk, 'sending', token, 'updated_at', ARGV[3])
  return {redis.call('HINCRBY', rk, 'attempts', 1), mode, math.floor(start_in)}
end
return {tonumber(redis.call('HGET', rk, 'attempts')), mode, 0}
