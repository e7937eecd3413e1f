"""The results stream (SPEC §5) against a real redis-server: followed live by
`order-dispatch results --follow`, and shared by the consumers of a group without loss."""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import redis

from producer.api import Dispatcher
from sandbox.processes import wait_until
from tests.factories import make_order
from worker import outcomes


def complete(dispatcher: Dispatcher, n: int) -> list[str]:
    """Enqueue `n` orders and record each as completed (one `order.completed` event each)."""
    report = dispatcher.enqueue_many([make_order(i) for i in range(n)])
    keys = [r.key for r in report.results if r.key]
    assert len(keys) == n, report.results
    ledger = dispatcher.ledger
    for claim in ledger.claim(keys, "w"):
        ledger.finish(
            claim,
            outcomes.completed(claim, api_id="a", remote_id="r", test_url="https://t/x"),
        )
    return keys


def following(client: redis.Redis) -> bool:
    """Some client is reading the stream (the follower has chosen where it starts)."""
    return any(c.get("cmd") in ("xread", "xreadgroup") for c in client.client_list())


def test_results_follow_prints_an_event_that_happens_after_it_started(
    dispatcher: Dispatcher, worker_env: dict[str, str], redis_client: redis.Redis
) -> None:
    """An event recorded while `results --follow` waits is printed, as JSON, at once."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "results", "--follow", "--json"],
        env=worker_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: following(redis_client), timeout_s=30, what="the follower to read")
        (key,) = complete(dispatcher, 1)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        assert ready, "no event printed within 15 s"
        event = json.loads(proc.stdout.readline())
        assert (event["type"], event["data"]["key"]) == ("order.completed", key)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_consumers_in_a_group_share_the_stream_and_lose_nothing_when_one_dies(
    dispatcher: Dispatcher,
) -> None:
    """A consumer that dies before acknowledging loses nothing: the others take its events
    over, and every event is handled exactly once."""
    keys = complete(dispatcher, 30)
    doomed = dispatcher.group("billing", "doomed", claim_idle_ms=300)
    taken = doomed.read(count=7)  # ... and dies before acknowledging them
    assert len(taken) == 7
    survivor = dispatcher.group("billing", "survivor", claim_idle_ms=300)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 10
    while len(seen) < 30 and time.monotonic() < deadline:
        for event in survivor.read(count=10, block_ms=200):
            seen[event.data["key"]] += 1
            survivor.ack(event.id)
    assert sorted(seen) == sorted(keys)  # the dead consumer's 7 were taken over
    assert set(seen.values()) == {1}
    pending: Any = dispatcher.redis.xpending(dispatcher.keys.events, "billing")
    assert pending["pending"] == 0
