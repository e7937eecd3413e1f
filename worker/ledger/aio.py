"""The ledger's worker-side steps on the worker's event loop: the same ops as `Ledger`.

`LedgerOps` builds each step as an `Op` (scripts, keys, arguments, how to read the replies);
this runs them on a `redis.asyncio` client, so the scripts and their invariants stay in one
place, and no sync client is needed to build them.

Steps asked for in the same turn of the event loop go to Redis together, in one pipeline (not a
transaction: each script is atomic on its own, as when sent alone), the calls of each step in
their order. With hundreds of orders in flight, the begin and finish steps of many orders share
one write and one read, which measured about half of the worker's Redis time when each went
alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeVar

from redis.exceptions import NoScriptError

from worker.claims import Claim, Gate
from worker.ledger.ops import LedgerOps
from worker.ledger.scripts import Call, Op, register_scripts
from worker.outcomes import Finish

T = TypeVar("T")


class AsyncLedger:
    def __init__(self, ops: LedgerOps, client: Any) -> None:
        self.ops = ops
        self.redis = client
        self._scripts = register_scripts(client)
        self._pending: list[tuple[Call, asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def run(self, op: Op[T]) -> T:
        loop = asyncio.get_running_loop()
        futures = [self._ask(call, loop) for call in op.calls]
        try:  # one pipeline answers them all: awaited in turn (cheaper than gathered)
            return op.parse([await future for future in futures])
        finally:  # the first failed call raises; the others' errors count as heard
            for future in futures:
                if not future.done():
                    future.cancel()  # this waiter was cancelled: nobody reads the rest
                elif not future.cancelled():
                    future.exception()

    def _ask(self, call: Call, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((call, future))
        if len(self._pending) == 1:  # the first of this turn: send them all on the next one
            task = loop.create_task(self._flush())
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)
        return future

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            replies = await self._send([call for call, _ in batch])
        except BaseException as exc:  # every waiter hears of it (Redis down, cancelled ...)
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its waiter was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _send(self, calls: list[Call]) -> list[Any]:
        """Run `calls` in one pipeline; scripts Redis does not know (after a restart) are loaded
        and only their calls sent again (a NOSCRIPT call did not run). By hand, because redis-py's
        pipeline would ask SCRIPT EXISTS first: a second round trip for every pipeline."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(self._scripts[call.script].sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                await self.redis.script_load(self._scripts[name].script)
            for i, reply in zip(
                missing, await self._send([calls[i] for i in missing]), strict=True
            ):
                replies[i] = reply
        return replies

    async def claim(self, order_keys: Iterable[str], worker: str) -> list[Claim]:
        return await self.run(self.ops.claim(order_keys, worker))

    async def begin(self, claim: Claim) -> Gate:
        return await self.run(self.ops.begin(claim))

    async def gates_shut(self) -> bool:
        return await self.run(self.ops.gates())

    async def finish(self, claim: Claim, outcome: Finish) -> bool:
        return await self.run(self.ops.finish(claim, outcome))

    async def close(self) -> None:
        await self.redis.aclose()
