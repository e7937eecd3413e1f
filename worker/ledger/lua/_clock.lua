-- Shared by every script (put before it by ledger/scripts.py): the fleet's one clock.
-- clock_ms: Redis's time, the same for every worker on every host (a host's clock may run
-- ahead or behind; a lease stamped by it would expire early or late for everyone else).
-- `forced` is '' except from tests that move time by hand (LedgerOps' injected clock).
local function clock_ms(forced)
  if forced ~= nil and forced ~= '' then return math.floor(tonumber(forced)) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- iso: ms since the epoch as ISO-8601 UTC with milliseconds (as worker/timefmt.py writes it);
-- Redis's Lua has no os.date. Civil-from-days, after H. Hinnant's date algorithms.
local function iso(ms)
  ms = math.floor(ms)
  local s = math.floor(ms / 1000)
  local days, rem = math.floor(s / 86400), s % 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, math.floor(rem / 3600),
    math.floor(rem % 3600 / 60), rem % 60, ms % 1000)
end
