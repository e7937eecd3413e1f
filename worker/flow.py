"""Flow control shared by every worker on every host, per API key (SPEC §4).

- **Rate limit**: `DISPATCH_RATE_LIMIT` (e.g. `900/minute`) as a moving window in Redis, through
  the `limits` library, so N workers together send no more than the limit.
- **429 pause**: after a 429, no worker sends for that key until `Retry-After` has passed.
- **Circuit breaker**: after `DISPATCH_CIRCUIT_THRESHOLD` consecutive failures that say the API is
  in trouble (5xx, timeouts, connections refused), the circuit opens for
  `DISPATCH_CIRCUIT_COOLDOWN_S`; then one probe at a time goes through, and its success closes it.

The pause and the circuit are checked and updated inside the ledger's `begin` and `finish`
scripts (no extra round trip); this module names their keys, owns the rate limiter and says
which outcomes count as what. Orders that meet a gate wait in the ledger without using an
attempt.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from worker.errors import AmbiguousError, PermanentError, SubmitError


@dataclass(frozen=True, slots=True)
class FlowKeys:
    """Redis keys of one API key's flow state (the API key itself is never stored)."""

    key_id: str
    prefix: str = "od"

    @classmethod
    def for_api_key(cls, api_key: str, prefix: str = "od") -> FlowKeys:
        return cls(hashlib.sha256(api_key.encode()).hexdigest()[:16], prefix)

    @property
    def pause(self) -> str:
        """String with a TTL: present while a 429 asks every worker to wait."""
        return f"{self.prefix}:flow:{self.key_id}:pause"

    @property
    def circuit(self) -> str:
        """Hash: `failures` (consecutive), `open_until_ms`. Deleted when the circuit closes."""
        return f"{self.prefix}:flow:{self.key_id}:circuit"

    @property
    def probe(self) -> str:
        """String with a TTL: the token of the one worker probing a half-open circuit."""
        return f"{self.prefix}:flow:{self.key_id}:probe"


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    threshold: int = 10
    cooldown_s: float = 30.0


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


class RateLimiter:
    """One moving-window limit per API key, shared through Redis by every worker."""

    def __init__(
        self,
        client: redis.Redis,
        limit: str,
        key_id: str,
        *,
        max_wait_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix="od:rate"
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self.item: RateLimitItem = parse(limit)
        self.key_id = key_id
        self.max_wait_s = max_wait_s
        self._sleep = sleep

    def acquire(self) -> float:
        """Take one request's worth of capacity: 0 when taken, else how long until there is some
        (after waiting up to `max_wait_s` here, so a short wait does not cost a reschedule)."""
        waited = 0.0
        while True:
            if self._limiter.hit(self.item, self.key_id):
                return 0.0
            reset_at = self._limiter.get_window_stats(self.item, self.key_id).reset_time
            wait = max(0.01, reset_at - time.time())
            if waited + wait > self.max_wait_s:
                return wait
            self._sleep(wait)
            waited += wait
