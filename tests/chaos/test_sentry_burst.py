"""Sentry keeps its promise under a burst (SPEC §7): one event per dead order, none dropped,
when 500 orders die together and the ingest is slower than the burst."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producer.api import Dispatcher
from sandbox.processes import wait_until
from tests.conftest import Sandbox, WorkerFactory
from tests.factories import make_order, wait_final
from tests.fakes import Ingest

pytestmark = pytest.mark.chaos


class SlowIngest(Ingest):
    """An ingest that takes 10 ms an envelope, as a remote one does: a burst queues up."""

    def __init__(self) -> None:
        super().__init__()
        handler = self.server.RequestHandlerClass
        original: Any = handler.do_POST  # type: ignore[attr-defined]

        def slow(request: Any) -> None:
            time.sleep(0.01)
            original(request)

        handler.do_POST = slow  # type: ignore[attr-defined]


def test_500_orders_dying_together_give_500_events(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """Every one of 500 orders rejected at once reaches the ingest as its own event."""
    ingest = SlowIngest()
    try:
        sandbox.control.faults(reject_status=422)
        report = dispatcher.enqueue_many([make_order(i, prefix="burst") for i in range(500)])
        keys = [r.key for r in report.results if r.key]
        workers(concurrency=64, SENTRY_DSN=ingest.dsn, DISPATCH_RATE_LIMIT="100000/minute")
        assert {r.status for r in wait_final(dispatcher, keys, timeout_s=90)} == {"dead"}
        wait_until(lambda: len(ingest.events()) >= 500, timeout_s=60, what="500 events")
        time.sleep(1.0)  # nothing more arrives: one event per order, not more
        events = ingest.events()
        assert len(events) == 500
        assert len({e["contexts"]["order"]["key"] for e in events}) == 500
    finally:
        ingest.close()
