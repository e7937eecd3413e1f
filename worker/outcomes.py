"""Pure: how each ending of an attempt changes an order's record, the counters and the results.

A `Finish` says everything the ledger's `finish` script applies in one step: where the order
goes (completed, waiting for a retry, postponed, dead), the record fields it sets, the counters
it adds to, the results-stream event and the callback event it hands on. Building it here keeps
the ledger a thin layer over its scripts, and these rules testable without Redis.

No host clock here: an ending's times are Redis's, stamped by the script that records it (the
fleet has one clock), so a `Finish` carries delays and the placeholders `NOW` and `DUE`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from worker.claims import Claim
from worker.counters import attempt_counters

# Values the ledger's finish script replaces with its own time (ISO-8601): when it records the
# ending, and when the order is due again (that time plus `Finish.delay_s`).
NOW = "@@NOW@@"
DUE = "@@DUE@@"


@dataclass(frozen=True, slots=True)
class Finish:
    mode: str  # complete | retry | release | dead
    delay_s: float  # how long after it is recorded it is due again (retry, release)
    fields: dict[str, str]
    incr: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    event: dict[str, str] | None = None
    history: dict[str, Any] | None = None
    flow: str = ""
    # The callback event to send, as (JSON body, webhook-id), when a callback applies, and the
    # wait before its first attempt (the callback schedule's first entry).
    callback: tuple[str, str] | None = None
    callback_delay_s: float = 0.0


def callback_event(event: dict[str, str]) -> tuple[str, str]:
    """The signed-callback form of a results event: `{"type", "timestamp", "data"}` and a
    webhook-id that stays the same on every delivery attempt of this event."""
    data: dict[str, Any] = {k: v for k, v in event.items() if k not in ("type", "timestamp")}
    if "http_status" in data:  # a number in the JSON body (the stream holds strings)
        data["http_status"] = int(data["http_status"]) if data["http_status"] else None
    body = {"type": event["type"], "timestamp": event["timestamp"], "data": data}
    return json.dumps(body, separators=(",", ":")), f"msg_{uuid.uuid4().hex}"


def completed(
    claim: Claim,
    *,
    api_id: str | None,
    remote_id: str | None,
    test_url: str | None,
    latency_ms: float | None = None,
    history: dict[str, Any] | None = None,
    with_callback: bool = False,
    callback_delay_s: float = 0.0,
) -> Finish:
    fields = {
        "status": "completed",
        "test_url": test_url or "",
        "remote_id": remote_id or "",
        "api_id": api_id or "",
        "lease": "",
        "sending": "",
        "last_error": "" if test_url else "the API answered without a test_url",
        "updated_at": NOW,
        "completed_at": NOW,
    }
    event = {
        "type": "order.completed",
        "key": claim.key,
        "account_id": claim.account_id,
        "order_id": claim.order_id,
        "id": api_id or "",
        "remote_id": remote_id or "",
        "test_url": test_url or "",
        "timestamp": NOW,
    }
    return Finish(
        mode="complete",
        delay_s=0.0,
        fields=fields,
        counters=attempt_counters("completed", latency_ms),
        event=event,
        history=history,
        flow="ok",
        callback=callback_event(event) if with_callback else None,
        callback_delay_s=callback_delay_s,
    )


def retrying(
    *,
    delay_s: float,
    error: str,
    ambiguous: bool = False,
    latency_ms: float | None = None,
    history: dict[str, Any] | None = None,
    flow: str = "",
) -> Finish:
    fields = {
        "status": "retrying",
        "lease": "",
        "sending": "",
        "last_error": error,
        "updated_at": NOW,
        "next_attempt_at": DUE,
    }
    return Finish(
        mode="retry",
        delay_s=delay_s,
        fields=fields,
        incr={"ambiguous_attempts": 1} if ambiguous else {},
        counters=attempt_counters("ambiguous" if ambiguous else "retry", latency_ms),
        history=history,
        flow=flow,
    )


def postponed(*, delay_s: float, reason: str, counted: bool = False) -> Finish:
    """Back to wait without using an attempt (`counted`: `begin` had counted one; give it back)."""
    fields = {
        "status": "queued",
        "lease": "",
        "sending": "",
        "updated_at": NOW,
        "next_attempt_at": DUE,
        "waiting_for": reason,
    }
    return Finish(
        mode="release",
        delay_s=delay_s,
        fields=fields,
        incr={"attempts": -1} if counted else {},
    )


def dead(
    claim: Claim,
    *,
    stage: str,
    reason: str,
    http_status: int | None,
    error: str,
    ambiguous: bool = False,
    latency_ms: float | None = None,
    history: dict[str, Any] | None = None,
    flow: str = "",
    with_callback: bool = False,
    callback_delay_s: float = 0.0,
) -> Finish:
    status = "" if http_status is None else str(http_status)
    fields = {
        "status": "dead",
        "dead_stage": stage,
        "dead_reason": reason,
        "http_status": status,
        "last_error": error,
        "lease": "",
        "sending": "",
        "updated_at": NOW,
        "died_at": NOW,
    }
    event = {
        "type": "order.failed",
        "key": claim.key,
        "account_id": claim.account_id,
        "order_id": claim.order_id,
        "stage": stage,
        "reason": reason,
        "http_status": status,
        "timestamp": NOW,
    }
    return Finish(
        mode="dead",
        delay_s=0.0,
        fields=fields,
        incr={"ambiguous_attempts": 1} if ambiguous else {},
        counters=attempt_counters("dead", latency_ms),
        event=event,
        history=history,
        flow=flow,
        callback=callback_event(event) if with_callback else None,
        callback_delay_s=callback_delay_s,
    )
