"""A full Redis (issue 13): `maxmemory` reached with `noeviction`.

`enqueue` of more orders than fit exits 69, says that Redis refused writes (out of memory), and
prints a line for every order it did accept, and for no other: each chunk is one script, written
whole or not at all. The exporter shows memory against maxmemory. A worker, started over the
limit or caught by it, sends nothing it could not record, stays up, and places every accepted
order once when memory frees."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from producer.api import Dispatcher
from sandbox.processes import free_port, wait_until
from tests.conftest import ACCOUNT, API_KEY, Sandbox, WorkerFactory, make_settings
from tests.factories import make_order, placed_once, run_cli, wait_final
from worker.ledger.keys import Keys
from worker.obs.metrics import start_metrics_server

pytestmark = pytest.mark.chaos
KEYS = Keys()
ORDERS = 8000
QUEUE = "order-dispatch"


def _named_by_messages(client: redis.Redis) -> list[str]:
    keys: list[str] = []
    for message in client.lrange(QUEUE, 0, -1):  # type: ignore[union-attr]
        keys += json.loads(json.loads(message)["body"])[0][0]
    return keys


def _records(client: redis.Redis) -> set[str]:
    prefix = KEYS.record("")
    return {k.removeprefix(prefix) for k in client.scan_iter(f"{prefix}*", count=1000)}


def test_a_full_redis_refuses_enqueue_cleanly_and_workers_resume_when_memory_frees(
    make_redis_server: Any, sandbox: Sandbox, workers: WorkerFactory, tmp_path: Path
) -> None:
    """At maxmemory enqueue exits 69 naming what it accepted; workers resume when memory frees."""
    server = make_redis_server(maxmemory="4mb")
    client = redis.Redis.from_url(server.url, decode_responses=True)
    orders = tmp_path / "orders.jsonl"
    orders.write_text(
        "".join(json.dumps(make_order(i, prefix="full")) + "\n" for i in range(ORDERS))
    )
    env = {"DISPATCH_REDIS_URL": server.url, "DISPATCH_API_KEY": API_KEY}
    env |= {"DISPATCH_ACCOUNT_ID": ACCOUNT}

    result = run_cli(env, "enqueue", str(orders), "--json")
    assert result.returncode == 69, result.stderr
    message = " ".join(result.stderr.split())  # the terminal's line wrapping undone
    assert "refused writes (out of memory" in message
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    accepted = [line["key"] for line in lines if line["outcome"] == "accepted"]
    assert 0 < len(accepted) == len(lines) < ORDERS
    assert [line["line"] for line in lines] == list(range(1, len(lines) + 1))
    assert f"nothing from line {len(lines) + 1} on was enqueued" in message
    # Exactly what was printed is in Redis: records, queued entries, messages, counters.
    assert _records(client) == set(accepted)
    assert set(client.zrange(KEYS.queued, 0, -1)) == set(accepted)  # type: ignore[arg-type]
    assert sorted(_named_by_messages(client)) == sorted(accepted)
    assert client.hget(KEYS.counters, "orders_accepted") == str(len(accepted))

    # The exporter shows memory against maxmemory: the critical alert's condition holds.
    exporter = start_metrics_server("127.0.0.1", free_port(), make_settings(server.url))
    try:
        text = httpx.get(f"http://127.0.0.1:{exporter.port}/metrics", timeout=10).text
    finally:
        exporter.close()
    gauges = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    limit = gauges["order_dispatch_redis_memory_max_bytes"]
    assert limit == 4 * 1024 * 1024
    assert gauges["order_dispatch_redis_memory_used_bytes"] / limit > 0.97

    # Over the limit a worker can record nothing (no claim, no attempt), so it sends nothing.
    log = tmp_path / "w1.log"
    worker = workers(
        name="w1", concurrency=64, DISPATCH_REDIS_URL=server.url, DISPATCH_RATE_LIMIT="60000/minute"
    )
    wait_until(
        lambda: log.exists() and "maxmemory" in log.read_text(errors="replace"),
        timeout_s=30,
        what="the worker to meet the full Redis",
    )
    assert sandbox.posts() == {}
    assert worker.poll() is None, "the worker died on a full Redis"

    client.config_set("maxmemory", "0")  # memory frees: the worker resumes by itself
    dispatcher = Dispatcher(make_settings(server.url))
    records = wait_final(dispatcher, accepted, timeout_s=120)
    assert {r.status for r in records} == {"completed"}
    assert sandbox.creates() == {key.split(":", 1)[1]: 1 for key in accepted}
    assert worker.poll() is None


def test_a_running_worker_caught_by_the_limit_sends_nothing_more_and_resumes(
    make_redis_server: Any, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """Memory runs out under a worker with POSTs in flight: it begins no attempt it could not
    record, stays up, and once memory frees places every order once (a POST whose outcome
    could not be recorded is sent again only as a counted ambiguous attempt)."""
    server = make_redis_server()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    dispatcher = Dispatcher(make_settings(server.url))
    sandbox.control.faults(latency_ms=1000)
    report = dispatcher.enqueue_many([make_order(i, prefix="limit") for i in range(300)])
    keys = [r.key for r in report.results if r.key]
    worker = workers(
        name="w1", concurrency=64, DISPATCH_REDIS_URL=server.url, DISPATCH_RATE_LIMIT="60000/minute"
    )
    wait_until(lambda: sum(sandbox.posts().values()) >= 64, timeout_s=30, what="a first wave")
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", str(used // 2))  # well over the limit: every write refused
    time.sleep(2.5)  # the POSTs on the wire when it filled get their answers
    sent = sum(sandbox.posts().values())
    time.sleep(3)
    assert sum(sandbox.posts().values()) == sent, "POSTs began that could not be recorded"
    assert worker.poll() is None, "the worker died on a full Redis"

    client.config_set("maxmemory", "0")
    placed_once(dispatcher, sandbox.control, keys)
    assert worker.poll() is None
