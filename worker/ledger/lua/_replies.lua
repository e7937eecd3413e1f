-- Shared by the scripts whose reply a resend could not rebuild (put before them by
-- ledger/scripts.py). redis-py's Retry sends a script again when its reply was lost (a timeout,
-- a dropped connection) although the first run took effect; the first run's reply is kept
-- under its request id for a few minutes, and a resend gets it back instead of running again.
local function remembered(key)
  local reply = redis.call('GET', key)
  if reply then return cjson.decode(reply) end
  return nil
end

local function remember(key, reply, ttl_s)
  redis.call('SET', key, cjson.encode(reply), 'EX', ttl_s)
  return reply
end
