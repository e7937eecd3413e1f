-- Tell an API key's shared flow state what the API did with one attempt.
-- Invariants: 'ok' closes the circuit; 'fail' counts a consecutive failure and opens the
-- circuit at the threshold (at once after a failed probe); '429:<ms>' pauses the key for every
-- worker, never shortening a longer pause; an answer to a probe releases it; only the worker
-- that still holds the order's lease reports: the late outcomes of a worker that lost its
-- lease (paused past it, its requests timing out all together) change nothing shared; an
-- attempt (its token: one claim, one attempt) is told once, however often the report is sent.
-- A circuit's state lapses two cooldowns after its last failure, so a circuit left half-open
-- with nothing to probe (its orders dead) closes by itself.
-- Sent just before finish.lua, in the same round trip, so the lease is still as it was when
-- the attempt ended.
-- KEYS: pause, circuit (hash: failures, open_until_ms), probe, the order's record
-- ARGV: clock, token, flow ('ok' | 'fail' | '429:<ms>'), threshold, cooldown_ms
local PAUSE, CIRCUIT, PROBE, RECORD = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local NOW_MS, TOKEN, FLOW = clock_ms(ARGV[1]), ARGV[2], ARGV[3]
local THRESHOLD, COOLDOWN_MS = tonumber(ARGV[4]), tonumber(ARGV[5])

if redis.call('HGET', RECORD, 'lease') ~= TOKEN then return 0 end
-- The mark lives on the record (gone only with it).
if redis.call('HGET', RECORD, 'flow_told') == TOKEN then return 1 end
redis.call('HSET', RECORD, 'flow_told', TOKEN)
local probing = redis.call('GET', PROBE) == TOKEN
if FLOW == 'ok' then
  redis.call('DEL', CIRCUIT)
  if probing then redis.call('DEL', PROBE) end
elseif FLOW == 'fail' then
  local failures = redis.call('HINCRBY', CIRCUIT, 'failures', 1)
  redis.call('PEXPIRE', CIRCUIT, 2 * COOLDOWN_MS)
  if probing or failures >= THRESHOLD then
    redis.call('HSET', CIRCUIT, 'open_until_ms', NOW_MS + COOLDOWN_MS)
    if probing then redis.call('DEL', PROBE) end
  end
elseif string.sub(FLOW, 1, 4) == '429:' then
  local pause_ms = tonumber(string.sub(FLOW, 5))
  if pause_ms > 0 and redis.call('PTTL', PAUSE) < pause_ms then
    redis.call('SET', PAUSE, '1', 'PX', pause_ms)
  end
  if probing then redis.call('DEL', PROBE) end
end
return 1
