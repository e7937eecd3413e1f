"""The Redis ledger: the truth about every order, and the only package that imports redis.

An order is in exactly one of four places until it ends (`keys`): queued, waiting, leased, or
nowhere (final, kept as a record for the retention). Every state change is a Lua script in
`lua/`, atomic, with its invariant written at its top.

- `keys`: every Redis key, named in one place (the orders' and the flow state's), and the final
  statuses (`FINAL_STATUSES`, the only list of them, Lua's included).
- `scripts`: the one registry and loader of the scripts, and `Op`, a step as data (the scripts
  it runs in one round trip, with every key they touch, and how to read their replies).
- `config`: `LedgerConfig`, what the steps need of the settings.
- `ops`: `LedgerOps` builds the order steps as `Op`s, with no Redis client; `steps`: the sync
  `Ledger` that runs them; `aio`: the asyncio `AsyncLedger` that runs the same ops, one
  pipeline per event-loop turn.
- `callbacks`: the callback stage's own claims, leases and schedule.
- `records`, `results`: reading records, history and the results stream; consumer groups.
- `dead`: dead letters: list, show, replay, purge.
- `connect`: Redis clients from `DISPATCH_REDIS_URL` (redis, rediss, unix, sentinel).

The rate limit, the 429 pause and the circuit breaker are state in Redis too (`FlowKeys`),
checked inside `lua/begin.lua` and updated by `lua/report_flow.lua` (sent with each
`lua/finish.lua`); their policy is `worker.flow`.
"""

from worker.ledger.config import LedgerConfig
from worker.ledger.keys import FINAL_STATUSES, FlowKeys, Keys
from worker.ledger.ops import LedgerOps
from worker.ledger.scripts import Op
from worker.ledger.steps import Ledger

__all__ = ["FINAL_STATUSES", "FlowKeys", "Keys", "Ledger", "LedgerConfig", "LedgerOps", "Op"]
