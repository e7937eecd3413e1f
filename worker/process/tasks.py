"""Thin Celery tasks: take what a message names, and make one attempt at each.

`dispatch` hands its keys to the process's event loop (see `runtime.py`) and waits; `deliver`
sends its callbacks in the pool thread."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from celery.exceptions import Reject

from worker.capacity import ShuttingDown
from worker.deliver import deliver_callback
from worker.logs import step
from worker.process.app import app
from worker.process.held import Held
from worker.process.runtime import get_runtime
from worker.tickets import DELIVER_TASK, DISPATCH_TASK


class _Held(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def token(self) -> str: ...


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
    if keys is not None:
        try:
            get_runtime().dispatch(keys)
        except ShuttingDown:
            # Not claimed: the message goes back to the queue for another worker at once.
            raise Reject("worker shutting down", requeue=True) from None


@app.task(name=DELIVER_TASK, ignore_result=True, acks_late=True, typing=False)
def deliver(*args: Any, **kwargs: Any) -> None:
    """`deliver([key, ...])`: send the pending callbacks of the orders a message names."""
    keys = _keys(args, kwargs)
    if keys is not None:
        rt = get_runtime()
        ctx = rt.deliver_context()
        _each(
            ctx.callbacks.claim(keys), rt.held_callbacks, functools.partial(deliver_callback, ctx)
        )


def _each(claims: Sequence[_Held], held: Held, attempt: Callable[[Any], str]) -> None:
    """One attempt at each claimed item, its lease renewed by the keeper until it is done."""
    held.add((c.key, c.token) for c in claims)
    for claim in claims:
        try:
            attempt(claim)
        finally:
            held.discard(claim.key, claim.token)
