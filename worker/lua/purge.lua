-- Forget dead orders for good: record, history and dead-letter entry.
-- Invariant: only a dead order is purged (a live one would lose its place in the pipeline).
-- KEYS: dead
-- ARGV: record_prefix, history_prefix, keys...
local purged = {}
for i = 3, #ARGV do
  local key = ARGV[i]
  if redis.call('HGET', ARGV[1] .. key, 'status') == 'dead' then
    redis.call('DEL', ARGV[1] .. key, ARGV[2] .. key)
    redis.call('ZREM', KEYS[1], key)
    purged[#purged + 1] = key
  end
end
return purged
