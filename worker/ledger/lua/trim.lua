-- Forget what the retention is over for: dead letters whose records have expired, and the
-- heartbeats of workers gone for a day.
-- KEYS: dead, dead_callback, workers
-- ARGV: clock, ttl_s
local DEAD, DEAD_CALLBACK, WORKERS = KEYS[1], KEYS[2], KEYS[3]
local NOW_MS, TTL_S = clock_ms(ARGV[1]), tonumber(ARGV[2])
local DAY_MS = 86400000

local forgotten = NOW_MS - TTL_S * 1000
redis.call('ZREMRANGEBYSCORE', DEAD, '-inf', forgotten)
redis.call('ZREMRANGEBYSCORE', DEAD_CALLBACK, '-inf', forgotten)
redis.call('ZREMRANGEBYSCORE', WORKERS, '-inf', NOW_MS - DAY_MS)
return 1
