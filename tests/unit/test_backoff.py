"""Retry timing (SPEC §4): worker/backoff.py, full-jitter backoff with Retry-After as a floor."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.backoff import delay_s, next_delay_s, parse_retry_after
from worker.settings import RetryPolicy

# The shipped defaults (Settings), stated here because the tests below compute with them;
# Retry-After is believed up to 1 h.
POLICY = RetryPolicy(base_s=1.0, cap_s=600.0, max_attempts=25, deadline_s=86400.0)
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
DAY = 86400.0

policies = st.builds(
    RetryPolicy,
    base_s=st.floats(min_value=0.001, max_value=60),
    cap_s=st.floats(min_value=0.001, max_value=100_000),
    max_attempts=st.integers(min_value=1, max_value=100),
    deadline_s=st.just(DAY),
    retry_after_cap_s=st.floats(min_value=0, max_value=100_000),
)
attempts = st.integers(min_value=0, max_value=200)
retry_afters = st.none() | st.floats(min_value=0, max_value=1e7)
seeds = st.integers(min_value=0, max_value=2**32)


def ceiling(attempt: int, policy: RetryPolicy) -> float:
    return min(policy.cap_s, policy.base_s * 2.0**attempt)


# --- delay_s --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 9, 10, 25, 64, 65, 1000, 10_000])
@pytest.mark.parametrize("seed", range(5))
def test_delay_is_full_jitter_under_the_ceiling(attempt: int, seed: int) -> None:
    """Without Retry-After the delay is full jitter between 0 and the attempt's ceiling."""
    delay = delay_s(attempt, retry_after_s=None, policy=POLICY, rng=random.Random(seed))
    assert 0.0 <= delay <= min(POLICY.cap_s, POLICY.base_s * 2.0 ** min(attempt, 64))


@given(attempt=attempts, policy=policies, seed=seeds)
def test_delay_without_retry_after_is_within_the_ceiling(
    attempt: int, policy: RetryPolicy, seed: int
) -> None:
    """For any policy and attempt, the delay stays within min(cap, base * 2**attempt)."""
    delay = delay_s(attempt, retry_after_s=None, policy=policy, rng=random.Random(seed))
    assert 0.0 <= delay <= ceiling(attempt, policy)


@given(
    attempt=attempts, policy=policies, seed=seeds, retry_after=st.floats(min_value=0, max_value=1e7)
)
def test_retry_after_is_a_floor(
    attempt: int, policy: RetryPolicy, seed: int, retry_after: float
) -> None:
    """The API's Retry-After (capped) is a floor that jitter never shortens."""
    delay = delay_s(attempt, retry_after_s=retry_after, policy=policy, rng=random.Random(seed))
    floor = min(retry_after, policy.retry_after_cap_s)
    assert delay >= floor
    assert delay <= max(floor, ceiling(attempt, policy))


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(700.0, 700.0), (3600.0, 3600.0), (1e9, 3600.0)],  # above the 600 s jitter ceiling
    ids=["over the cap", "at the Retry-After cap", "absurd Retry-After is capped"],
)
def test_long_retry_after_is_honoured_up_to_its_cap(retry_after: float, expected: float) -> None:
    """A long Retry-After is honoured up to its cap, whatever the jitter."""
    for seed in range(10):
        delay = delay_s(30, retry_after_s=retry_after, policy=POLICY, rng=random.Random(seed))
        assert delay == expected


def test_the_cap_is_respected_for_huge_attempt_numbers() -> None:
    """Huge attempt numbers neither overflow nor pass the cap."""
    policy = replace(POLICY, base_s=1, cap_s=5)
    delays = [
        delay_s(n, retry_after_s=None, policy=policy, rng=random.Random(n))
        for n in range(10, 10_000, 97)
    ]
    assert max(delays) <= 5.0


def test_same_seed_same_delay_and_jitter_spreads() -> None:
    """One seed gives one delay, and different seeds spread the delays out."""
    first = delay_s(8, retry_after_s=None, policy=POLICY, rng=random.Random(42))
    again = delay_s(8, retry_after_s=None, policy=POLICY, rng=random.Random(42))
    assert first == again
    spread = {
        delay_s(8, retry_after_s=None, policy=POLICY, rng=random.Random(seed)) for seed in range(50)
    }
    assert len(spread) == 50


def test_default_rng_is_used_when_none_is_given() -> None:
    """Without an rng the delay is still jitter within the ceiling."""
    assert 0.0 <= delay_s(3, retry_after_s=None, policy=POLICY) <= 8.0


# --- parse_retry_after ----------------------------------------------------------------------------


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("120", 120.0),
        (http_date(NOW + timedelta(seconds=30)), 30.0),
        (http_date(NOW + timedelta(hours=2)), 7200.0),
        (http_date(NOW), 0.0),
        (http_date(NOW - timedelta(minutes=5)), 0.0),
        ("-3", 0.0),
        ("-0.5", 0.0),
        ("garbage", None),
        ("Mon, 99 Foo 2025 00:00:30 GMT", None),
        ("nan", None),
        ("inf", None),
        ("1e400", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds or an HTTP date; anything else is ignored."""
    assert parse_retry_after(value, now_s=NOW_S) == expected


def test_http_date_without_zone_is_read_as_utc() -> None:
    """An HTTP date without a zone is read as UTC."""
    assert parse_retry_after("Sun, 01 Jun 2025 12:00:10", now_s=NOW_S) == 10.0


@given(seconds=st.integers(min_value=-(10**6), max_value=10**6))
def test_http_date_is_seconds_from_now(seconds: int) -> None:
    """An HTTP date becomes seconds from now, never negative."""
    value = http_date(NOW + timedelta(seconds=seconds))
    assert parse_retry_after(value, now_s=NOW_S) == max(0.0, float(seconds))


# --- next_delay_s ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [25, 26, 100])
def test_no_delay_once_the_attempts_are_used_up(attempt: int) -> None:
    """Once the attempts are used up there is no next attempt."""
    assert (
        next_delay_s(
            attempt,
            retry_after_s=None,
            policy=POLICY,
            now_s=NOW_S,
            deadline_s=NOW_S + DAY,
            rng=random.Random(0),
        )
        is None
    )


def test_last_attempt_within_budget_still_gets_a_delay() -> None:
    """The last attempt within the budget is still scheduled."""
    delay = next_delay_s(
        24,
        retry_after_s=None,
        policy=POLICY,
        now_s=NOW_S,
        deadline_s=NOW_S + DAY,
        rng=random.Random(0),
    )
    assert delay is not None
    assert 0.0 <= delay <= POLICY.cap_s


@pytest.mark.parametrize(
    ("retry_after", "left_s"),
    [(10.0, 5.0), (10.0, 9.999), (1.0, 0.0), (0.001, -1.0)],
)
def test_no_delay_past_the_deadline(retry_after: float, left_s: float) -> None:
    """No attempt is scheduled past the order's deadline."""
    assert (
        next_delay_s(
            1,
            retry_after_s=retry_after,
            policy=POLICY,
            now_s=NOW_S,
            deadline_s=NOW_S + left_s,
            rng=random.Random(0),
        )
        is None
    )


def test_delay_that_ends_at_the_deadline_is_allowed() -> None:
    """An attempt due exactly at the deadline is still allowed."""
    delay = next_delay_s(
        0,
        retry_after_s=10.0,
        policy=replace(POLICY, base_s=1, cap_s=1),
        now_s=NOW_S,
        deadline_s=NOW_S + 10.0,
        rng=random.Random(0),
    )
    assert delay == 10.0


@given(
    attempt=attempts,
    policy=policies,
    seed=seeds,
    retry_after=retry_afters,
    left_s=st.floats(min_value=-100, max_value=2 * DAY),
)
def test_next_delay_never_passes_the_deadline(
    attempt: int, policy: RetryPolicy, seed: int, retry_after: float | None, left_s: float
) -> None:
    """For any inputs, a scheduled attempt is never due past the deadline."""
    deadline = NOW_S + left_s
    delay = next_delay_s(
        attempt,
        retry_after_s=retry_after,
        policy=policy,
        now_s=NOW_S,
        deadline_s=deadline,
        rng=random.Random(seed),
    )
    if attempt >= policy.max_attempts:
        assert delay is None
    if delay is not None:
        assert delay >= 0.0
        assert NOW_S + delay <= deadline
        assert delay == delay_s(
            attempt, retry_after_s=retry_after, policy=policy, rng=random.Random(seed)
        )
