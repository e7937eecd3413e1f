-- Pass the shared flow gates, then mark that a POST is about to be sent and count the attempt.
-- Invariants: no worker sends for an API key while its 429 pause lasts or its circuit is open;
-- once the cooldown is over exactly one worker at a time sends a probe; an attempt is counted
-- once, and only by the worker that holds the lease. A lease that expires with the sending
-- mark set is an attempt whose outcome is unknown (ambiguous).
-- KEYS: pause, circuit (hash: failures, open_until_ms), probe
-- ARGV: record_key, token, now_iso, now_ms, probe_ttl_ms
-- Returns {attempts, 'go'|'probe'}, or {-1, 'lost'}, or {wait_ms, 'paused'|'open'|'probing'}.
local rk, token, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
if redis.call('HGET', rk, 'lease') ~= token then return {-1, 'lost'} end
local mode = 'go'
if redis.call('HGET', rk, 'sending') ~= token then
  local pause = redis.call('PTTL', KEYS[1])
  if pause > 0 then return {pause, 'paused'} end
  local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until_ms') or '0')
  if open_until > now then return {open_until - now, 'open'} end
  if open_until > 0 then
    -- Cooldown over: half open. One probe at a time; the others wait for its verdict.
    if not redis.call('SET', KEYS[3], token, 'NX', 'PX', ARGV[5]) then
      -- Look again soon: the probe's verdict usually comes with its first reply.
      return {math.min(redis.call('PTTL', KEYS[3]), 1000), 'probing'}
    end
    mode = 'probe'
  end
  redis.call('HSET', rk, 'sending', token, 'updated_at', ARGV[3])
  return {redis.call('HINCRBY', rk, 'attempts', 1), mode}
end
return {tonumber(redis.call('HGET', rk, 'attempts')), mode}
