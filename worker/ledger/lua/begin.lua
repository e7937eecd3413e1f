-- Pass the shared flow gates, then mark that a POST is about to be sent and count the attempt.
-- Invariants: no worker sends for an API key while its 429 pause lasts or its circuit is open;
-- once the cooldown is over exactly one worker at a time sends a probe; POSTs start at least
-- `interval_ms` apart (`limit` per `window`), paced on Redis's clock for every worker on every
-- host: each caller reserves its own start time (GCRA), so nobody polls and nobody herds;
-- an attempt is counted once, and only by the worker that holds the lease (a resend gets the
-- same attempt, mode and reserved start). A lease that expires with the sending mark set is
-- an attempt whose outcome is unknown (ambiguous).
-- KEYS: record, pause, circuit (hash: failures, open_until_ms), probe, rate (the next free
--       start, ms)
-- ARGV: clock, token, probe_ttl_ms, interval_ms, max_wait_ms
-- Returns {attempts, 'go'|'probe', start_in_ms}, {-1, 'lost', 0}, or
-- {wait_ms, 'paused'|'open'|'probing'|'rate', 0}.
local RECORD, PAUSE, CIRCUIT, PROBE, RATE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local NOW_MS, TOKEN, PROBE_TTL_MS = clock_ms(ARGV[1]), ARGV[2], ARGV[3]
local INTERVAL_MS, MAX_WAIT_MS = tonumber(ARGV[4]), tonumber(ARGV[5])

if redis.call('HGET', RECORD, 'lease') ~= TOKEN then return {-1, 'lost', 0} end
if redis.call('HGET', RECORD, 'sending') == TOKEN then
  local mode = redis.call('GET', PROBE) == TOKEN and 'probe' or 'go'
  local start = tonumber(redis.call('HGET', RECORD, 'send_at_ms') or '0')
  return {tonumber(redis.call('HGET', RECORD, 'attempts')), mode, math.max(0, start - NOW_MS)}
end
local pause = redis.call('PTTL', PAUSE)
if pause > 0 then return {pause, 'paused', 0} end
local open_until = tonumber(redis.call('HGET', CIRCUIT, 'open_until_ms') or '0')
if open_until > NOW_MS then return {open_until - NOW_MS, 'open', 0} end
local start = math.max(tonumber(redis.call('GET', RATE) or '0'), NOW_MS)
local start_in = start - NOW_MS
if start_in > MAX_WAIT_MS then return {math.ceil(start_in), 'rate', 0} end
local mode = 'go'
if open_until > 0 then
  -- Cooldown over: half open. One probe at a time; the others wait for its verdict.
  if not redis.call('SET', PROBE, TOKEN, 'NX', 'PX', PROBE_TTL_MS) then
    -- Look again soon: the probe's verdict usually comes with its first reply.
    return {math.min(redis.call('PTTL', PROBE), 1000), 'probing', 0}
  end
  mode = 'probe'
end
redis.call('SET', RATE, string.format('%d', start + INTERVAL_MS), 'PX',
  math.ceil(start_in + INTERVAL_MS) + 1000)
redis.call('HSET', RECORD, 'sending', TOKEN, 'send_at_ms', start, 'updated_at', iso(NOW_MS))
return {redis.call('HINCRBY', RECORD, 'attempts', 1), mode, math.floor(start_in)}
