"""A worker that dies or is paused while it holds work (SPEC §4, §10), with real processes:
a killed worker's reserved messages are placed within a lease (not when the backlog drains),
and a worker paused past its lease corrupts nothing when it resumes."""

from __future__ import annotations

import os
import signal
import time

import pytest

from producer.api import Dispatcher
from sandbox.processes import kill, wait_until
from tests.conftest import Sandbox, WorkerFactory
from tests.factories import make_order, wait_final
from worker.ledger import Keys

pytestmark = pytest.mark.chaos
LEASE_S = 3.0
FAST_RATE = {"DISPATCH_RATE_LIMIT": "1000000/minute"}


def _enqueue(dispatcher: Dispatcher, n: int, prefix: str) -> list[str]:
    report = dispatcher.enqueue_many([make_order(i, prefix=prefix) for i in range(n)])
    assert report.accepted == n
    return [r.key for r in report.results if r.key]


def test_a_killed_workers_reserved_orders_are_placed_within_a_lease(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """SIGKILL one of two workers during a 20,000-order backlog: every order either held in a
    message (reserved) is placed within lease + 10 s, while the queue still holds work, and
    every order placed so far was created once."""
    sandbox.control.faults(latency_ms=100)
    keys = _enqueue(dispatcher, 20_000, "hm")
    doomed = workers(name="w1", concurrency=64, **FAST_RATE)
    workers(name="w2", concurrency=64, **FAST_RATE)
    wait_until(lambda: sum(sandbox.posts().values()) >= 300, timeout_s=60, what="POSTs")
    reserved = set(dispatcher.redis.zrange(Keys().reserved, 0, -1))
    kill(doomed)
    killed = time.monotonic()
    assert len(reserved) > 100  # the dead worker's messages among them
    pending = sorted(reserved)
    wait_final(dispatcher, pending, timeout_s=LEASE_S + 10, statuses={"completed"})
    placed_s = time.monotonic() - killed
    backlog = dispatcher.redis.llen(dispatcher.settings.queue)
    print(f"{len(pending)} reserved orders placed {placed_s:.1f}s after the kill; {backlog} left")
    assert backlog > 0, "the queue drained first: the bound was not tested"
    completed = [r for r in dispatcher.records(keys) if r is not None and r.status == "completed"]
    creates = sandbox.creates()  # read after the records: each completed order is counted here
    assert len(completed) >= len(pending)
    assert {r.order_id: creates.get(r.order_id) for r in completed} == {
        r.order_id: 1 for r in completed
    }
    assert set(creates.values()) == {1}


def test_a_worker_paused_past_its_lease_corrupts_nothing(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """SIGSTOP a worker with 64 POSTs in flight past its lease, let another take its orders,
    SIGCONT it: completed records stay completed, one order.completed event each, any second
    POST counted as ambiguous, and its late failures do not open the shared circuit."""
    slow = {"DISPATCH_CIRCUIT_COOLDOWN_S": "30", **FAST_RATE}
    sandbox.control.faults(latency_ms=1500)
    keys = _enqueue(dispatcher, 64, "zz")
    paused = workers(name="w1", concurrency=64, **slow)
    wait_until(lambda: sum(sandbox.posts().values()) >= 64, timeout_s=30, what="64 POSTs")
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        workers(name="w2", concurrency=64, **slow)
        wait_final(dispatcher, keys, timeout_s=60, statuses={"completed"})
        sandbox.control.faults(latency_ms=0)
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    time.sleep(5)  # the resumed worker's requests time out (3 s) and its outcomes arrive
    later = _enqueue(dispatcher, 20, "after")
    started = time.monotonic()
    wait_final(dispatcher, later, timeout_s=20, statuses={"completed"})
    after_s = time.monotonic() - started
    records = dispatcher.records(keys)
    assert all(r is not None and r.status == "completed" for r in records)
    events = [e for e in dispatcher.events() if e.type == "order.completed"]
    assert sorted(e.data["key"] for e in events) == sorted(keys + later)
    posts = sandbox.posts()
    for r in records:
        assert r is not None
        assert posts[r.order_id] <= 1 + r.ambiguous_attempts
    counters = dispatcher.redis.hgetall(Keys().counters)
    assert int(counters.get("retries_ambiguous", 0)) == sum(
        r.ambiguous_attempts for r in records if r is not None
    )
    print(f"orders after the resume placed in {after_s:.1f}s")
    assert after_s < 10, "the circuit opened on a paused worker's late failures"
    assert paused.poll() is None
