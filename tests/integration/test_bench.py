"""`order-dispatch bench` runs end to end and reports every figure SPEC §8 asks for.

Speed itself is never asserted here (it is measured by the benchmark, as ratios within one run);
this only proves that the benchmark works on a fresh machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.timeout(300)
def test_bench_reports_every_figure(redis_server: object) -> None:  # needs redis-server
    """The bench runs end to end and reports every figure it promises (not their values)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer",
            "bench",
            "--orders",
            "60",
            "--concurrency",
            "8",
            "--high-concurrency",
            "16",
            "--processes",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        env={k: v for k, v in __import__("os").environ.items() if k != "DISPATCH_REDIS_URL"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["producer"]["orders_per_s"] > 0 and result["producer"]["ratio"] > 0
    for run in ("latency_0ms", "latency_100ms"):
        figures = result[run]
        for name in (
            "orders_per_s",
            "direct_limit_per_s",
            "ratio_to_direct",
            "plain_celery_per_s",
            "ratio_to_plain_celery",
            "redis_round_trips_per_order",
            "redis_commands_per_order",
            "worker_peak_rss_mb",
        ):
            assert figures[name] > 0, (run, name)
    assert result["latency_100ms_16_in_flight"]["ratio_to_direct"] > 0
    two = result["latency_100ms_16_in_flight_2_processes"]
    assert two["processes"] == 2 and two["ratio_to_direct"] > 0
