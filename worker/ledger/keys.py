"""Every Redis key order-dispatch writes, named in one place.

An order is in exactly one of four places until it ends: `queued` (a queue message names it),
`waiting` (a retry, due at its score), `leases` (a worker holds it until its score) or nowhere
(final: completed, delivered or dead, kept as a record until the retention ends). Its
callback, once due, goes through the same three places of its own (`cb:queued`, `cb:waiting`,
`cb:leases`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal, get_args

# The statuses an order never leaves (until its record expires): the only list of them. The
# scripts get it from the loader (`scripts.py`), records.py's `Status` is built from it.
FinalStatus = Literal["completed", "delivered", "dead"]
FINAL_STATUSES: tuple[str, ...] = get_args(FinalStatus)

# How long a script's reply is kept for a resend: far beyond the ~40 s that redis-py's retries
# (40, backoff capped at 1 s; ledger/connect.py) can take to send it again.
REPLY_TTL_S = 600


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "od"

    def record(self, key: str) -> str:
        """Hash: the order's record and payload. Lives for the retention period."""
        return f"{self.prefix}:o:{key}"

    def history(self, key: str) -> str:
        """List of JSON attempt entries, newest last. Lives as long as the record."""
        return f"{self.prefix}:h:{key}"

    @property
    def queued(self) -> str:
        """Zset key -> ms when its queue message was published. No expiry."""
        return f"{self.prefix}:queued"

    @property
    def reserved(self) -> str:
        """Zset key -> ms until which a worker holds a message naming it and waits for room to
        claim it; renewed by that worker's keeper, removed once claimed or handed back. A lapsed
        entry means the worker died holding the message. No expiry."""
        return f"{self.prefix}:reserved"

    @property
    def waiting(self) -> str:
        """Zset key -> ms when its next attempt is due (the durable retry schedule)."""
        return f"{self.prefix}:waiting"

    @property
    def leases(self) -> str:
        """Zset key -> ms when the worker holding it is presumed dead."""
        return f"{self.prefix}:leases"

    @property
    def dead(self) -> str:
        """Zset key -> ms when it was dead-lettered. Trimmed with the retention."""
        return f"{self.prefix}:dead"

    @property
    def dead_callback(self) -> str:
        """Zset key -> ms when its callback was given up. Trimmed with the retention."""
        return f"{self.prefix}:dead:callback"

    @property
    def cb_queued(self) -> str:
        """Zset key -> ms when a message naming its pending callback was published."""
        return f"{self.prefix}:cb:queued"

    @property
    def cb_waiting(self) -> str:
        """Zset key -> ms when its next callback attempt is due."""
        return f"{self.prefix}:cb:waiting"

    @property
    def cb_leases(self) -> str:
        """Zset key -> ms when the worker sending its callback is presumed dead."""
        return f"{self.prefix}:cb:leases"

    @property
    def events(self) -> str:
        """Stream of order.completed / order.failed events, trimmed to a length."""
        return f"{self.prefix}:events"

    @property
    def ticket_seq(self) -> str:
        """Counter that makes the ids of messages built in Lua unique."""
        return f"{self.prefix}:seq"

    def reply(self, request_id: str) -> str:
        """String: the reply of a script run (JSON) under its request id, for a resend of it
        (redis-py's retry after the reply was lost). Lives `REPLY_TTL_S`."""
        return f"{self.prefix}:reply:{request_id}"

    @property
    def workers(self) -> str:
        """Zset worker node name -> ms of its last heartbeat."""
        return f"{self.prefix}:workers"

    def progress(self, node: str) -> str:
        """String (JSON, `worker.obs.liveness.Progress`) with a TTL of a day: what worker `node`
        last said of its progress (messages taken, attempts finished, its event loop)."""
        return f"{self.prefix}:worker:{node}"

    @property
    def counters(self) -> str:
        """Hash of fleet-wide counters (orders by outcome, retries by class...)."""
        return f"{self.prefix}:counters"


@dataclass(frozen=True, slots=True)
class FlowKeys:
    """Redis keys of one API key's flow state (the API key itself is never stored)."""

    key_id: str
    prefix: str = "od"

    @classmethod
    def for_api_key(cls, api_key: str, prefix: str = "od") -> FlowKeys:
        return cls(hashlib.sha256(api_key.encode()).hexdigest()[:16], prefix)

    @property
    def pause(self) -> str:
        """String with a TTL: present while a 429 asks every worker to wait."""
        return f"{self.prefix}:flow:{self.key_id}:pause"

    @property
    def circuit(self) -> str:
        """Hash: `failures` (consecutive), `open_until_ms`. Deleted when the circuit closes."""
        return f"{self.prefix}:flow:{self.key_id}:circuit"

    @property
    def rate(self) -> str:
        """String: the GCRA theoretical arrival time (ms) of the next start at the limit."""
        return f"{self.prefix}:flow:{self.key_id}:rate"

    @property
    def probe(self) -> str:
        """String with a TTL: the token of the one worker probing a half-open circuit."""
        return f"{self.prefix}:flow:{self.key_id}:probe"
