"""Orders for tests: the StackOne example with its identities made unique."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from importlib import resources
from typing import Any

from producer.api import Dispatcher
from worker.ledger.records import Record

FINAL = {"completed", "delivered", "dead"}


def example_order() -> dict[str, Any]:
    text = (resources.files("producer") / "samples" / "orders.jsonl").read_text()
    result: dict[str, Any] = json.loads(text.splitlines()[0])
    return result


def make_order(i: int, *, prefix: str = "ord", **top: Any) -> dict[str, Any]:
    order = copy.deepcopy(example_order())
    order["id"] = f"{prefix}-{i:05d}"
    order["candidate"]["id"] = f"cand-{i:05d}"
    order["candidate"]["emails"] = [{"type": "personal", "value": f"candidate{i}@example.org"}]
    order["application"]["id"] = f"app-{i:05d}"
    order.update(top)
    return order


def wait_final(
    dispatcher: Dispatcher, keys: list[str], *, timeout_s: float = 60.0, statuses: set[str] = FINAL
) -> list[Record]:
    """Poll until every order is in one of `statuses`; fail with what is still open."""
    deadline = time.monotonic() + timeout_s
    while True:
        records = dispatcher.records(keys)
        if all(r is not None and r.status in statuses for r in records):
            return [r for r in records if r is not None]
        if time.monotonic() > deadline:
            open_ = [
                (k, r.status if r else None)
                for k, r in zip(keys, records, strict=True)
                if r is None or r.status not in statuses
            ]
            raise AssertionError(f"{len(open_)} orders not final after {timeout_s}s: {open_[:10]}")
        time.sleep(0.1)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`order-dispatch ARGS` in a subprocess with `env`, as an operator would run it."""
    return subprocess.run(
        [sys.executable, "-m", "producer", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
