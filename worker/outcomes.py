"""Pure: how each ending of an attempt changes an order's record, the counters and the results.

A `Finish` says everything the ledger's `finish` script applies in one step: where the order
goes (completed, waiting for a retry, postponed, dead), the record fields it sets, the counters
it adds to, the results-stream event and the callback event it hands on. Building it here keeps
the ledger a thin layer over its scripts, and these rules testable without Redis.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from worker.claims import Claim
from worker.counters import attempt_counters
from worker.timefmt import iso


@dataclass(frozen=True, slots=True)
class Finish:
    mode: str  # complete | retry | release | dead
    score_s: float  # when it is due again (retry, release) or when it died (dead)
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
    now_s: float,
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
        "updated_at": iso(now_s),
        "completed_at": iso(now_s),
    }
    event = {
        "type": "order.completed",
        "key": claim.key,
        "account_id": claim.account_id,
        "order_id": claim.order_id,
        "id": api_id or "",
        "remote_id": remote_id or "",
        "test_url": test_url or "",
        "timestamp": iso(now_s),
    }
    return Finish(
        mode="complete",
        score_s=now_s,
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
    now_s: float,
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
        "updated_at": iso(now_s),
        "next_attempt_at": iso(now_s + delay_s),
    }
    return Finish(
        mode="retry",
        score_s=now_s + delay_s,
        fields=fields,
        incr={"ambiguous_attempts": 1} if ambiguous else {},
        counters=attempt_counters("ambiguous" if ambiguous else "retry", latency_ms),
        history=history,
        flow=flow,
    )


def postponed(*, now_s: float, delay_s: float, reason: str, counted: bool = False) -> Finish:
    """Back to wait without using an attempt (`counted`: `begin` had counted one; give it back)."""
    fields = {
        "status": "queued",
        "lease": "",
        "sending": "",
        "updated_at": iso(now_s),
        "next_attempt_at": iso(now_s + delay_s),
        "waiting_for": reason,
    }
    return Finish(
        mode="release",
        score_s=now_s + delay_s,
        fields=fields,
        incr={"attempts": -1} if counted else {},
    )


def dead(
    claim: Claim,
    *,
    now_s: float,
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
        "updated_at": iso(now_s),
        "died_at": iso(now_s),
    }
    event = {
        "type": "order.failed",
        "key": claim.key,
        "account_id": claim.account_id,
        "order_id": claim.order_id,
        "stage": stage,
        "reason": reason,
        "http_status": status,
        "timestamp": iso(now_s),
    }
    return Finish(
        mode="dead",
        score_s=now_s,
        fields=fields,
        incr={"ambiguous_attempts": 1} if ambiguous else {},
        counters=attempt_counters("dead", latency_ms),
        event=event,
        history=history,
        flow=flow,
        callback=callback_event(event) if with_callback else None,
        callback_delay_s=callback_delay_s,
    )
