"""A worker whose event loop is wedged gives up its leases (issue 13, liveness by progress).

In-process, against a real redis-server and the sandbox: a `Runtime` holds orders with their
POSTs in flight, then the test blocks its event loop with a `time.sleep` scheduled onto it. The
keeper thread goes on, sees that the loop no longer runs its no-op, stops renewing the order
leases, and says so in the worker's progress report; the leases lapse and another worker takes
the orders."""

from __future__ import annotations

import threading
import time

import redis

from producer.api import Dispatcher
from sandbox.processes import wait_until
from tests.conftest import Sandbox, make_settings
from tests.factories import make_order
from worker.ledger.keys import Keys
from worker.ledger.steps import Ledger, LedgerConfig
from worker.obs.liveness import Progress
from worker.obs.snapshot import read_health
from worker.process.runtime import Runtime

KEYS = Keys()
NODE = "wedged@test"
STALL_S = 1.5


def _leases(client: redis.Redis, keys: list[str]) -> dict[str, float]:
    return {k: float(client.zscore(KEYS.leases, k) or 0) for k in keys}  # type: ignore[arg-type]


def _progress(client: redis.Redis) -> Progress | None:
    return Progress.from_json(client.get(KEYS.progress(NODE)))  # type: ignore[arg-type]


def test_a_wedged_event_loop_gives_up_its_leases(
    redis_url: str, redis_client: redis.Redis, sandbox: Sandbox, dispatcher: Dispatcher
) -> None:
    """A runtime whose event loop is blocked stops renewing its leases: others take its orders."""
    sandbox.control.faults(latency_ms=30_000)  # every POST stays on the wire
    report = dispatcher.enqueue_many([make_order(i, prefix="wedge") for i in range(4)])
    keys = [r.key for r in report.results if r.key]
    settings = make_settings(
        redis_url,
        api_url=sandbox.url,
        lease_s=2,
        health_stall_s=STALL_S,
        http_timeout_s=60,
        worker_concurrency=4,
    )
    runtime = Runtime(settings, node=NODE)
    runtime.start()
    try:
        threading.Thread(target=runtime.dispatch, args=(keys,), daemon=True).start()
        wait_until(
            lambda: all(r and r.attempts == 1 for r in dispatcher.records(keys)),
            timeout_s=20,
            what="the 4 attempts begun (their POSTs on the wire)",
        )

        # While the loop answers, the keeper renews the leases and the report says it answers.
        before = _leases(redis_client, keys)
        wait_until(
            lambda: all(_leases(redis_client, keys)[k] > before[k] for k in keys),
            timeout_s=5,
            what="the leases renewed",
        )
        progress = _progress(redis_client)
        assert progress is not None
        assert (progress.loop_answers, progress.orders, progress.renewing) == (True, 4, True)

        runtime.event_loop().loop.call_soon_threadsafe(time.sleep, 8)
        blocked_at = time.monotonic()
        wait_until(
            lambda: (p := _progress(redis_client)) is not None and p.loop_answers is False,
            timeout_s=STALL_S + 5,
            what="the report to say the loop does not answer",
        )
        assert time.monotonic() - blocked_at >= STALL_S
        progress = _progress(redis_client)
        assert progress is not None and not progress.renewing and progress.orders == 4

        # No renewal from here on: the leases lapse, a pump puts the orders back on the queue
        # (the POSTs on the wire are counted as ambiguous) and another worker claims them.
        last = _leases(redis_client, keys)
        time.sleep(1.2)
        assert _leases(redis_client, keys) == last
        wait_until(
            lambda: all(redis_client.zscore(KEYS.queued, k) is not None for k in keys),
            timeout_s=10,
            what="the lapsed orders back on the queue",
        )
        other = Ledger(dispatcher.redis, LedgerConfig.from_settings(settings))
        assert sorted(c.key for c in other.claim(keys, "other@test")) == sorted(keys)
        assert {r.ambiguous_attempts for r in dispatcher.records(keys) if r} == {1}

        health = read_health(
            redis_client, KEYS, settings.queue, now_s=time.time(), max_age_s=30, stall_s=STALL_S
        )
        assert health.alive == [NODE] and not health.healthy
        assert "event loop has not answered" in health.stalled[NODE]
        assert time.monotonic() - blocked_at < 8, "the loop unblocked before the checks ended"
    finally:
        runtime.stop()
