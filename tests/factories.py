"""Orders for tests: the StackOne example with its identities made unique."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from producer.api import Dispatcher
from producer.samples import example_order
from sandbox.control import SandboxControl
from sandbox.processes import wait_until
from worker.ledger.keys import FINAL_STATUSES
from worker.ledger.records import Record

FINAL = set(FINAL_STATUSES)


def make_order(i: int, *, prefix: str = "ord", **top: Any) -> dict[str, Any]:
    order = example_order()
    order["id"] = f"{prefix}-{i:05d}"
    order["candidate"]["id"] = f"cand-{i:05d}"
    order["candidate"]["emails"] = [{"type": "personal", "value": f"candidate{i}@example.org"}]
    order["application"]["id"] = f"app-{i:05d}"
    order.update(top)
    return order


def enqueue(dispatcher: Dispatcher, n: int, *, prefix: str = "ord", **kwargs: Any) -> list[str]:
    """Enqueue `n` fresh orders (`make_order`), every one accepted; their keys in order."""
    report = dispatcher.enqueue_many([make_order(i, prefix=prefix) for i in range(n)], **kwargs)
    assert report.accepted == n, report.results
    return [r.key for r in report.results if r.key]


def wait_final(
    dispatcher: Dispatcher, keys: list[str], *, timeout_s: float = 60.0, statuses: set[str] = FINAL
) -> list[Record]:
    """Poll until every order is in one of `statuses`; fail with what is still open."""
    records: list[Record | None] = []

    def final() -> bool:
        nonlocal records
        records = dispatcher.records(keys)
        return all(r is not None and r.status in statuses for r in records)

    try:
        wait_until(final, timeout_s=timeout_s, interval_s=0.1, what="final orders")
    except TimeoutError:
        open_ = [
            (k, r.status if r else None)
            for k, r in zip(keys, records, strict=True)
            if r is None or r.status not in statuses
        ]
        raise AssertionError(
            f"{len(open_)} orders not final after {timeout_s}s: {open_[:10]}"
        ) from None
    return [r for r in records if r is not None]


def placed_once(
    dispatcher: Dispatcher, api: SandboxControl, keys: list[str], *, timeout_s: float = 120.0
) -> list[Record]:
    """Wait until every order completed, then hold SPEC §10's count: one create each at the
    API, and no POST beyond the first that the order does not count as ambiguous."""
    records = wait_final(dispatcher, keys, timeout_s=timeout_s)
    assert {r.status for r in records} == {"completed"}
    stats = api.stats()
    assert stats["creates"] == {r.order_id: 1 for r in records}
    for r in records:
        assert stats["posts"][r.order_id] <= 1 + r.ambiguous_attempts
    return records


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`order-dispatch ARGS` in a subprocess with `env`, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
