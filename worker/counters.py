"""Pure: what one outcome adds to the fleet-wide counters (the `od:counters` hash).

Workers add to the counters in the same script that records an outcome, so one exporter reading
the hash is right for any number of worker hosts. The API latency histogram is kept as
non-cumulative bucket counts (`api_latency_le_<ms>`, `api_latency_le_inf`) with a sum and a
count; the exporter makes them cumulative.
"""

from __future__ import annotations

LATENCY_BUCKETS_MS = (25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


def latency_bucket(latency_ms: float) -> str:
    for le in LATENCY_BUCKETS_MS:
        if latency_ms <= le:
            return f"api_latency_le_{le}"
    return "api_latency_le_inf"


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
        counters["api_latency_sum_ms"] = round(latency_ms)
        counters["api_latency_count"] = 1
    return counters
