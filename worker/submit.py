"""One order, one attempt: check the budget, POST, record the outcome. No Celery here.

The task hands each claimed order to `attempt_order`; everything it needs arrives as arguments,
so it is tested with a real ledger and an `httpx.MockTransport`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from worker.errors import SubmitError
from worker.flow import flow_outcome, wait_with_jitter
from worker.ledger import Claim, Ledger
from worker.logs import step
from worker.policy import AmbiguityPolicy, Dead, decide, out_of_budget
from worker.settings import RetryPolicy
from worker.stackone import StackOneClient


@dataclass(frozen=True, slots=True)
class AttemptContext:
    ledger: Ledger
    client: StackOneClient
    retry: RetryPolicy
    on_ambiguous: AmbiguityPolicy
    worker: str
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None


def attempt_order(ctx: AttemptContext, claim: Claim) -> str:
    """Make one attempt at a claimed order; return the outcome's name."""
    ledger = ctx.ledger
    now = ctx.clock()
    deadline_s = claim.deadline_ms / 1000
    if out_of_budget(
        attempts_made=claim.attempts, now_s=now, deadline_s=deadline_s, policy=ctx.retry
    ):
        ledger.kill(
            claim,
            stage="submit",
            reason="exhausted",
            http_status=None,
            error="attempts or time used up before this attempt",
        )
        step(
            "order.dead",
            level=logging.WARNING,
            order_key=claim.key,
            attempt=claim.attempts,
            outcome="exhausted",
        )
        return "dead"
    gate = ledger.begin(claim)
    if gate.verdict == "lost":
        step("order.lease_lost", order_key=claim.key, outcome="skipped")
        return "skipped"
    if not gate.go:
        return _postpone(ctx, claim, gate.wait_s, gate.verdict)
    if gate.start_in_s > 0:
        ctx.sleep(gate.start_in_s)  # our reserved start; then one more look at the gates
        if ledger.gates_shut():
            return _postpone(ctx, claim, 0.5, "paused", counted=True)
    started = time.monotonic()
    try:
        result = ctx.client.submit(
            body=claim.body, account_id=claim.account_id, idempotency_key=claim.key
        )
    except SubmitError as error:
        return _failed(ctx, claim, error, time.monotonic() - started)
    duration_ms = round((time.monotonic() - started) * 1000, 1)
    entry = {
        "at": now,
        "attempt": claim.attempts,
        "outcome": "completed",
        "worker": ctx.worker,
        "duration_ms": duration_ms,
    }
    ledger.complete(
        claim, api_id=result.id, remote_id=result.remote_id, test_url=result.test_url, history=entry
    )
    if result.test_url:
        step(
            "order.completed",
            order_key=claim.key,
            attempt=claim.attempts,
            outcome="completed",
            duration_ms=duration_ms,
        )
    else:
        step(
            "order.completed_without_url",
            level=logging.WARNING,
            order_key=claim.key,
            attempt=claim.attempts,
            outcome="missing_test_url",
            duration_ms=duration_ms,
        )
    return "completed"


def _postpone(
    ctx: AttemptContext, claim: Claim, wait_s: float, reason: str, *, counted: bool = False
) -> str:
    """A shared gate is shut: wait in the ledger (no attempt used, no thread held)."""
    delay_s = wait_with_jitter(wait_s, ctx.rng)
    ctx.ledger.postpone(claim, delay_s=delay_s, reason=reason, counted=counted)
    step(
        "order.postponed",
        order_key=claim.key,
        attempt=claim.attempts,
        outcome=reason,
        delay_s=round(delay_s, 3),
    )
    return "postponed"


def _failed(ctx: AttemptContext, claim: Claim, error: SubmitError, took_s: float) -> str:
    now = ctx.clock()
    decision = decide(
        error,
        attempt=claim.attempts,
        ambiguous_before=claim.ambiguous_attempts,
        policy=ctx.retry,
        on_ambiguous=ctx.on_ambiguous,
        now_s=now,
        deadline_s=claim.deadline_ms / 1000,
        rng=ctx.rng,
    )
    entry = {
        "at": now,
        "attempt": claim.attempts,
        "outcome": error.kind,
        "worker": ctx.worker,
        "http_status": error.http_status,
        "duration_ms": round(took_s * 1000, 1),
    }
    flow = flow_outcome(error)
    if isinstance(decision, Dead):
        ctx.ledger.kill(
            claim,
            stage="submit",
            reason=decision.reason,
            http_status=error.http_status,
            error=error.describe() + (f" {error.body}" if error.body else ""),
            ambiguous=decision.ambiguous,
            history=entry,
            flow=flow,
        )
        step(
            "order.dead",
            level=logging.WARNING,
            order_key=claim.key,
            attempt=claim.attempts,
            outcome=decision.reason,
            kind=error.kind,
            http_status=error.http_status,
        )
        return "dead"
    ctx.ledger.retry(
        claim,
        delay_s=decision.delay_s,
        error=error.describe(),
        ambiguous=decision.ambiguous,
        history=entry,
        flow=flow,
    )
    step(
        "order.retry_scheduled",
        order_key=claim.key,
        attempt=claim.attempts,
        outcome=error.kind,
        http_status=error.http_status,
        delay_s=round(decision.delay_s, 3),
    )
    return "retry"
