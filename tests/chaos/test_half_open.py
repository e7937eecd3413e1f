"""A half-open network to Redis (SPEC §10): bytes stop for 40 s without a FIN, then flow again.
The worker stays up and takes up its work again soon after the network heals."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producer.api import Dispatcher
from sandbox.campaign.proxy import FreezableProxy
from sandbox.processes import stop, wait_until
from tests.conftest import Sandbox, WorkerFactory, make_settings
from tests.factories import enqueue, wait_final

pytestmark = pytest.mark.chaos

FREEZE_S = 40.0
RESUME_WITHIN_S = 15.0


def test_a_worker_resumes_soon_after_a_half_open_network_heals(
    make_redis_server: Any, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """During a 40 s freeze nothing is lost; within 15 s of the heal the worker places orders
    again, and every order is placed once."""
    server = make_redis_server(appendonly=True, appendfsync="always")
    dispatcher = Dispatcher(make_settings(server.url))  # the producer's own path is healthy
    with FreezableProxy(server.port) as proxy:
        sandbox.control.faults(latency_ms=100)
        first = enqueue(dispatcher, 40, prefix="ho")
        worker = workers(concurrency=64, DISPATCH_REDIS_URL=proxy.url)
        assert {r.status for r in wait_final(dispatcher, first, timeout_s=60)} == {"completed"}
        proxy.freeze()
        time.sleep(2)
        later = enqueue(dispatcher, 40, prefix="hl")
        time.sleep(FREEZE_S - 2)
        proxy.thaw()
        healed = time.monotonic()
        wait_until(
            lambda: any(
                r is not None and r.status == "completed" for r in dispatcher.records(later)
            ),
            timeout_s=60,
            what="the first order after the heal",
        )
        resumed_s = time.monotonic() - healed
        print(f"resumed {resumed_s:.1f}s after the heal")
        records = wait_final(dispatcher, first + later, timeout_s=90)
        assert {r.status for r in records} == {"completed"}
        stats = sandbox.control.stats()
        assert stats["creates"] == {k.split(":", 1)[1]: 1 for k in first + later}
        assert worker.poll() is None
        stop(worker)  # while the proxy still stands: a warm shutdown needs its Redis
        assert resumed_s <= RESUME_WITHIN_S
