-- The message naming these orders is done with (claimed, or handed back): forget its notes.
-- KEYS: reserved
-- ARGV: keys...
if #ARGV == 0 then return 0 end
return redis.call('ZREM', KEYS[1], unpack(ARGV))
