-- Say that a worker is alive, on the fleet's one clock (a host whose clock runs ahead or
-- behind must not look fresh or stale to `order-dispatch health` for it).
-- KEYS: workers (zset node -> ms of its last heartbeat)
-- ARGV: clock, node
return redis.call('ZADD', KEYS[1], clock_ms(ARGV[1]), ARGV[2])
