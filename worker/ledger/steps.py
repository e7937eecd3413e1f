"""The sync `Ledger`: runs the ledger's steps (built by `LedgerOps`) on a redis-py client.

The producer enqueues with it; each worker's keeper thread renews leases, beats its heart and
pumps with it; the callback stage and the dead-letter tools run their steps on it. The worker's
order steps run on the event loop instead (`aio.AsyncLedger`), the same ops on another client.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import NoScriptError

from worker.claims import Claim, Gate, NewOrder, PumpReport
from worker.ledger.config import LedgerConfig
from worker.ledger.keys import Keys
from worker.ledger.ops import Clock, LedgerOps
from worker.ledger.scripts import Call, Op, register_scripts
from worker.outcomes import Finish
from worker.timefmt import iso

T = TypeVar("T")
PROGRESS_TTL_S = 86400
__all__ = ["Claim", "Gate", "Ledger", "LedgerConfig", "NewOrder", "Op", "PumpReport", "iso"]


class Ledger:
    def __init__(
        self,
        client: redis.Redis,
        config: LedgerConfig,
        *,
        keys: Keys | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`clock`: only for tests that move time by hand (see `LedgerOps`); by default every
        step runs on Redis's clock."""
        self.redis = client
        self.ops = LedgerOps(config, keys=keys, clock=clock)
        self.config = config
        self.keys = self.ops.keys
        # The heartbeat's time is the host's: its readers (health, the exporter) age it on
        # theirs.
        self.clock = clock or time.time
        self._scripts = register_scripts(client)

    def run(self, op: Op[T]) -> T:
        if len(op.calls) == 1:
            # Through the client's own script call: a pipeline would take a second connection
            # from the pool of a single-connection client (a callback thread's).
            call = op.calls[0]
            return op.parse([self._scripts[call.script](keys=call.keys, args=call.args)])
        return op.parse(self._send(op.calls) if op.calls else [])

    def _send(self, calls: Sequence[Call]) -> list[Any]:
        """Run `calls` in one pipeline; scripts Redis does not know (after a restart) are loaded
        and their calls sent again (a NOSCRIPT call did not run). The first error raises."""
        with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(self._scripts[call.script].sha, len(call.keys), *call.keys, *call.args)
            replies: list[Any] = pipe.execute(raise_on_error=False)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            for name in {calls[i].script for i in missing}:
                self.redis.script_load(self._scripts[name].script)
            for i, reply in zip(missing, self._send([calls[i] for i in missing]), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def enqueue(self, orders: Sequence[NewOrder], *, burst: int = 0) -> list[str]:
        """Create records and queue messages; per order `accepted` or the status it already has.

        `burst`: how many orders the caller has enqueued in this go so far, these included
        (a stream is enqueued in chunks); messages are sized for the burst, not the chunk."""
        return self.run(self.ops.enqueue(orders, burst=burst))

    def claim(self, order_keys: Iterable[str], worker: str) -> list[Claim]:
        """Take the queued orders among `order_keys` under one lease; skip the others."""
        return self.run(self.ops.claim(order_keys, worker))

    def begin(self, claim: Claim) -> Gate:
        """Pass the shared flow gates and count the attempt about to be sent."""
        return self.run(self.ops.begin(claim))

    def gates_shut(self) -> bool:
        """True while a 429 pause or an open circuit holds every worker back."""
        return self.run(self.ops.gates())

    def finish(self, claim: Claim, outcome: Finish) -> bool:
        """Apply how an attempt ended (see `outcomes.py`); False if it was not ours to record."""
        return self.run(self.ops.finish(claim, outcome))

    def renew(self, held: Iterable[tuple[str, str]], *, callbacks: bool = False) -> int:
        """Extend the leases of (key, token) pairs this worker still holds."""
        return self.run(self.ops.renew(held, callbacks=callbacks))

    def reserve(self, order_keys: Sequence[str]) -> int:
        """Note (or renew the note) that this worker holds a message naming `order_keys` and
        waits for room to claim them: the pump then leaves them be while the note is alive,
        and republishes them first in line once it lapses (the worker died)."""
        if not order_keys:
            return 0
        lease_ms = int(self.config.lease_s * 1000)
        keys = [self.keys.queued, self.keys.reserved]
        args = [self.ops.now_arg(), lease_ms, *order_keys]
        return int(self.run(Op.one("reserve", keys, args, int)))

    def unreserve(self, order_keys: Sequence[str]) -> None:
        """The message naming `order_keys` is done with (claimed, or handed back)."""
        if order_keys:
            self.run(Op.one("unreserve", [self.keys.reserved], list(order_keys), int))

    def heartbeat(self, node: str) -> None:
        """Say that worker `node` is alive (read by `order-dispatch health` and the exporter)."""
        args = [self.ops.now_arg(), node]
        self.run(Op.one("heartbeat", [self.keys.workers], args, int))

    def report_progress(self, node: str, progress_json: str) -> None:
        """Record what worker `node` says of its progress (read by `order-dispatch health`);
        it lives a day, as long as a silent worker's heartbeat."""
        self.redis.set(self.keys.progress(node), progress_json, ex=PROGRESS_TTL_S)

    def pump(self) -> PumpReport:
        """Move due retries and callbacks, expired leases and orphaned entries onto the queue.

        Two round trips: what is due is read first, so that the scripts that move it can name
        every record they touch in KEYS."""
        return self.run(self.ops.pump(self.run(self.ops.pump_scan())))
