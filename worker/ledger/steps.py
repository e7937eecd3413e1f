"""The Redis ledger: every state change of an order, each one atomic (a Lua script in `lua/`).

The ledger is the truth about an order; the Celery queue only carries messages that name orders.
Scripts keep the invariants written at their top; this module turns Python values into their
arguments and their replies back into Python values. Reading records lives in `records.py`.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Generic, TypeVar

import redis

from worker.claims import Claim, Gate, NewOrder, PumpReport
from worker.flow import CircuitPolicy, RateLimit
from worker.ledger.keys import FlowKeys, Keys
from worker.outcomes import Finish
from worker.settings import Settings
from worker.tickets import DELIVER_TASK, batch_size, ticket_template
from worker.timefmt import iso

Clock = Callable[[], float]
T = TypeVar("T")
__all__ = ["Claim", "Gate", "Ledger", "LedgerConfig", "NewOrder", "Op", "PumpReport", "iso"]

# Each script, and whether the queue-message template code comes first (see tickets.py).
SCRIPTS = {
    "enqueue": True,
    "claim": False,
    "begin": False,
    "gates": False,
    "finish": False,
    "pump": True,
    "renew": False,
}


def load_script(name: str, *, with_tickets: bool = False) -> str:
    lua = resources.files("worker.ledger") / "lua"
    source = (lua / name).read_text()
    return (lua / "_tickets.lua").read_text() + source if with_tickets else source


def register_scripts(client: Any) -> dict[str, Any]:
    """The ledger's scripts on `client`, sync or asyncio (redis-py registers either)."""
    return {
        name: client.register_script(load_script(f"{name}.lua", with_tickets=tickets))
        for name, tickets in SCRIPTS.items()
    }


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """One ledger step as data: the script to run, its keys and arguments, and how to read its
    reply. The sync `Ledger` and the asyncio `AsyncLedger` run the same ops."""

    script: str
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], T]


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    queue: str = "order-dispatch"
    ttl_s: int = 30 * 86400
    stream_maxlen: int = 100_000
    batch_max: int = 16
    batch_spread: int = 64
    deadline_s: float = 86400.0
    lease_s: float = 30.0
    hold_ambiguous: bool = False
    pump_limit: int = 1000
    flow: FlowKeys = field(default_factory=lambda: FlowKeys("default"))
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    rate: RateLimit = field(default_factory=RateLimit)
    probe_ttl_s: float = 90.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerConfig:
        return cls(
            flow=FlowKeys.for_api_key(settings.api_key.get_secret_value()),
            circuit=CircuitPolicy(settings.circuit_threshold, settings.circuit_cooldown_s),
            rate=RateLimit.parse(settings.rate_limit, max_wait_s=settings.rate_wait_max_s),
            probe_ttl_s=settings.http_timeout_s + 15,
            queue=settings.queue,
            ttl_s=settings.retention_s,
            stream_maxlen=settings.stream_maxlen,
            batch_max=settings.batch_max,
            batch_spread=settings.batch_spread,
            deadline_s=settings.retry_deadline_s,
            lease_s=settings.lease_s,
            hold_ambiguous=settings.on_ambiguous == "hold",
        )


class Ledger:
    def __init__(
        self,
        client: redis.Redis,
        config: LedgerConfig,
        *,
        keys: Keys | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.redis = client
        self.config = config
        self.keys = keys or Keys()
        self.clock = clock
        # The queue messages as templates that the scripts fill in (see tickets.py).
        self.parts_json = json.dumps(ticket_template(config.queue))
        self.deliver_parts_json = json.dumps(ticket_template(config.queue, DELIVER_TASK))
        self._scripts = register_scripts(client)

    def run(self, op: Op[T]) -> T:
        return op.parse(self._scripts[op.script](keys=op.keys, args=op.args))

    # --- producer side --------------------------------------------------------------------------

    def enqueue(self, orders: Sequence[NewOrder], *, burst: int = 0) -> list[str]:
        """Create records and queue messages; per order `accepted` or the status it already has.

        `burst`: how many orders the caller has enqueued in this go so far, these included
        (a stream is enqueued in chunks); messages are sized for the burst, not the chunk."""
        if not orders:
            return []
        now = self.clock()
        argv: list[Any] = [
            int(now * 1000),
            iso(now),
            self.config.ttl_s,
            batch_size(
                max(burst, len(orders)),
                spread=self.config.batch_spread,
                batch_max=self.config.batch_max,
            ),
            uuid.uuid4().hex,
            self.parts_json,
            self.keys.record_prefix,
            int((now + self.config.deadline_s) * 1000),
        ]
        for o in orders:
            argv += [o.key, o.account_id, o.order_id, o.body, o.callback_url]
        k = self.keys
        return list(
            self._scripts["enqueue"](
                keys=[k.queued, k.ticket_seq, self.config.queue, k.counters], args=argv
            )
        )

    # --- worker side ----------------------------------------------------------------------------

    def claim(self, order_keys: Iterable[str], worker: str) -> list[Claim]:
        """Take the queued orders among `order_keys` under one lease; skip the others."""
        return self.run(self.claim_op(order_keys, worker))

    def claim_op(self, order_keys: Iterable[str], worker: str) -> Op[list[Claim]]:
        now = self.clock()
        token = uuid.uuid4().hex
        expiry = int((now + self.config.lease_s) * 1000)
        return Op(
            "claim",
            [self.keys.queued, self.keys.leases],
            [expiry, token, iso(now), worker, self.keys.record_prefix, *order_keys],
            functools.partial(_claims, token),
        )

    def begin(self, claim: Claim) -> Gate:
        """Pass the shared flow gates and count the attempt about to be sent."""
        return self.run(self.begin_op(claim))

    def begin_op(self, claim: Claim) -> Op[Gate]:
        now = self.clock()
        flow = self.config.flow
        return Op(
            "begin",
            [flow.pause, flow.circuit, flow.probe, flow.rate],
            [
                self.keys.record(claim.key),
                claim.token,
                iso(now),
                int(now * 1000),
                int(self.config.probe_ttl_s * 1000),
                self.config.rate.interval_ms,
                int(self.config.rate.max_wait_s * 1000),
            ],
            functools.partial(_gate, claim),
        )

    def gates_shut(self) -> bool:
        """True while a 429 pause or an open circuit holds every worker back."""
        return self.run(self.gates_op())

    def gates_op(self) -> Op[bool]:
        flow = self.config.flow
        return Op("gates", [flow.pause, flow.circuit], [int(self.clock() * 1000)], bool)

    def finish(self, claim: Claim, outcome: Finish) -> bool:
        """Apply how an attempt ended (see `outcomes.py`); False if it was not ours to record."""
        return self.run(self.finish_op(claim, outcome))

    def finish_op(self, claim: Claim, outcome: Finish) -> Op[bool]:
        k = self.keys
        cfg = self.config
        cb_body, cb_id = outcome.callback or ("", "")
        now_ms = int(self.clock() * 1000)
        argv: list[Any] = [
            claim.key,
            claim.token,
            outcome.mode,
            int(outcome.score_s * 1000),
            cfg.ttl_s,
            cfg.stream_maxlen,
            k.record_prefix,
            k.history(claim.key),
            json.dumps(outcome.history) if outcome.history else "",
            outcome.flow,
            now_ms,
            cfg.circuit.threshold,
            int(cfg.circuit.cooldown_s * 1000),
            cb_body,
            cb_id,
            now_ms + int(outcome.callback_delay_s * 1000),
        ]
        for section in (outcome.fields, outcome.incr, outcome.counters):
            argv += [2 * len(section), *[x for pair in section.items() for x in pair]]
        if outcome.event:
            argv += [x for pair in outcome.event.items() for x in pair]
        keys = [
            k.queued,
            k.waiting,
            k.leases,
            k.dead,
            k.events,
            cfg.flow.pause,
            cfg.flow.circuit,
            cfg.flow.probe,
            k.counters,
            k.cb_waiting,
        ]
        return Op("finish", keys, argv, bool)

    def renew(self, held: Iterable[tuple[str, str]], *, callbacks: bool = False) -> int:
        """Extend the leases of (key, token) pairs this worker still holds."""
        pairs = [x for pair in held for x in pair]
        if not pairs:
            return 0
        expiry = int((self.clock() + self.config.lease_s) * 1000)
        zset, lease_field = (
            (self.keys.cb_leases, "cb_lease") if callbacks else (self.keys.leases, "lease")
        )
        args: list[str | int] = [expiry, self.keys.record_prefix, lease_field, *pairs]
        return int(self._scripts["renew"](keys=[zset], args=args))

    def heartbeat(self, node: str) -> None:
        """Say that worker `node` is alive (read by `order-dispatch health` and the exporter)."""
        self.redis.zadd(self.keys.workers, {node: int(self.clock() * 1000)})

    def pump(self) -> PumpReport:
        """Move due retries and callbacks, expired leases and orphaned entries onto the queue."""
        now = self.clock()
        k = self.keys
        due, lost, stale, held, callbacks = self._scripts["pump"](
            keys=[
                k.waiting,
                k.leases,
                k.queued,
                k.ticket_seq,
                self.config.queue,
                k.dead,
                k.events,
                k.cb_waiting,
                k.cb_leases,
                k.cb_queued,
                k.dead_callback,
                k.workers,
            ],
            args=[
                int(now * 1000),
                iso(now),
                self.config.pump_limit,
                self.config.batch_max,
                uuid.uuid4().hex,
                self.parts_json,
                int(self.config.lease_s * 1000),
                k.record_prefix,
                1 if self.config.hold_ambiguous else 0,
                self.config.ttl_s,
                self.config.stream_maxlen,
                self.config.batch_spread,
                self.deliver_parts_json,
            ],
        )
        return PumpReport(
            due=int(due),
            lost=int(lost),
            stale=int(stale),
            held=list(held),
            callbacks=int(callbacks),
        )


def _claims(token: str, reply: list[Any]) -> list[Claim]:
    claims = []
    for i in range(0, len(reply), 9):
        key, body, account, order_id, attempts, ambiguous, created, deadline, cb = reply[i : i + 9]
        claims.append(
            Claim(
                key=key,
                token=token,
                body=body,
                account_id=account,
                order_id=order_id,
                attempts=int(attempts or 0),
                ambiguous_attempts=int(ambiguous or 0),
                created_ms=int(created or 0),
                deadline_ms=int(deadline or 0),
                callback_url=cb,
            )
        )
    return claims


def _gate(claim: Claim, reply: list[Any]) -> Gate:
    value, verdict, start_in_ms = reply
    if verdict in ("go", "probe"):
        claim.attempts = int(value)
        return Gate(verdict, attempts=int(value), start_in_s=int(start_in_ms) / 1000)
    return Gate(verdict, wait_s=max(0.001, int(value) / 1000))
