"""Pure: what to do with an order after an attempt failed, or before one is made.

Reasons an order dies (the `reason` of a dead letter):
    rejected      the API refused it for good (4xx, 501...)
    bad_response  a 2xx whose body is not an order result
    conflict      a 409 after an ambiguous attempt: the first attempt probably placed it
    ambiguous     the outcome is unknown and DISPATCH_ON_AMBIGUOUS=hold
    exhausted     attempts or time used up
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from worker.backoff import next_delay_s
from worker.errors import AmbiguousError, PermanentError, SubmitError
from worker.settings import RetryPolicy

AmbiguityPolicy = Literal["retry", "hold"]


@dataclass(frozen=True, slots=True)
class Retry:
    delay_s: float
    ambiguous: bool = False


@dataclass(frozen=True, slots=True)
class Dead:
    reason: str
    ambiguous: bool = False


Decision = Retry | Dead


def out_of_budget(
    *, attempts_made: int, now_s: float, deadline_s: float, policy: RetryPolicy
) -> bool:
    """True when no further attempt may be made (checked before each POST)."""
    return attempts_made >= policy.max_attempts or now_s >= deadline_s


def decide(
    error: SubmitError,
    *,
    attempt: int,
    ambiguous_before: int,
    policy: RetryPolicy,
    on_ambiguous: AmbiguityPolicy,
    now_s: float,
    deadline_s: float,
    rng: random.Random | None = None,
) -> Decision:
    """After attempt number `attempt` failed with `error`: retry after a delay, or die."""
    if isinstance(error, PermanentError):
        if error.http_status == 409 and ambiguous_before > 0:
            return Dead("conflict")
        return Dead("bad_response" if error.kind == "unparseable_body" else "rejected")
    ambiguous = isinstance(error, AmbiguousError)
    if ambiguous and on_ambiguous == "hold":
        return Dead("ambiguous", ambiguous=True)
    wait = next_delay_s(
        attempt,
        retry_after_s=error.retry_after_s,
        policy=policy,
        now_s=now_s,
        deadline_s=deadline_s,
        rng=rng,
    )
    if wait is None:
        return Dead("exhausted", ambiguous=ambiguous)
    return Retry(wait, ambiguous=ambiguous)


def next_callback_delay_s(attempts_made: int, schedule_s: tuple[float, ...]) -> float | None:
    """Pure: the wait after failed callback attempt number `attempts_made` (1 for the first)
    before the next one, or None when the schedule is used up. `schedule_s[0]` is the wait
    before the first attempt (0: at once), so a schedule of 8 entries allows 8 attempts."""
    if attempts_made >= len(schedule_s):
        return None
    return schedule_s[attempts_made]
