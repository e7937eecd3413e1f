"""How an attempt ends, recorded: each ending (postponed, retry scheduled, dead, refused) is one
`Finish` for the ledger, then one log line, and for a dead order one report. No Celery here;
`submit` decides which ending applies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from worker import outcomes
from worker.claims import Claim
from worker.errors import SubmitError
from worker.flow import flow_outcome, wait_with_jitter
from worker.logs import step
from worker.policy import Dead, decide

if TYPE_CHECKING:
    from worker.submit import AttemptContext


def history(
    ctx: AttemptContext, claim: Claim, now: float, outcome: str, status: int | None, ms: float
) -> dict[str, object]:
    return {
        "at": now,
        "attempt": claim.attempts,
        "outcome": outcome,
        "worker": ctx.worker,
        "http_status": status,
        "duration_ms": ms,
    }


async def postpone(
    ctx: AttemptContext, claim: Claim, wait_s: float, reason: str, *, counted: bool = False
) -> str:
    """A shared gate is shut: wait in the ledger (no attempt used, no slot held)."""
    delay_s = wait_with_jitter(wait_s, ctx.rng)
    outcome = outcomes.postponed(delay_s=delay_s, reason=reason, counted=counted)
    if not await ctx.ledger.finish(claim, outcome):
        return refused(claim, reason)
    step(
        "order.postponed",
        order_key=claim.key,
        attempt=claim.attempts,
        outcome=reason,
        delay_s=round(delay_s, 3),
    )
    return "postponed"


async def die(
    ctx: AttemptContext,
    claim: Claim,
    reason: str,
    error: SubmitError | None,
    text: str,
    *,
    ambiguous: bool = False,
    latency_ms: float | None = None,
    history: dict[str, object] | None = None,
) -> str:
    status = error.http_status if error else None
    recorded = await ctx.ledger.finish(
        claim,
        outcomes.dead(
            claim,
            stage="submit",
            reason=reason,
            http_status=status,
            error=text,
            ambiguous=ambiguous,
            latency_ms=latency_ms,
            history=history,
            flow=flow_outcome(error) if error else "",
            with_callback=ctx.with_callback(claim),
            callback_delay_s=ctx.callback_first_delay_s,
        ),
    )
    if not recorded:
        return refused(claim, reason)
    step(
        "order.dead",
        level=logging.WARNING,
        order_key=claim.key,
        attempt=claim.attempts,
        outcome=reason,
        kind=error.kind if error else reason,
        http_status=status,
    )
    if ctx.on_dead is not None:
        ctx.on_dead(claim, "submit", reason, error)
    return "dead"


async def failed(ctx: AttemptContext, claim: Claim, error: SubmitError, latency_ms: float) -> str:
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
    entry = history(ctx, claim, now, error.kind, error.http_status, round(latency_ms, 1))
    # The latency histogram is of the API's answers: a connection that failed is not one.
    answered_ms = latency_ms if error.http_status is not None else None
    if isinstance(decision, Dead):
        text = error.describe() + (f" {error.body}" if error.body else "")
        return await die(
            ctx,
            claim,
            decision.reason,
            error,
            text,
            ambiguous=decision.ambiguous,
            latency_ms=answered_ms,
            history=entry,
        )
    recorded = await ctx.ledger.finish(
        claim,
        outcomes.retrying(
            delay_s=decision.delay_s,
            error=error.describe(),
            ambiguous=decision.ambiguous,
            latency_ms=answered_ms,
            history=entry,
            flow=flow_outcome(error),
        ),
    )
    if not recorded:
        return refused(claim, error.kind)
    step(
        "order.retry_scheduled",
        order_key=claim.key,
        attempt=claim.attempts,
        outcome=error.kind,
        http_status=error.http_status,
        delay_s=round(decision.delay_s, 3),
    )
    return "retry"


def refused(claim: Claim, outcome: str) -> str:
    """The ledger refused the outcome: this worker no longer held the lease (it was paused or
    cut off past it) or the order had ended. Nothing shared changed; say so, once."""
    step(
        "order.refused",
        level=logging.WARNING,
        order_key=claim.key,
        attempt=claim.attempts,
        outcome="refused",
        would_have_been=outcome,
    )
    return "refused"
