-- Forget dead letters for good: a dead order's record, history and entries; a dead callback's
-- entry (its order, which was placed, keeps its record).
-- Invariant: only dead letters are purged (a live order would lose its place in the pipeline).
-- KEYS: dead, dead_callback
-- ARGV: record_prefix, history_prefix, keys...
local purged = {}
for i = 3, #ARGV do
  local key = ARGV[i]
  local was_callback = redis.call('ZREM', KEYS[2], key) == 1
  if redis.call('HGET', ARGV[1] .. key, 'status') == 'dead' then
    redis.call('DEL', ARGV[1] .. key, ARGV[2] .. key)
    redis.call('ZREM', KEYS[1], key)
    purged[#purged + 1] = key
  elseif was_callback then
    redis.call('HSET', ARGV[1] .. key, 'callback', 'failed')
    purged[#purged + 1] = key
  end
end
return purged
