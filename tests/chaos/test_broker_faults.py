"""Workers outlive the broker's faults (SPEC §10): Redis killed and restarted, with late-acked
messages in every worker's prefetch window. The worker process stays up, resumes by itself, and
every order is placed once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producer.api import Dispatcher
from sandbox.processes import wait_until
from tests.conftest import Sandbox, WorkerFactory, make_settings
from tests.factories import make_order, placed_once

pytestmark = pytest.mark.chaos


def _enqueue(dispatcher: Dispatcher, n: int) -> list[str]:
    report = dispatcher.enqueue_many([make_order(i, prefix="bf") for i in range(n)])
    assert report.accepted == n
    return [r.key for r in report.results if r.key]


def test_a_worker_at_full_prefetch_survives_a_redis_restart(
    make_redis_server: Any, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """At the default concurrency (64) with its prefetch window full of late-acked messages,
    Redis SIGKILLed mid-run and restarted: the worker stays up and every order completes once."""
    server = make_redis_server(appendonly=True, appendfsync="always")
    dispatcher = Dispatcher(make_settings(server.url))
    sandbox.control.faults(latency_ms=200)
    keys = _enqueue(dispatcher, 60)
    worker = workers(concurrency=64, DISPATCH_REDIS_URL=server.url)
    wait_until(lambda: sum(sandbox.posts().values()) >= 5, timeout_s=30, what="the first POSTs")
    server.kill()
    time.sleep(2)
    server.start()
    placed_once(dispatcher, sandbox.control, keys)
    assert worker.poll() is None, "the worker died with the broker"


def test_two_workers_survive_three_redis_restarts(
    make_redis_server: Any, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """Three restarts 10 s apart under a 300-order run: both workers are alive at the end and
    every order is placed once."""
    server = make_redis_server(appendonly=True, appendfsync="always")
    dispatcher = Dispatcher(make_settings(server.url))
    sandbox.control.faults(latency_ms=200)
    keys = _enqueue(dispatcher, 300)
    procs = [workers(name=f"w{i}", concurrency=64, DISPATCH_REDIS_URL=server.url) for i in (1, 2)]
    wait_until(lambda: sum(sandbox.posts().values()) >= 5, timeout_s=30, what="the first POSTs")
    sandbox.control.faults(latency_ms=1000)  # keep work in flight across all three restarts
    for _ in range(3):
        server.kill()
        time.sleep(2)
        server.start()
        time.sleep(8)
    sandbox.control.faults(latency_ms=0)
    placed_once(dispatcher, sandbox.control, keys)
    assert [p.poll() for p in procs] == [None, None], "a worker died with the broker"
