-- Whether a shared gate holds every worker back: a 429 pause, or an open circuit.
-- KEYS: pause, circuit (hash: open_until_ms)
-- ARGV: clock
-- Returns 1 when shut, 0 when open.
local PAUSE, CIRCUIT = KEYS[1], KEYS[2]
local NOW_MS = clock_ms(ARGV[1])

if redis.call('PTTL', PAUSE) > 0 then return 1 end
local open_until = tonumber(redis.call('HGET', CIRCUIT, 'open_until_ms') or '0')
if open_until > NOW_MS then return 1 end
return 0
