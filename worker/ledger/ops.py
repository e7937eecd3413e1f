"""The ledger's order steps as `Op`s, built without a Redis client (`LedgerOps`).

Each builder turns Python values into a script's keys and arguments, and says how to read its
reply; the scripts keep the invariants written at their top. The sync `Ledger` and the asyncio
`AsyncLedger` run what these build, so every step is written once.

Time is Redis's: the scripts read `TIME` themselves, and are given durations (a lease, a delay,
a deadline), never a host's "now". A test that moves time by hand injects `clock`: its value is
then sent as every script's first argument, which the scripts take in place of `TIME`.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from worker.claims import Claim, Gate, NewOrder, PumpReport
from worker.ledger.config import LedgerConfig
from worker.ledger.keys import REPLY_TTL_S, Keys
from worker.ledger.scripts import Call, Op
from worker.outcomes import Finish
from worker.tickets import DELIVER_TASK, batch_size, ticket_template

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class PumpScan:
    """What `pump_scan.lua` found due: the keys the pump's scripts may move, and whether the
    queue was empty before they published anything."""

    due: list[str]
    lost: list[str]
    cb_due: list[str]
    cb_lost: list[str]
    queue_empty: bool
    orphaned: list[str]


class LedgerOps:
    def __init__(
        self, config: LedgerConfig, *, keys: Keys | None = None, clock: Clock | None = None
    ) -> None:
        self.config = config
        self.keys = keys or Keys()
        self.clock = clock
        self.lease_ms = int(config.lease_s * 1000)
        # The queue messages as templates that the scripts fill in (see tickets.py).
        self.parts_json = json.dumps(ticket_template(config.queue))
        self.deliver_parts_json = json.dumps(ticket_template(config.queue, DELIVER_TASK))

    def records(self, order_keys: Iterable[str]) -> list[str]:
        return [self.keys.record(key) for key in order_keys]

    def now_arg(self) -> str | int:
        """Every script's first argument: '' (read Redis's `TIME`), or a test's clock in ms."""
        return "" if self.clock is None else int(self.clock() * 1000)

    # --- producer side --------------------------------------------------------------------------

    def enqueue(self, orders: Sequence[NewOrder], *, burst: int = 0) -> Op[list[str]]:
        if not orders:
            return Op.nothing([])
        cfg, k = self.config, self.keys
        size = batch_size(max(burst, len(orders)), spread=cfg.batch_spread, batch_max=cfg.batch_max)
        nonce = uuid.uuid4().hex
        args: list[Any] = [
            self.now_arg(),
            cfg.ttl_s,
            size,
            nonce,
            self.parts_json,
            int(cfg.deadline_s * 1000),
            REPLY_TTL_S,
        ]
        for o in orders:
            args += [o.key, o.account_id, o.order_id, o.body, o.callback_url]
        keys = [k.queued, k.ticket_seq, cfg.queue, k.counters, k.reply(nonce)]
        keys += self.records(o.key for o in orders)
        return Op.one("enqueue", keys, args, list)

    # --- worker side ----------------------------------------------------------------------------

    def claim(self, order_keys: Iterable[str], worker: str) -> Op[list[Claim]]:
        order_keys = list(order_keys)
        token = uuid.uuid4().hex
        keys = [self.keys.queued, self.keys.leases, *self.records(order_keys)]
        args = [self.now_arg(), self.lease_ms, token, worker, *order_keys]
        parse = functools.partial(_claims, token, self.clock or time.time)
        return Op.one("claim", keys, args, parse)

    def begin(self, claim: Claim) -> Op[Gate]:
        cfg, flow = self.config, self.config.flow
        keys = [self.keys.record(claim.key), flow.pause, flow.circuit, flow.probe, flow.rate]
        args = [
            self.now_arg(),
            claim.token,
            int(cfg.probe_ttl_s * 1000),
            cfg.rate.interval_ms,
            int(cfg.rate.max_wait_s * 1000),
        ]
        return Op.one("begin", keys, args, functools.partial(_gate, claim))

    def gates(self) -> Op[bool]:
        flow = self.config.flow
        return Op.one("gates", [flow.pause, flow.circuit], [self.now_arg()], bool)

    def finish(self, claim: Claim, outcome: Finish) -> Op[bool]:
        """The flow state first (if this worker still holds the lease), then the record, both in
        one round trip; the reply is finish's."""
        k, cfg = self.keys, self.config
        now = self.now_arg()
        calls = []
        if outcome.flow:
            flow = cfg.flow
            calls.append(
                Call(
                    "report_flow",
                    [flow.pause, flow.circuit, flow.probe, k.record(claim.key)],
                    [
                        now,
                        claim.token,
                        outcome.flow,
                        cfg.circuit.threshold,
                        int(cfg.circuit.cooldown_s * 1000),
                    ],
                )
            )
        cb_event, cb_id = outcome.callback or ("", "")
        changes = {
            "set": outcome.fields,
            "incr": outcome.incr,
            "counters": outcome.counters,
            "event": [x for pair in (outcome.event or {}).items() for x in pair],
        }
        keys = [
            *(k.record(claim.key), k.history(claim.key), k.queued, k.waiting, k.leases),
            *(k.dead, k.events, k.counters, k.cb_waiting),
        ]
        args: list[Any] = [
            now,
            claim.key,
            claim.token,
            outcome.mode,
            int(outcome.delay_s * 1000),
            cfg.ttl_s,
            cfg.stream_maxlen,
            json.dumps(outcome.history) if outcome.history else "",
            cb_event,
            cb_id,
            int(outcome.callback_delay_s * 1000),
            json.dumps(changes, ensure_ascii=False),
        ]
        calls.append(Call("finish", keys, args))
        return Op(tuple(calls), lambda replies: bool(replies[-1]))

    def renew(self, held: Iterable[tuple[str, str]], *, callbacks: bool = False) -> Op[int]:
        held = list(held)
        if not held:
            return Op.nothing(0)
        zset, lease_field = (
            (self.keys.cb_leases, "cb_lease") if callbacks else (self.keys.leases, "lease")
        )
        keys = [zset, *self.records(key for key, _ in held)]
        args = [self.now_arg(), self.lease_ms, lease_field, *(x for pair in held for x in pair)]
        return Op.one("renew", keys, args, int)

    # --- the pump: first what is due, then the moves (their records named in KEYS) ----------------

    def pump_scan(self) -> Op[PumpScan]:
        k = self.keys
        keys = [k.waiting, k.leases, k.cb_waiting, k.cb_leases, self.config.queue, k.reserved]
        args = [self.now_arg(), self.config.pump_limit]

        def parse(reply: list[Any]) -> PumpScan:
            due, lost, cb_due, cb_lost, queue_empty, orphaned = reply
            return PumpScan(
                list(due), list(lost), list(cb_due), list(cb_lost), queue_empty == 1, list(orphaned)
            )

        return Op.one("pump_scan", keys, args, parse)

    def pump(self, scan: PumpScan) -> Op[PumpReport]:
        """Orders, then callbacks, then the trim of what the retention is over for."""
        k, cfg, now = self.keys, self.config, self.now_arg()
        nonce, empty = uuid.uuid4().hex, int(scan.queue_empty)
        limit, stale_ms = cfg.pump_limit, self.lease_ms
        orders = Call(
            "pump_orders",
            [
                *(k.waiting, k.leases, k.queued, k.ticket_seq, cfg.queue, k.dead, k.events),
                *(k.reply(f"{nonce}.orders"), k.reserved, k.counters),
                *self.records([*scan.due, *scan.lost]),
            ],
            [
                *(now, limit, cfg.batch_max, cfg.batch_spread, nonce, self.parts_json),
                *(stale_ms, int(cfg.hold_ambiguous), cfg.ttl_s, cfg.stream_maxlen, empty),
                *(REPLY_TTL_S, len(scan.due), json.dumps(scan.orphaned), *scan.due, *scan.lost),
            ],
        )
        callbacks = Call(
            "pump_callbacks",
            [
                *(k.cb_waiting, k.cb_leases, k.cb_queued, k.ticket_seq, cfg.queue),
                *(k.reply(f"{nonce}.callbacks"), *self.records([*scan.cb_due, *scan.cb_lost])),
            ],
            [
                *(now, limit, cfg.batch_max, cfg.batch_spread, nonce, self.deliver_parts_json),
                *(stale_ms, empty, REPLY_TTL_S, len(scan.cb_due), *scan.cb_due, *scan.cb_lost),
            ],
        )
        trim = Call("trim", [k.dead, k.dead_callback, k.workers], [now, cfg.ttl_s])

        def parse(replies: list[Any]) -> PumpReport:
            (due, lost, stale, held), n_callbacks, _ = replies
            return PumpReport(int(due), int(lost), int(stale), list(held), int(n_callbacks))

        return Op((orders, callbacks, trim), parse)


def _claims(token: str, host_clock: Clock, reply: list[Any]) -> list[Claim]:
    """claim.lua's reply: Redis's time, then 9 values per order taken, in the order the script
    lists them. The order's times are Redis's; the worker weighs its budget on its own clock,
    so they are moved onto it (by the skew seen at this claim, give or take a round trip)."""
    skew_ms = int(host_clock() * 1000) - int(reply[0])
    claims = []
    for i in range(1, len(reply), 9):
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
                created_ms=int(created or 0) + skew_ms,
                deadline_ms=int(deadline or 0) + skew_ms,
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
