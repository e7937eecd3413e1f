"""Thin Celery tasks: take what a message names, and make one attempt at each."""

from __future__ import annotations

import logging
from typing import Any

from worker.celery_app import app
from worker.deliver import deliver_callback
from worker.logs import step
from worker.runtime import get_runtime
from worker.submit import attempt_order
from worker.tickets import DELIVER_TASK, DISPATCH_TASK


def _keys(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[str] | None:
    """The order keys a message names, or None (logged) when it names none."""
    keys = args[0] if len(args) == 1 and not kwargs else None
    if isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys):
        return keys
    step(
        "message.malformed",
        level=logging.ERROR,
        outcome="dropped",
        detail=f"{len(args)} args, {len(kwargs)} kwargs",
    )
    return None


@app.task(name=DISPATCH_TASK, ignore_result=True, acks_late=True, typing=False)
def dispatch(*args: Any, **kwargs: Any) -> None:
    """`dispatch([key, ...])`: place the orders a message names."""
    keys = _keys(args, kwargs)
    if keys is None:
        return
    rt = get_runtime()
    claims = rt.ledger.claim(keys, rt.node)
    rt.held_orders.add((c.key, c.token) for c in claims)
    ctx = rt.context()
    for claim in claims:
        try:
            attempt_order(ctx, claim)
        finally:
            rt.held_orders.discard(claim.key, claim.token)


@app.task(name=DELIVER_TASK, ignore_result=True, acks_late=True, typing=False)
def deliver(*args: Any, **kwargs: Any) -> None:
    """`deliver([key, ...])`: send the pending callbacks of the orders a message names."""
    keys = _keys(args, kwargs)
    if keys is None:
        return
    rt = get_runtime()
    claims = rt.callbacks.claim(keys)
    rt.held_callbacks.add((c.key, c.token) for c in claims)
    ctx = rt.deliver_context()
    for claim in claims:
        try:
            deliver_callback(ctx, claim)
        finally:
            rt.held_callbacks.discard(claim.key, claim.token)
