"""An enqueue that Redis stops part-way reports what went through (`EnqueueStopped`), through
the Python API: out of memory (nothing of the refused chunk written), and a lost connection
(the chunk in flight unknown)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from producer.api import CHUNK, Dispatcher, EnqueueStopped
from tests.conftest import make_settings
from tests.factories import make_order
from worker.ledger.keys import Keys


def test_out_of_memory_reports_the_chunks_before_the_refused_one(make_redis_server: Any) -> None:
    """Out of memory: the report holds the chunks accepted before the refused one, no more."""
    server = make_redis_server(maxmemory="3mb")
    dispatcher = Dispatcher(make_settings(server.url))
    orders = [make_order(i, prefix="oom") for i in range(5000)]
    orders[3] = {"id": ""}  # an invalid line before the failure is reported too
    with pytest.raises(EnqueueStopped) as caught:
        dispatcher.enqueue_many(orders)
    stopped = caught.value
    report = stopped.report
    assert not stopped.written_unknown and "out of memory" in str(stopped)
    assert [r.line for r in report.results] == list(range(1, stopped.next_line))
    assert report.invalid == 1 and report.accepted == stopped.next_line - 2
    assert (stopped.next_line - 2) % CHUNK == 0  # whole chunks went through
    records = set(dispatcher.redis.zrange(Keys().queued, 0, -1))  # type: ignore[arg-type]
    assert records == {r.key for r in report.results if r.outcome == "accepted"}
    dispatcher.redis.close()


def test_a_lost_connection_says_the_chunk_in_flight_is_unknown(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost connection: the chunk in flight is reported unknown, the ones before accepted."""
    dispatcher = Dispatcher(make_settings(redis_url))
    enqueue = dispatcher.ledger.enqueue
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(1)
        if len(calls) == 2:
            raise redis.ConnectionError("Connection closed by server.")
        return enqueue(*args, **kwargs)

    monkeypatch.setattr(dispatcher.ledger, "enqueue", flaky)
    with pytest.raises(EnqueueStopped) as caught:
        dispatcher.enqueue_many([make_order(i, prefix="lost") for i in range(3 * CHUNK)])
    stopped = caught.value
    assert stopped.written_unknown and stopped.next_line == CHUNK + 1
    assert stopped.report.accepted == CHUNK
    assert f"lines {CHUNK + 1} to {2 * CHUNK} may or may not be enqueued" in str(stopped)
    dispatcher.redis.close()
