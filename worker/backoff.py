"""Pure: how long to wait before the next attempt, and whether there is one.

    delay = max(Retry-After (capped), uniform(0, min(cap, base * 2**attempt)))

Full jitter (AWS's "Exponential Backoff and Jitter") spreads a crowd of retries evenly; the API's
own `Retry-After` is a floor, never shortened by jitter. No attempt is scheduled past the
deadline or beyond the attempt limit: `None` means give up.
"""

from __future__ import annotations

import random
from datetime import UTC
from email.utils import parsedate_to_datetime

from worker.settings import RetryPolicy


def parse_retry_after(value: str | None, *, now_s: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now_s
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, inf
        return None
    return max(0.0, seconds)


def delay_s(
    attempt: int,
    *,
    retry_after_s: float | None,
    policy: RetryPolicy,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed attempt number `attempt` (1 for the first)."""
    rng = rng or random.Random()
    exponent = min(max(attempt, 0), 64)  # 2**64 s is past any cap; avoids huge floats
    ceiling = min(policy.cap_s, policy.base_s * 2**exponent)
    jitter = rng.uniform(0.0, ceiling)
    floor = min(retry_after_s, policy.retry_after_cap_s) if retry_after_s is not None else 0.0
    return max(floor, jitter)


def next_delay_s(
    attempt: int,
    *,
    retry_after_s: float | None,
    policy: RetryPolicy,
    now_s: float,
    deadline_s: float,
    rng: random.Random | None = None,
) -> float | None:
    """The wait before attempt `attempt + 1`, or None when the attempts or the time are used up."""
    if attempt >= policy.max_attempts:
        return None
    wait = delay_s(attempt, retry_after_s=retry_after_s, policy=policy, rng=rng)
    if now_s + wait > deadline_s:
        return None
    return wait
