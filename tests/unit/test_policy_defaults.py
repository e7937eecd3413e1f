"""Every default is stated once, in `Settings`; the policies built from it state none."""

from __future__ import annotations

import dataclasses

import pytest

from worker.flow import CircuitPolicy, RateLimit
from worker.settings import HttpPolicy, RetryPolicy, Settings

# Constants of the code, not settings: no environment variable sets them.
NOT_SETTINGS = {("RetryPolicy", "retry_after_cap_s")}


@pytest.mark.parametrize("policy", [RetryPolicy, HttpPolicy, CircuitPolicy, RateLimit])
def test_no_policy_states_a_default_value(policy: type) -> None:
    """A literal default in a policy would be a second source beside `Settings`."""
    literal = [
        f.name
        for f in dataclasses.fields(policy)
        if f.default is not dataclasses.MISSING and (policy.__name__, f.name) not in NOT_SETTINGS
    ]
    assert not literal


def test_policies_built_without_arguments_take_the_settings_defaults() -> None:
    """`CircuitPolicy()` and `RateLimit()` (the ledger's defaults) agree with `Settings()`."""
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert CircuitPolicy() == CircuitPolicy(s.circuit_threshold, s.circuit_cooldown_s)
    assert RateLimit() == RateLimit.parse(s.rate_limit, max_wait_s=s.rate_wait_max_s)
    assert RateLimit(limit=10, window_ms=1000).max_wait_s == s.rate_wait_max_s
