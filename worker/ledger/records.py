"""Reading the ledger: order records and the results stream, as users see them (SPEC §5)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from pydantic import BaseModel

from worker.ledger.keys import FinalStatus, Keys

Status = Literal["queued", "submitting", "retrying", FinalStatus]
CallbackState = Literal["none", "pending", "delivered", "failed"]


# Hash fields of the callback stage, by the names the record shows them under.
_RENAMED = {
    "cb_attempts": "callback_attempts",
    "cb_last_error": "callback_error",
    "cb_http_status": "callback_http_status",
    "cb_delivered_at": "callback_delivered_at",
    "cb_died_at": "callback_died_at",
}


class Record(BaseModel):
    """What `status --json` prints for one order."""

    key: str
    account_id: str
    order_id: str
    status: Status
    attempts: int = 0
    ambiguous_attempts: int = 0
    test_url: str | None = None
    remote_id: str | None = None
    callback: CallbackState = "none"
    last_error: str | None = None
    created_at: str
    updated_at: str
    next_attempt_at: str | None = None
    waiting_for: str | None = None
    dead_stage: str | None = None
    dead_reason: str | None = None
    http_status: int | None = None
    died_at: str | None = None
    callback_attempts: int = 0
    callback_error: str | None = None
    callback_http_status: int | None = None
    callback_delivered_at: str | None = None
    callback_died_at: str | None = None

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Record:
        data: dict[str, Any] = {
            _RENAMED.get(k, k): (v if v != "" else None) for k, v in raw.items()
        }
        return cls.model_validate({k: v for k, v in data.items() if k in cls.model_fields})


def read_records(client: redis.Redis, keys: Keys, order_keys: Sequence[str]) -> list[Record | None]:
    """One record per key (None where unknown or expired), in one round trip."""
    with client.pipeline(transaction=False) as pipe:
        for key in order_keys:
            pipe.hgetall(keys.record(key))
        replies = pipe.execute()
    return [Record.from_hash(raw) if raw else None for raw in replies]


def read_history(client: redis.Redis, keys: Keys, key: str) -> list[dict[str, Any]]:
    entries: list[str] = client.lrange(keys.history(key), 0, -1)  # type: ignore[assignment]
    return [json.loads(entry) for entry in entries]


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the results stream: its stream id and its fields."""

    id: str
    type: str
    data: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "data": self.data}


def event_from_entry(entry_id: str, fields: dict[str, str]) -> Event:
    data = dict(fields)
    return Event(id=entry_id, type=data.pop("type", ""), data=data)


def read_events(
    client: redis.Redis, keys: Keys, *, since: str = "0", count: int = 1000
) -> list[Event]:
    """Events after `since` (a stream id; `0` means from the start)."""
    start = "-" if since in ("0", "") else f"({since}"
    entries: list[Any] = client.xrange(keys.events, start, "+", count=count)  # type: ignore[assignment]
    return [event_from_entry(i, f) for i, f in entries]


def follow_events(
    client: redis.Redis, keys: Keys, *, since: str = "$", block_ms: int = 1000
) -> Iterator[Event]:
    """Events after `since`, forever, as they come (`$`: only new ones)."""
    last = since or "$"
    if last == "$":
        newest: list[Any] = client.xrevrange(keys.events, "+", "-", count=1)  # type: ignore[assignment]
        last = newest[0][0] if newest else "0"
    while True:
        reply: Any = client.xread({keys.events: last}, block=block_ms, count=500)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                last = entry_id
                yield event_from_entry(entry_id, fields)
