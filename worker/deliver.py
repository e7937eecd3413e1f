"""One callback, one attempt: sign and POST the event, record how it went. No Celery here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from worker.policy import next_callback_delay_s

if TYPE_CHECKING:  # the core names its edges' types, it does not import them
    from worker.http.webhooks import CallbackClient
    from worker.ledger.callbacks import CallbackLedger
from worker.claims import CallbackClaim
from worker.logs import step


@dataclass(frozen=True, slots=True)
class DeliverContext:
    callbacks: CallbackLedger
    client: CallbackClient
    secret: str
    default_url: str | None  # DISPATCH_CALLBACK_URL, for orders without their own
    schedule_s: tuple[float, ...]
    on_dead: Callable[[CallbackClaim, str, int | None], None] | None = None


def deliver_callback(ctx: DeliverContext, claim: CallbackClaim) -> str:
    """Make one delivery attempt of a claimed callback; return the outcome's name."""
    url = claim.callback_url or ctx.default_url
    attempt = claim.attempts + 1
    if not url:
        return _failed(ctx, claim, attempt, "no callback URL: DISPATCH_CALLBACK_URL is unset", None)
    if not ctx.secret:
        return _failed(ctx, claim, attempt, "DISPATCH_CALLBACK_SECRET is unset", None)
    delivery = ctx.client.send(
        url,
        claim.body.encode(),
        msg_id=claim.msg_id,
        secret=ctx.secret,
        guarded=bool(claim.callback_url),
    )
    if delivery.delivered:
        ctx.callbacks.delivered(claim)
        step(
            "callback.delivered",
            order_key=claim.key,
            attempt=attempt,
            outcome="delivered",
            webhook_id=claim.msg_id,
            http_status=delivery.http_status,
        )
        return "delivered"
    error = f"{delivery.kind}: {delivery.detail}" if delivery.detail else delivery.kind
    return _failed(ctx, claim, attempt, error, delivery.http_status)


def _failed(
    ctx: DeliverContext, claim: CallbackClaim, attempt: int, error: str, http_status: int | None
) -> str:
    delay_s = next_callback_delay_s(attempt, ctx.schedule_s)
    ctx.callbacks.failed(claim, retry_in_s=delay_s, error=error[:300], http_status=http_status)
    if delay_s is None:
        step(
            "callback.dead",
            level=logging.WARNING,
            order_key=claim.key,
            attempt=attempt,
            outcome="exhausted",
            http_status=http_status,
            webhook_id=claim.msg_id,
        )
        if ctx.on_dead is not None:
            ctx.on_dead(claim, error, http_status)
        return "dead"
    step(
        "callback.retry_scheduled",
        order_key=claim.key,
        attempt=attempt,
        outcome="failed",
        http_status=http_status,
        delay_s=delay_s,
        webhook_id=claim.msg_id,
    )
    return "retry"
