"""The Redis ledger: the truth about every order, and the only package that imports redis.

An order is in exactly one of four places until it ends (`keys`): queued, waiting, leased, or
nowhere (final, kept as a record for the retention). Every state change is one Lua script in
`lua/`, atomic, with its invariant written at its top.

- `keys`: every Redis key, named in one place (the orders' and the flow state's).
- `steps`: the ledger's steps as `Op`s (script, keys, arguments, how to read the reply), and
  the sync `Ledger` that runs them; `aio`: the asyncio `AsyncLedger` that runs the same ops, one
  pipeline per event-loop turn.
- `callbacks`: the callback stage's own claims, leases and schedule.
- `records`, `results`: reading records, history and the results stream; consumer groups.
- `dead`: dead letters: list, show, replay, purge.
- `connect`: Redis clients from `DISPATCH_REDIS_URL` (redis, rediss, unix, sentinel).

The rate limit, the 429 pause and the circuit breaker are state in Redis too (`FlowKeys`),
checked inside `lua/begin.lua` and updated by `lua/finish.lua`; their policy is `worker.flow`.
"""

from worker.ledger.keys import FlowKeys, Keys
from worker.ledger.steps import Ledger, LedgerConfig, Op

__all__ = ["FlowKeys", "Keys", "Ledger", "LedgerConfig", "Op"]
