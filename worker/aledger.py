"""The ledger's worker-side steps on the worker's event loop: the same ops as `Ledger`.

`Ledger` builds each step as an `Op` (script, keys, arguments, how to read the reply); this
runs them on a `redis.asyncio` client, so the scripts and their invariants stay in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from worker.ledger import Ledger, Op, register_scripts
from worker.ledger_types import Claim, Gate
from worker.outcomes import Finish

T = TypeVar("T")


class AsyncLedger:
    def __init__(self, ledger: Ledger, client: Any) -> None:
        self.ops = ledger
        self.redis = client
        self._scripts = register_scripts(client)

    async def run(self, op: Op[T]) -> T:
        return op.parse(await self._scripts[op.script](keys=op.keys, args=op.args))

    async def claim(self, order_keys: Iterable[str], worker: str) -> list[Claim]:
        return await self.run(self.ops.claim_op(order_keys, worker))

    async def begin(self, claim: Claim) -> Gate:
        return await self.run(self.ops.begin_op(claim))

    async def gates_shut(self) -> bool:
        return await self.run(self.ops.gates_op())

    async def finish(self, claim: Claim, outcome: Finish) -> bool:
        return await self.run(self.ops.finish_op(claim, outcome))

    async def close(self) -> None:
        await self.redis.aclose()
