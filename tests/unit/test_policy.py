"""What follows a failed attempt (SPEC §3, §4): worker/policy.py `decide` and `out_of_budget`."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.errors import AmbiguousError, PermanentError, RetryableError, SubmitError
from worker.policy import AmbiguityPolicy, Dead, Decision, Retry, decide, out_of_budget
from worker.settings import RetryPolicy

POLICY = RetryPolicy(base_s=1.0, cap_s=600.0, max_attempts=25, deadline_s=86400.0)  # the defaults
NOW_S = 1_750_000_000.0
DEADLINE_S = NOW_S + 86400.0


def run(
    error: SubmitError,
    *,
    attempt: int = 1,
    ambiguous_before: int = 0,
    on_ambiguous: AmbiguityPolicy = "retry",
    now_s: float = NOW_S,
    deadline_s: float = DEADLINE_S,
    seed: int = 0,
) -> Decision:
    return decide(
        error,
        attempt=attempt,
        ambiguous_before=ambiguous_before,
        policy=POLICY,
        on_ambiguous=on_ambiguous,
        now_s=now_s,
        deadline_s=deadline_s,
        rng=random.Random(seed),
    )


def permanent(status: int, kind: str | None = None) -> PermanentError:
    return PermanentError(kind=kind or f"http_{status}", http_status=status)


@pytest.mark.parametrize("on_ambiguous", ["retry", "hold"])
@pytest.mark.parametrize("ambiguous_before", [0, 2])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 412, 422, 501])
def test_permanent_error_is_rejected(
    status: int, ambiguous_before: int, on_ambiguous: AmbiguityPolicy
) -> None:
    """A permanent refusal dies `rejected` at once, whatever came before and the policy."""
    decision = run(permanent(status), ambiguous_before=ambiguous_before, on_ambiguous=on_ambiguous)
    assert decision == Dead("rejected")


def test_unparseable_body_is_a_bad_response() -> None:
    """A 2xx whose body is not an order result dies `bad_response`."""
    assert run(permanent(200, "unparseable_body")) == Dead("bad_response")


@pytest.mark.parametrize(
    ("ambiguous_before", "expected"),
    [(0, Dead("rejected")), (1, Dead("conflict")), (3, Dead("conflict"))],
)
def test_409_is_a_conflict_only_after_an_ambiguous_attempt(
    ambiguous_before: int, expected: Dead
) -> None:
    """A 409 is a `conflict` only after an ambiguous attempt; otherwise `rejected`."""
    assert run(permanent(409), attempt=2, ambiguous_before=ambiguous_before) == expected


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_504", "read_timeout"])
def test_ambiguous_on_hold_is_dead_letter_for_a_person(kind: str) -> None:
    """With `hold`, an ambiguous failure dies `ambiguous`, counted, for a person to decide."""
    error = AmbiguousError(kind=kind)
    assert run(error, on_ambiguous="hold") == Dead("ambiguous", ambiguous=True)


@pytest.mark.parametrize("attempt", [1, 2, 10])
def test_ambiguous_with_retry_policy_is_retried_and_counted(attempt: int) -> None:
    """With `retry`, an ambiguous failure is retried within the backoff and counted ambiguous."""
    decision = run(AmbiguousError(kind="http_502", http_status=502), attempt=attempt)
    assert isinstance(decision, Retry)
    assert decision.ambiguous is True
    assert 0.0 <= decision.delay_s <= min(POLICY.cap_s, POLICY.base_s * 2**attempt)


@pytest.mark.parametrize("on_ambiguous", ["retry", "hold"])
def test_retryable_error_is_retried_whatever_the_ambiguity_policy(
    on_ambiguous: AmbiguityPolicy,
) -> None:
    """A retryable failure is retried, not counted ambiguous, under either policy."""
    decision = run(RetryableError(kind="http_503", http_status=503), on_ambiguous=on_ambiguous)
    assert isinstance(decision, Retry)
    assert decision.ambiguous is False
    assert 0.0 <= decision.delay_s <= 2.0


@pytest.mark.parametrize("retry_after", [7.0, 30.0, 1800.0])
@pytest.mark.parametrize("seed", range(5))
def test_retry_honours_retry_after(retry_after: float, seed: int) -> None:
    """A retry waits at least the API's Retry-After."""
    error = RetryableError(kind="http_429", http_status=429, retry_after_s=retry_after)
    decision = run(error, seed=seed)
    assert isinstance(decision, Retry)
    assert decision.delay_s >= retry_after
    assert decision.delay_s <= max(retry_after, 2.0)


@pytest.mark.parametrize(
    "error",
    [RetryableError(kind="connect_error"), AmbiguousError(kind="read_timeout")],
    ids=["retryable", "ambiguous"],
)
@pytest.mark.parametrize("attempt", [25, 26])
def test_exhausted_attempts(error: SubmitError, attempt: int) -> None:
    """With the attempts used up, a failure dies `exhausted` (counted ambiguous if it was)."""
    decision = run(error, attempt=attempt)
    assert decision == Dead("exhausted", ambiguous=isinstance(error, AmbiguousError))


@pytest.mark.parametrize(
    "error",
    [
        RetryableError(kind="http_429", http_status=429, retry_after_s=120.0),
        AmbiguousError(kind="http_500", http_status=500, retry_after_s=120.0),
    ],
    ids=["retryable", "ambiguous"],
)
def test_exhausted_deadline(error: SubmitError) -> None:
    """A retry that would pass the deadline dies `exhausted` instead."""
    decision = run(error, deadline_s=NOW_S + 60.0)
    assert decision == Dead("exhausted", ambiguous=isinstance(error, AmbiguousError))


@given(
    attempt=st.integers(min_value=1, max_value=40),
    retry_after=st.none() | st.floats(min_value=0, max_value=10_000),
    left_s=st.floats(min_value=0, max_value=86400),
    ambiguous=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_a_retry_is_never_scheduled_past_the_budget(
    attempt: int, retry_after: float | None, left_s: float, ambiguous: bool, seed: int
) -> None:
    """For any inputs, a retry is never scheduled past the attempts or the deadline."""
    cls = AmbiguousError if ambiguous else RetryableError
    decision = run(
        cls(kind="x", retry_after_s=retry_after),
        attempt=attempt,
        deadline_s=NOW_S + left_s,
        seed=seed,
    )
    if attempt >= POLICY.max_attempts:
        assert decision == Dead("exhausted", ambiguous=ambiguous)
    elif isinstance(decision, Retry):
        assert decision.ambiguous is ambiguous
        assert NOW_S + decision.delay_s <= NOW_S + left_s
        if retry_after is not None:
            assert decision.delay_s >= min(retry_after, POLICY.retry_after_cap_s)
    else:
        assert decision == Dead("exhausted", ambiguous=ambiguous)


@pytest.mark.parametrize(
    ("attempts_made", "now_s", "expected"),
    [
        (0, NOW_S, False),
        (24, NOW_S, False),
        (25, NOW_S, True),
        (30, NOW_S, True),
        (3, DEADLINE_S - 0.001, False),
        (3, DEADLINE_S, True),
        (3, DEADLINE_S + 1, True),
    ],
)
def test_out_of_budget(attempts_made: int, now_s: float, expected: bool) -> None:
    """No attempt is made once the attempts are used up or the deadline has passed."""
    assert (
        out_of_budget(
            attempts_made=attempts_made, now_s=now_s, deadline_s=DEADLINE_S, policy=POLICY
        )
        is expected
    )
