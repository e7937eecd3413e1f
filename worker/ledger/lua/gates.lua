-- Whether a shared gate holds every worker back: a 429 pause, or an open circuit.
-- KEYS: pause, circuit (hash: open_until_ms)
-- ARGV: now_ms
-- Returns 1 when shut, 0 when open.
if redis.call('PTTL', KEYS[1]) > 0 then return 1 end
local open_until = tonumber(redis.call('HGET', KEYS[2], 'open_until_ms') or '0')
if open_until > tonumber(ARGV[1]) then return 1 end
return 0
