"""Dead letters: list, show, replay and purge what could not be placed or delivered.

Two stages: `submit` (the order could not be placed: its record says why) and `callback` (the
order was placed or failed, but its event could not be delivered). A dead letter keeps its
record and attempt history until the retention ends. Replaying a dead order places it again
with a fresh attempt budget; replaying a dead callback only sends its event again. Purging
forgets it (a purged order's key may then be enqueued again as new).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from worker.ledger.keys import REPLY_TTL_S
from worker.ledger.records import Record, read_history, read_records
from worker.ledger.scripts import Op
from worker.ledger.steps import Ledger
from worker.tickets import batch_size


@dataclass(frozen=True, slots=True)
class DeadFilter:
    stage: str | None = None
    reason: str | None = None
    since_s: float | None = None  # unix seconds: dead at or after


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter as users see it (`dead list --json`)."""

    key: str
    stage: str
    reason: str | None
    http_status: int | None
    attempts: int
    died_at: str | None
    last_error: str | None
    record: Record

    @classmethod
    def of(cls, record: Record, stage: str) -> DeadLetter:
        if stage == "callback":
            return cls(
                record.key,
                stage,
                "exhausted",
                record.callback_http_status,
                record.callback_attempts,
                record.callback_died_at,
                record.callback_error,
                record,
            )
        return cls(
            record.key,
            stage,
            record.dead_reason,
            record.http_status,
            record.attempts,
            record.died_at,
            record.last_error,
            record,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "stage": self.stage,
            "reason": self.reason,
            "http_status": self.http_status,
            "attempts": self.attempts,
            "ambiguous_attempts": self.record.ambiguous_attempts,
            "died_at": self.died_at,
            "last_error": self.last_error,
        }


class DeadLetters:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.redis = ledger.redis
        self.keys = ledger.keys

    def select(self, where: DeadFilter | None = None, *, limit: int = 10_000) -> list[DeadLetter]:
        """Dead letters that match `where`, oldest death first within each stage."""
        where = where or DeadFilter()
        low = "-inf" if where.since_s is None else int(where.since_s * 1000)
        out: list[DeadLetter] = []
        for stage, zset in (("submit", self.keys.dead), ("callback", self.keys.dead_callback)):
            if where.stage not in (None, stage):
                continue
            keys: list[str] = self.redis.zrangebyscore(  # type: ignore[assignment]
                zset, low, "+inf", start=0, num=limit
            )
            for record in read_records(self.redis, self.keys, keys):
                if record is None or (stage == "submit" and record.status != "dead"):
                    continue
                letter = DeadLetter.of(record, stage)
                if where.reason in (None, letter.reason):
                    out.append(letter)
        return out

    def show(self, key: str) -> tuple[Record, list[dict[str, Any]]] | None:
        record = read_records(self.redis, self.keys, [key])[0]
        if record is None:
            return None
        return record, read_history(self.redis, self.keys, key)

    def replay(self, keys: list[str], *, stage: str | None = None) -> list[str]:
        """Replay dead letters (of `stage`, or whichever each key has); returns those replayed."""
        if not keys:
            return []
        cfg, nonce = self.ledger.config, uuid.uuid4().hex
        args: list[Any] = [
            self.ledger.ops.now_arg(),
            int(cfg.deadline_s * 1000),
            nonce,
            self.ledger.ops.parts_json,
            batch_size(len(keys), spread=cfg.batch_spread, batch_max=cfg.batch_max),
            stage or "any",
            REPLY_TTL_S,
            *keys,
        ]
        k = self.keys
        touched = [k.dead, k.queued, k.ticket_seq, cfg.queue, k.dead_callback, k.cb_waiting]
        touched.append(k.reply(nonce))
        touched += self.ledger.ops.records(keys)
        return self.ledger.run(Op.one("replay", touched, args, list))

    def purge(self, keys: list[str]) -> list[str]:
        if not keys:
            return []
        k = self.keys
        touched = [
            k.dead,
            k.dead_callback,
            k.reply(uuid.uuid4().hex),
            *(x for key in keys for x in (k.record(key), k.history(key))),
        ]
        return self.ledger.run(Op.one("purge", touched, [REPLY_TTL_S, *keys], list))
