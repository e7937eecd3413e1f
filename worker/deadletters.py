"""Dead letters: list, show, replay and purge orders that could not be placed or delivered.

A dead order keeps its record (stage, reason, HTTP status, scrubbed error) and its attempt
history until the retention ends. Replaying puts it back on the queue with a fresh attempt
budget; purging forgets it (the key may then be enqueued again as new).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from worker.ledger import Ledger, iso, load_script
from worker.records import Record, read_history, read_records
from worker.tickets import batch_size


@dataclass(frozen=True, slots=True)
class DeadFilter:
    stage: str | None = None
    reason: str | None = None
    since_s: float | None = None  # unix seconds: dead at or after

    def matches(self, record: Record) -> bool:
        return (self.stage is None or record.dead_stage == self.stage) and (
            self.reason is None or record.dead_reason == self.reason
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: Record
    history: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        out = self.record.model_dump(mode="json")
        out["stage"], out["reason"] = self.record.dead_stage, self.record.dead_reason
        out["history"] = self.history
        return out


class DeadLetters:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.redis = ledger.redis
        self.keys = ledger.keys
        self._replay = self.redis.register_script(load_script("replay.lua", with_tickets=True))
        self._purge = self.redis.register_script(load_script("purge.lua"))

    def select(self, where: DeadFilter | None = None, *, limit: int = 10_000) -> list[Record]:
        """Dead orders, oldest death first, that match `where`."""
        where = where or DeadFilter()
        low = "-inf" if where.since_s is None else int(where.since_s * 1000)
        keys: list[str] = self.redis.zrangebyscore(  # type: ignore[assignment]
            self.keys.dead, low, "+inf", start=0, num=limit
        )
        records = read_records(self.redis, self.keys, keys)
        return [r for r in records if r is not None and r.status == "dead" and where.matches(r)]

    def show(self, key: str) -> DeadLetter | None:
        record = read_records(self.redis, self.keys, [key])[0]
        if record is None:
            return None
        return DeadLetter(record, read_history(self.redis, self.keys, key))

    def replay(self, keys: list[str]) -> list[str]:
        """Queue dead orders again with a fresh budget; returns the keys actually replayed."""
        if not keys:
            return []
        now = self.ledger.clock()
        cfg = self.ledger.config
        args: list[Any] = [
            int(now * 1000),
            iso(now),
            int((now + cfg.deadline_s) * 1000),
            uuid.uuid4().hex,
            self.ledger.parts_json,
            batch_size(len(keys), spread=cfg.batch_spread, batch_max=cfg.batch_max),
            self.keys.record_prefix,
            *keys,
        ]
        k = self.keys
        return list(self._replay(keys=[k.dead, k.queued, k.ticket_seq, cfg.queue], args=args))

    def purge(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        args = [self.keys.record_prefix, self.keys.history_prefix, *keys]
        return list(self._purge(keys=[self.keys.dead], args=args))
