-- Shared by the scripts that publish queue messages (put before them by ledger/scripts.py).
-- push_tickets: one Celery message per `batch` keys, its id unique through a counter; at the
-- queue's tail (LPUSH: behind every message already there) or, with `head`, where workers take
-- the next message (RPUSH: orders a dead worker held come back first, whatever the backlog).
local function push_tickets(queue, seqkey, nonce, parts, keys, batch, head)
  local pushed = 0
  for i = 1, #keys, batch do
    local chunk = {}
    for j = i, math.min(i + batch - 1, #keys) do chunk[#chunk + 1] = keys[j] end
    -- Encoded twice: the key list is JSON that stands inside JSON strings of the envelope (the
    -- message body and `argsrepr` are strings holding JSON), so it is written as a string
    -- literal's escaped contents: encode the list, encode that text as a string, drop the quotes.
    local escaped = string.sub(cjson.encode(cjson.encode(chunk)), 2, -2)
    local tid = nonce .. '.' .. redis.call('INCR', seqkey)
    local out = {}
    for _, p in ipairs(parts) do
      if p == '@@TID@@' then out[#out + 1] = tid
      elseif p == '@@KEYS@@' then out[#out + 1] = escaped
      else out[#out + 1] = p end
    end
    redis.call(head and 'RPUSH' or 'LPUSH', queue, table.concat(out))
    pushed = pushed + 1
  end
  return pushed
end
