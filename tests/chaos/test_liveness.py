"""`order-dispatch health` judges progress, not only a heartbeat (issue 13, liveness by
progress), with real worker subprocesses against the sandbox: a worker whose attempts never
finish while orders wait fails once DISPATCH_HEALTH_STALL_S has passed; a busy worker that keeps
finishing attempts passes, and so does an idle one with no work waiting."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from producer.api import Dispatcher
from producer.cli import main
from sandbox.processes import kill, wait_until
from tests.conftest import Sandbox, WorkerFactory
from tests.factories import make_order, wait_final

pytestmark = pytest.mark.chaos


def _health(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["health", "--worker", "w1", "--json"], env=env)
    return result.exit_code, json.loads(result.output)


def test_a_worker_whose_attempts_never_finish_fails_health_after_the_stall_time(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory, worker_env: dict[str, str]
) -> None:
    """Work waits and nothing finishes: health fails once the stall time has passed."""
    stall_s = 4.0
    env = {**worker_env, "DISPATCH_HEALTH_STALL_S": str(stall_s), "DISPATCH_HTTP_TIMEOUT_S": "60"}
    sandbox.control.faults(latency_ms=40_000)  # far above the stall time, below the timeout
    report = dispatcher.enqueue_many([make_order(i, prefix="stall") for i in range(40)])
    keys = [r.key for r in report.results if r.key]
    worker = workers(name="w1", concurrency=4, **env)
    try:
        wait_until(
            lambda: sum(1 for r in dispatcher.records(keys) if r and r.attempts) == 4,
            timeout_s=30,
            what="four attempts on the wire",
        )
        began = time.monotonic()
        wait_until(lambda: bool(_health(env)[1]["alive"]), timeout_s=5, what="a heartbeat")
        code, report_ = _health(env)
        assert code == 0, report_  # it has only just taken its messages
        wait_until(lambda: _health(env)[0] == 1, timeout_s=stall_s + 10, what="health to fail")
        assert time.monotonic() - began >= stall_s - 1.5  # not before the stall time
        code, found = _health(env)
        assert code == 1
        (node,) = found["stalled"]
        assert node.startswith("w1@") and "no message taken" in found["stalled"][node]
        progress = found["progress"][node]
        assert progress["orders"] == 4 and progress["loop_answers"] is True
        assert found["queue_depth"] > 0
    finally:
        kill(worker)  # its POSTs would hold a warm shutdown for the sandbox's 40 s


def test_a_busy_worker_and_an_idle_one_pass_health(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory, worker_env: dict[str, str]
) -> None:
    """A worker making progress, and one with nothing to do, both pass health."""
    stall_s = 2.0
    env = {**worker_env, "DISPATCH_HEALTH_STALL_S": str(stall_s)}
    workers(name="w1", concurrency=4, **env)
    wait_until(lambda: _health(env)[0] == 0, timeout_s=30, what="the worker's first heartbeat")

    # Idle, nothing waiting: no progress for longer than the stall time is no stall.
    time.sleep(stall_s + 1.5)
    code, found = _health(env)
    assert code == 0, found
    (progress,) = found["progress"].values()
    assert progress["taken_ms"] is None and found["queue_depth"] == 0

    # Busy: 200 orders at 200 ms with 4 in flight keep it going for about 10 s, more than the
    # stall time; it finishes attempts all along, so it passes every time it is asked.
    sandbox.control.faults(latency_ms=200)
    report = dispatcher.enqueue_many([make_order(i, prefix="busy") for i in range(200)])
    keys = [r.key for r in report.results if r.key]
    time.sleep(stall_s + 0.5)
    codes = []
    while sum(1 for r in dispatcher.records(keys) if r and r.status == "completed") < 180:
        code, found = _health(env)
        codes.append(code)
        assert code == 0, found
        time.sleep(0.5)
    assert len(codes) >= 5, "the run ended before health was asked during it"
    wait_final(dispatcher, keys)
