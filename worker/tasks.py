"""Thin Celery tasks: take the orders a message names, and make an attempt at each."""

from __future__ import annotations

import logging
from typing import Any

from worker.celery_app import app
from worker.logs import step
from worker.runtime import get_runtime
from worker.submit import attempt_order
from worker.tickets import DISPATCH_TASK


@app.task(name=DISPATCH_TASK, ignore_result=True, acks_late=True, typing=False)
def dispatch(*args: Any, **kwargs: Any) -> None:
    """`dispatch([key, ...])`: a message that names orders. Anything else is logged and dropped."""
    keys = args[0] if len(args) == 1 and not kwargs else None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        step(
            "message.malformed",
            level=logging.ERROR,
            outcome="dropped",
            detail=f"{len(args)} args, {len(kwargs)} kwargs",
        )
        return
    rt = get_runtime()
    claims = rt.ledger.claim(keys, rt.node)
    rt.hold(claims)
    ctx = rt.context()
    for claim in claims:
        try:
            attempt_order(ctx, claim)
        finally:
            rt.release(claim)
