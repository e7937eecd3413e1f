"""Flow control shared by every worker on every host, per API key (SPEC §4).

- **Rate limit**: `DISPATCH_RATE_LIMIT` (e.g. `900/minute`), paced on Redis's clock, so N
  workers on any number of hosts together start no more than the limit in any window.
- **429 pause**: after a 429, no worker sends for that key until `Retry-After` has passed.
- **Circuit breaker**: after `DISPATCH_CIRCUIT_THRESHOLD` consecutive failures that say the API is
  in trouble (5xx, timeouts, connections refused), the circuit opens for
  `DISPATCH_CIRCUIT_COOLDOWN_S`; then one probe at a time goes through, and its success closes it.

All three are checked inside the ledger's `begin` script, the last step before the POST, and
updated by its `finish` script: no extra round trip. The rate limit paces starts (GCRA): each
worker reserves its own start time, sleeps until it, and looks once more at the pause and the
circuit before sending. (Measured with three workers at 20/second, the `limits` library's
moving window, one round trip before `begin`, let 26 POSTs land within one second: a burst at
each window's edge plus every waiting attempt polling for the freed slot; a moving window
inside `begin` still let 24 through. Paced reservations keep the API's view near the limit.)

This module parses the limit and says which outcomes count as what; the keys of the flow state
are named in `worker.ledger.keys`. Orders that meet a shut gate wait in the ledger without
using an attempt.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from worker.errors import AmbiguousError, PermanentError, SubmitError


def _setting(name: str) -> Any:
    """The default of a `Settings` field. The policies below state no numbers of their own:
    built without arguments (as `LedgerConfig`'s defaults build them), they take Settings'."""
    from worker.settings import Settings

    return Settings.model_fields[name].default


def _default_rate() -> RateLimit:
    return RateLimit.parse(_setting("rate_limit"), max_wait_s=_setting("rate_wait_max_s"))


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    threshold: int = field(default_factory=lambda: _setting("circuit_threshold"))
    cooldown_s: float = field(default_factory=lambda: _setting("circuit_cooldown_s"))


def flow_outcome(error: SubmitError | None) -> str:
    """What an attempt tells the shared flow state: '' (nothing), 'ok', 'fail', '429:<ms>'."""
    if error is None or isinstance(error, PermanentError):
        return "ok"  # the API answered sensibly
    if error.http_status == 429:
        return f"429:{int((error.retry_after_s or 1.0) * 1000)}"
    if isinstance(error, AmbiguousError) or error.http_status in (408, 503, None):
        return "fail"
    return ""


def wait_with_jitter(wait_s: float, rng: random.Random | None = None) -> float:
    """Spread the orders that waited at a gate over the next second, so they do not all
    arrive together when it opens."""
    return wait_s + (rng or random).uniform(0.0, 1.0)


# Starts are paced at 90 % of the limit: an attempt sleeping until its reserved start wakes some
# milliseconds late now and then (two shared cores, busy event loops), which bunches arrivals
# at the API. Measured with three workers at 20/second: without headroom up to 23 POSTs
# reached the API within one second; at 95 %, 21-22; at 90 %, 20 (three runs each).
PACING_HEADROOM = 0.90


@dataclass(frozen=True, slots=True)
class RateLimit:
    """`limit` POSTs per `window_ms`, paced: one start every `interval_ms` (`900/minute`,
    `20/second`, `100 per 10 seconds`...)."""

    limit: int = field(default_factory=lambda: _default_rate().limit)
    window_ms: int = field(default_factory=lambda: _default_rate().window_ms)
    # A reserved start this close is slept for by the attempt (on the event loop, the order
    # still leased); a later one sends the order back to wait in the ledger.
    max_wait_s: float = field(default_factory=lambda: _setting("rate_wait_max_s"))

    @property
    def interval_ms(self) -> float:
        return self.window_ms / self.limit / PACING_HEADROOM

    @classmethod
    def parse(cls, text: str, *, max_wait_s: float) -> RateLimit:
        """Read `N/unit` or `N per [M] unit(s)`; raise ValueError for anything else."""
        match = _RATE.fullmatch(text.strip().lower())
        if match is None or int(match["amount"]) < 1:
            raise ValueError(f"not a rate limit like 900/minute or 20/second: {text!r}")
        window_ms = int(match["multiple"] or 1) * _UNIT_MS[match["unit"]]
        return cls(int(match["amount"]), window_ms, max_wait_s)


_UNIT_MS = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
_RATE = re.compile(
    r"(?P<amount>\d+)\s*(?:/|per)\s*(?P<multiple>\d+)?\s*(?P<unit>second|minute|hour|day)s?"
)
