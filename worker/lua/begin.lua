-- Mark that a POST is about to be sent, and count the attempt.
-- Invariant: an attempt is counted once, and only by the worker that holds the lease; a lease
-- that expires with this mark set is an attempt whose outcome is unknown (ambiguous).
-- ARGV: record_key, token, now_iso
local rk, token = ARGV[1], ARGV[2]
if redis.call('HGET', rk, 'lease') ~= token then return -1 end
if redis.call('HGET', rk, 'sending') == token then
  return tonumber(redis.call('HGET', rk, 'attempts'))
end
redis.call('HSET', rk, 'sending', token, 'updated_at', ARGV[3])
return redis.call('HINCRBY', rk, 'attempts', 1)
