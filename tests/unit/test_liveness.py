"""Liveness by progress: the stall judgment, the event-loop probe, and the keeper's report."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest
import redis

from tests.unit.conftest import MakeRuntime, new_orders
from worker.ledger.keys import Keys
from worker.obs.liveness import Progress, stall_reason
from worker.process.progress import LoopProbe, Marks

NOW_MS = 1_000_000_000
BASE = Progress(
    at_ms=NOW_MS,
    started_ms=NOW_MS - 600_000,
    taken_ms=NOW_MS - 200_000,
    finished_ms=NOW_MS - 150_000,
    messages=0,
    orders=0,
    callbacks=0,
    loop_answers=True,
    loop_late_s=0.0,
    renewing=True,
)


@pytest.mark.parametrize(
    ("changes", "queue_depth", "beat_age_s", "stalled"),
    [
        ({}, 0, 0, False),  # idle with nothing to do
        ({}, 5, 0, True),  # messages wait in the queue, and it takes none
        ({"orders": 3}, 0, 0, True),  # it holds orders and finishes no attempt
        ({"messages": 1}, 0, 0, True),  # a message waits inside it for room
        ({"callbacks": 1}, 0, 0, True),
        ({"finished_ms": NOW_MS - 1_000}, 5, 0, False),  # it finished one a second ago
        ({"taken_ms": NOW_MS - 1_000, "orders": 3}, 5, 0, False),
        ({"started_ms": NOW_MS - 60_000, "taken_ms": None, "finished_ms": None}, 5, 0, False),
        ({"finished_ms": NOW_MS - 100_000}, 5, 25, True),  # the heartbeat's age adds up
        ({"loop_answers": False, "loop_late_s": 130.0}, 0, 0, True),  # a wedged loop, idle
        ({"loop_answers": None}, 0, 0, False),  # no loop yet
    ],
)
def test_stall_reason(
    changes: dict[str, object], queue_depth: int, beat_age_s: float, stalled: bool
) -> None:
    """A worker is stalled only when work waits and it made no progress for the stall time."""
    progress = replace(BASE, **changes)  # type: ignore[arg-type]
    reason = stall_reason(progress, beat_age_s=beat_age_s, queue_depth=queue_depth, stall_s=120)
    assert (reason is not None) == stalled, reason


def test_progress_round_trips_and_unreadable_reports_are_none() -> None:
    """A progress report reads back as written; an unreadable one is ignored."""
    assert Progress.from_json(BASE.to_json()) == BASE
    for raw in (None, "", "{", '{"at_ms": 1}', "[]"):
        assert Progress.from_json(raw) is None


def test_the_probe_waits_until_the_loop_runs_its_no_op() -> None:
    """The loop probe answers only once the loop has run its no-op."""
    now = [100.0]
    probe = LoopProbe(clock=lambda: now[0])
    loop = asyncio.new_event_loop()
    try:
        probe.ask(loop)
        now[0] = 103.0
        probe.ask(loop)  # the first still waits: not posted again, not reset
        assert probe.late_s() == 3.0
        loop.run_until_complete(asyncio.sleep(0))  # the loop turns: the no-op runs
        assert probe.late_s() == 0.0
    finally:
        loop.close()
    probe.ask(loop)  # a closed loop: nothing waits
    assert probe.late_s() == 0.0


def test_marks_count_the_messages_held() -> None:
    """Progress marks count the messages a worker holds."""
    marks = Marks(clock=lambda: 5.0)
    with marks.holding_message():
        assert (marks.messages, marks.taken) == (1, 5.0)
    assert marks.messages == 0


def test_the_keeper_reports_the_progress_of_a_dispatch(
    make_runtime: MakeRuntime, redis_client: redis.Redis
) -> None:
    """After a message's orders are placed, the keeper's report says when the worker took it
    and finished its attempts, that it holds nothing, and that its loop answers."""
    rt = make_runtime(lease_s=0.6)
    keys = new_orders(rt, 2)
    before_ms = time.time() * 1000 - 1000
    assert rt.dispatch(keys) == ["completed"] * 2
    rt.start()

    def report() -> Progress | None:
        return Progress.from_json(redis_client.get(Keys().progress(rt.node)))  # type: ignore[arg-type]

    deadline = time.monotonic() + 10
    while (found := report()) is None or found.loop_answers is None:
        assert time.monotonic() < deadline, "no report with the loop's answer"
        time.sleep(0.05)
    assert found.taken_ms is not None and found.taken_ms >= before_ms
    assert found.finished_ms is not None and found.finished_ms >= found.taken_ms
    assert (found.messages, found.orders, found.callbacks) == (0, 0, 0)
    assert found.loop_answers and found.renewing
