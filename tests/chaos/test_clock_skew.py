"""One clock for the whole fleet: leases, renewals and the pump's decisions are Redis's time, so
a worker on a host whose clock runs ahead takes nobody's orders (issue 13, "One clock")."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from producer.api import Dispatcher
from sandbox.processes import start_worker, stop
from tests.conftest import Sandbox
from tests.factories import make_order, wait_final

pytestmark = pytest.mark.chaos

SKEW = ("faketime", "-f", "+120s")


@pytest.mark.skipif(shutil.which("faketime") is None, reason="needs faketime (Debian's package)")
def test_a_worker_whose_clock_runs_ahead_takes_no_other_workers_orders(
    dispatcher: Dispatcher, sandbox: Sandbox, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """A worker 120 s ahead beside a normal one: every order POSTed exactly once."""
    sandbox.control.faults(latency_ms=2000)
    report = dispatcher.enqueue_many([make_order(i, prefix="skew") for i in range(40)])
    keys = [r.key for r in report.results if r.key]
    assert report.accepted == 40
    env = {**worker_env, "DISPATCH_LEASE_S": "5"}
    procs = [
        start_worker(env, name="plain", concurrency=16, log=tmp_path / "plain.log"),
        start_worker(env, name="ahead", concurrency=16, log=tmp_path / "ahead.log", prefix=SKEW),
    ]
    try:
        records = wait_final(dispatcher, keys, timeout_s=90)
    finally:
        for proc in procs:
            stop(proc, timeout_s=15)
    posts = sandbox.control.stats()["posts"]
    twice = {oid: n for oid, n in posts.items() if n != 1}
    assert twice == {}, f"{len(twice)} orders POSTed more than once: {twice}"
    assert sorted(posts) == sorted(k.split(":", 1)[1] for k in keys)
    assert {(r.status, r.ambiguous_attempts) for r in records} == {("completed", 0)}
