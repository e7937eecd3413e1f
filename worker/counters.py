"""Pure: what one outcome adds to the fleet-wide counters (the `od:counters` hash).

Workers add to the counters in the same script that records an outcome, so one exporter reading
the hash is right for any number of worker hosts. The API latency histogram is kept as
non-cumulative bucket counts (`api_latency_le_<ms>`, `api_latency_le_inf`) with a sum and a
count; the exporter makes them cumulative.
"""

from __future__ import annotations

# Upper bounds (ms) of the API latency histogram's buckets.
LATENCY_BUCKETS_MS: tuple[int, ...] = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
LATENCY_PREFIX = "api_latency_"
LATENCY_SUM_FIELD = "api_latency_sum_ms"
LATENCY_COUNT_FIELD = "api_latency_count"

# The integer fields of `Keys.counters` besides the histogram (a missing field is 0).
COUNTER_FIELDS: tuple[str, ...] = (
    "orders_accepted",
    "orders_duplicate",
    "orders_completed",
    "orders_dead",
    "retries_retry",
    "retries_ambiguous",
    "callbacks_delivered",
    "callbacks_failed",
    "callbacks_dead",
    "poison_messages",
)


def latency_field(le_ms: int | None) -> str:
    """The counters field of the bucket with upper bound `le_ms` (None: the +Inf bucket)."""
    return f"{LATENCY_PREFIX}le_{'inf' if le_ms is None else le_ms}"


def latency_bucket(latency_ms: float) -> str:
    """The counters field an API call that took `latency_ms` is counted in."""
    for le_ms in LATENCY_BUCKETS_MS:
        if latency_ms <= le_ms:
            return latency_field(le_ms)
    return latency_field(None)


def attempt_counters(outcome: str, latency_ms: float | None) -> dict[str, int]:
    """Counters for an attempt that ended as `outcome` (completed, dead, retry, ambiguous)."""
    counters: dict[str, int] = {}
    if outcome == "completed":
        counters["orders_completed"] = 1
    elif outcome == "dead":
        counters["orders_dead"] = 1
    elif outcome in ("retry", "ambiguous"):
        counters[f"retries_{outcome}"] = 1
    if latency_ms is not None:
        counters[latency_bucket(latency_ms)] = 1
        counters[LATENCY_SUM_FIELD] = round(latency_ms)
        counters[LATENCY_COUNT_FIELD] = 1
    return counters
