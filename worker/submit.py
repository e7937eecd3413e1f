"""One order, one attempt: check the budget, pass the shared gates, POST, record the outcome.

No Celery here: the task hands the keys a message names to `attempt_batch` on the worker's
event loop, which claims them once the process has room (`Capacity`) and makes one attempt at
each, concurrently. Everything an attempt needs arrives in an `AttemptContext`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from worker import outcomes
from worker.capacity import Capacity, ShuttingDown
from worker.claims import Claim
from worker.endings import die, failed, history, postpone, refused
from worker.errors import SubmitError
from worker.logs import step
from worker.policy import AmbiguityPolicy, out_of_budget
from worker.settings import RetryPolicy

if TYPE_CHECKING:  # the core names its edges' types, it does not import them
    from worker.http.stackone import StackOneClient
    from worker.ledger.aio import AsyncLedger


@dataclass(frozen=True, slots=True)
class AttemptContext:
    ledger: AsyncLedger
    client: StackOneClient
    retry: RetryPolicy
    on_ambiguous: AmbiguityPolicy
    worker: str
    # The operator's DISPATCH_CALLBACK_URL; an order's own callback URL also makes one apply.
    callback_url: str | None = None
    callback_first_delay_s: float = 0.0
    on_dead: Callable[[Claim, str, str, SubmitError | None], None] | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random | None = None

    def with_callback(self, claim: Claim) -> bool:
        return bool(claim.callback_url or self.callback_url)


class Leases(Protocol):
    """Where the leases this process holds are kept, for the keeper to renew."""

    def add(self, pairs: Sequence[tuple[str, str]]) -> None: ...

    def discard(self, key: str, token: str) -> None: ...


async def attempt_batch(
    ctx: AttemptContext, keys: Sequence[str], held: Leases, capacity: Capacity
) -> list[str]:
    """Claim the queued orders among `keys` once this process has room for them, and make one
    attempt at each, concurrently, within `capacity`; their leases are renewed (via `held`)
    until each is done. Raises `ShuttingDown`, claiming nothing, if the worker begins to shut
    down while the message waits for room."""
    if not keys:
        return []
    units = await capacity.take(len(keys))
    if not units:
        raise ShuttingDown
    try:
        claims = await ctx.ledger.claim(keys, ctx.worker)
    except BaseException:
        capacity.give_back(units)
        raise
    kept = min(units, len(claims))  # an order already taken elsewhere needs no room
    capacity.give_back(units - kept)
    held.add([(c.key, c.token) for c in claims])

    async def one(i: int, claim: Claim) -> str:
        try:
            async with capacity.in_flight:
                return await attempt_order(ctx, claim)
        finally:
            held.discard(claim.key, claim.token)
            if i < kept:
                capacity.give_back(1)

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(claims))))


async def attempt_order(ctx: AttemptContext, claim: Claim) -> str:
    """Make one attempt at a claimed order; return the outcome's name."""
    ledger = ctx.ledger
    now = ctx.clock()
    if out_of_budget(
        attempts_made=claim.attempts,
        now_s=now,
        deadline_s=claim.deadline_ms / 1000,
        policy=ctx.retry,
    ):
        error = "attempts or time used up before this attempt"
        return await die(ctx, claim, "exhausted", None, error)
    gate = await ledger.begin(claim)
    if gate.verdict == "lost":
        step("order.lease_lost", order_key=claim.key, outcome="skipped")
        return "skipped"
    if not gate.go:
        return await postpone(ctx, claim, gate.wait_s, gate.verdict)
    if gate.start_in_s > 0:
        await ctx.sleep(gate.start_in_s)  # our reserved start; then one more look at the gates
        if await ledger.gates_shut():
            return await postpone(ctx, claim, 0.5, "paused", counted=True)
    started = time.monotonic()
    try:
        result = await ctx.client.submit(
            body=claim.body, account_id=claim.account_id, idempotency_key=claim.key
        )
    except SubmitError as error:
        return await failed(ctx, claim, error, (time.monotonic() - started) * 1000)
    latency_ms = round((time.monotonic() - started) * 1000, 1)
    now = ctx.clock()
    entry = history(ctx, claim, now, "completed", None, latency_ms)
    recorded = await ledger.finish(
        claim,
        outcomes.completed(
            claim,
            api_id=result.id,
            remote_id=result.remote_id,
            test_url=result.test_url,
            latency_ms=latency_ms,
            history=entry,
            with_callback=ctx.with_callback(claim),
            callback_delay_s=ctx.callback_first_delay_s,
        ),
    )
    if not recorded:
        return refused(claim, "completed")
    if result.test_url:
        step(
            "order.completed",
            order_key=claim.key,
            attempt=claim.attempts,
            outcome="completed",
            duration_ms=latency_ms,
        )
    else:
        step(
            "order.completed_without_url",
            level=logging.WARNING,
            order_key=claim.key,
            attempt=claim.attempts,
            outcome="missing_test_url",
            duration_ms=latency_ms,
        )
        if ctx.on_dead is not None:
            ctx.on_dead(claim, "submit", "missing_test_url", None)
    return "completed"
