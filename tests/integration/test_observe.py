"""`snapshot`, the Prometheus exporter, `stats` and `health` against a real Redis filled by hand
with what the ledger writes (its key contract), so they are checked without any worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from producer.cli.observe import health, metrics, stats
from sandbox.processes import free_port, stop, wait_until
from tests.conftest import ACCOUNT, API_KEY, make_settings
from worker.counters import LATENCY_BUCKETS_MS, latency_bucket, latency_field
from worker.ledger.keys import FlowKeys, Keys
from worker.obs.metrics import METRIC_NAMES, REDIS_UP, MetricsServer, start_metrics_server
from worker.obs.snapshot import snapshot

KEYS = Keys()
FLOW = FlowKeys.for_api_key(API_KEY)
QUEUE = "order-dispatch"
COUNTERS = {
    "orders_accepted": 10,
    "orders_duplicate": 2,
    "orders_completed": 7,
    "orders_dead": 1,
    "retries_retry": 5,
    "retries_ambiguous": 1,
    "callbacks_delivered": 6,
    "callbacks_failed": 2,
    "callbacks_dead": 1,
    "poison_messages": 3,
}
# Non-cumulative, as the ledger writes them: 10 calls, 90 s in all.
LATENCY = {"api_latency_le_25": 4, "api_latency_le_100": 3, "api_latency_le_1000": 2}
LATENCY |= {"api_latency_le_inf": 1, "api_latency_sum_ms": 90_000, "api_latency_count": 10}


def fill(client: redis.Redis, now_s: float, *, open_for_ms: int = 10_000) -> None:
    """The ledger's state for a small fleet: one fresh worker, one stale, an open circuit."""
    now_ms = int(now_s * 1000)
    client.hset(KEYS.counters, mapping={**COUNTERS, **LATENCY})
    client.zadd(KEYS.queued, {"a:1": now_ms - 5000, "a:2": now_ms - 1000})
    client.zadd(KEYS.waiting, {"a:3": now_ms + 1000, "a:4": now_ms + 2000, "a:5": now_ms})
    client.zadd(KEYS.leases, {"a:6": now_ms + 30_000})
    client.zadd(KEYS.dead, {"a:7": now_ms, "a:8": now_ms})
    client.zadd("od:dead:callback", {"a:9": now_ms})
    client.zadd("od:cb:queued", {"a:10": now_ms})
    client.zadd("od:cb:waiting", {"a:11": now_ms, "a:12": now_ms})
    client.zadd("od:cb:leases", {"a:13": now_ms})
    client.lpush(QUEUE, "m1", "m2", "m3", "m4")
    client.zadd(KEYS.workers, {"w1@host-a": now_ms - 1000, "w2@host-b": now_ms - 60_000})
    client.hset(FLOW.circuit, mapping={"open_until_ms": now_ms + open_for_ms, "failures": 10})
    client.set(FLOW.pause, "1", px=5000)


def test_snapshot_reads_every_number(redis_client: redis.Redis) -> None:
    """The fleet snapshot reads every number (queue, schedule, dead letters, workers, counters)."""
    now_s = time.time()
    fill(redis_client, now_s)
    snap = snapshot(redis_client, KEYS, FLOW, QUEUE, now_s=now_s)
    assert (snap.queue_depth, snap.queued, snap.scheduled, snap.in_flight) == (4, 2, 3, 1)
    assert (snap.dead_submit, snap.dead_callback, snap.callbacks_pending) == (2, 1, 4)
    assert snap.workers_alive == 1
    assert snap.workers == pytest.approx({"w1@host-a": 1.0, "w2@host-b": 60.0}, abs=0.01)
    assert (snap.circuit, snap.circuit_failures) == ("open", 10)
    assert snap.paused and 0 < snap.pause_remaining_s <= 5
    assert snap.oldest_queued_age_s == pytest.approx(5.0, abs=0.01)
    assert snap.counters == COUNTERS
    assert snap.latency_buckets == (4, 0, 3, 0, 0, 2, 0, 0, 0, 0, 0, 1)
    assert (snap.latency_sum_ms, snap.latency_count) == (90_000, 10)
    data = json.loads(json.dumps(snap.as_dict()))
    assert data["latency_buckets"]["25"] == 4 and data["latency_buckets"]["inf"] == 1


def test_snapshot_of_an_empty_ledger_and_the_circuit_states(redis_client: redis.Redis) -> None:
    """An empty ledger reads as zeros, and the circuit reads closed, failing, open or half-open."""
    now_s = time.time()
    snap = snapshot(redis_client, KEYS, FLOW, QUEUE, now_s=now_s)
    assert (snap.queue_depth, snap.workers_alive, snap.oldest_queued_age_s) == (0, 0, 0.0)
    assert (snap.circuit, snap.paused, snap.latency_count) == ("closed", False, 0)
    assert snap.counters == dict.fromkeys(COUNTERS, 0)
    redis_client.hset(FLOW.circuit, "failures", "3")  # failing, not yet open
    assert snapshot(redis_client, KEYS, FLOW, QUEUE, now_s=now_s).circuit == "closed"
    redis_client.hset(FLOW.circuit, "open_until_ms", str(int(now_s * 1000) - 1))
    assert snapshot(redis_client, KEYS, FLOW, QUEUE, now_s=now_s).circuit == "half_open"


def test_latency_fields() -> None:
    """Each latency falls in the right histogram bucket, bounds inclusive, +Inf beyond the last."""
    assert [latency_bucket(ms) for ms in (0, 25, 26, 60_000, 60_001)] == [
        "api_latency_le_25",
        "api_latency_le_25",
        "api_latency_le_50",
        "api_latency_le_60000",
        "api_latency_le_inf",
    ]
    assert latency_field(None) == "api_latency_le_inf"
    assert len(LATENCY_BUCKETS_MS) == 11


@pytest.fixture
def exporter(redis_url: str) -> Iterator[MetricsServer]:
    server = start_metrics_server("127.0.0.1", free_port(), make_settings(redis_url))
    yield server
    server.close()


def scrape(port: int) -> dict[str, Any]:
    """Samples by name, then by their labels (as a sorted tuple of pairs)."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(response.text):
        samples.setdefault(family.name, {})
        for s in family.samples:
            samples.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return samples


def test_exporter_serves_every_metric_with_the_right_values(
    exporter: MetricsServer, redis_client: redis.Redis
) -> None:
    """The exporter serves every documented metric, each with the value in Redis."""
    fill(redis_client, time.time())
    m = scrape(exporter.port)
    assert set(METRIC_NAMES) <= set(m)
    assert m[REDIS_UP][()] == 1

    orders = {labels[0][1]: v for labels, v in m["order_dispatch_orders_total"].items()}
    assert orders == {"accepted": 10, "duplicate": 2, "completed": 7, "dead": 1}
    retries = {labels[0][1]: v for labels, v in m["order_dispatch_retries_total"].items()}
    assert retries == {"retry": 5, "ambiguous": 1}
    callbacks = {labels[0][1]: v for labels, v in m["order_dispatch_callbacks_total"].items()}
    assert callbacks == {"delivered": 6, "failed": 2, "dead": 1}
    dead = {labels[0][1]: v for labels, v in m["order_dispatch_dead_letters"].items()}
    assert dead == {"submit": 2, "callback": 1}

    buckets = {
        labels[0][1]: v for labels, v in m["order_dispatch_api_latency_seconds_bucket"].items()
    }
    assert buckets == {
        "0.025": 4, "0.05": 4, "0.1": 7, "0.25": 7, "0.5": 7, "1.0": 9, "2.5": 9,
        "5.0": 9, "10.0": 9, "30.0": 9, "60.0": 9, "+Inf": 10,
    }  # fmt: skip
    assert m["order_dispatch_api_latency_seconds_sum"][()] == 90.0
    assert m["order_dispatch_api_latency_seconds_count"][()] == 10

    gauges = {
        "queue_depth": 4,
        "orders_queued": 2,
        "orders_scheduled": 3,
        "orders_in_flight": 1,
        "circuit_open": 1,
        "rate_paused": 1,
        "callbacks_pending": 4,
        "workers_alive": 1,
        "poison_messages_total": 3,
    }
    assert {name: m[f"order_dispatch_{name}"][()] for name in gauges} == gauges
    assert 5.0 <= m["order_dispatch_oldest_queued_seconds"][()] < 15.0


def test_each_scrape_reads_redis_afresh(exporter: MetricsServer, redis_client: redis.Redis) -> None:
    """Each scrape reads Redis afresh: a change shows in the next scrape, nothing is cached."""
    assert scrape(exporter.port)["order_dispatch_circuit_open"][()] == 0
    fill(redis_client, time.time(), open_for_ms=-1)  # half-open counts as open
    assert scrape(exporter.port)["order_dispatch_circuit_open"][()] == 1
    redis_client.delete(FLOW.circuit)
    assert scrape(exporter.port)["order_dispatch_circuit_open"][()] == 0


def test_exporter_says_when_redis_is_down() -> None:
    """With Redis unreachable the exporter still answers, with redis_up at 0."""
    server = start_metrics_server("127.0.0.1", free_port(), make_settings("redis://127.0.0.1:1/0"))
    try:
        m = scrape(server.port)
    finally:
        server.close()
    assert m[REDIS_UP][()] == 0
    assert "order_dispatch_orders_total" not in m


def env(redis_url: str) -> dict[str, str]:
    return {
        "DISPATCH_REDIS_URL": redis_url,
        "DISPATCH_API_KEY": API_KEY,
        "DISPATCH_ACCOUNT_ID": ACCOUNT,
    }


def test_stats_json_is_the_snapshot(redis_url: str, redis_client: redis.Redis) -> None:
    """`stats --json` prints exactly the snapshot, as one JSON line."""
    fill(redis_client, time.time())
    result = CliRunner().invoke(stats, ["--json"], env=env(redis_url))
    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    printed = json.loads(line)
    expected = snapshot(redis_client, KEYS, FLOW, QUEUE, now_s=time.time()).as_dict()
    for approximate in ("at_s", "workers", "oldest_queued_age_s", "pause_remaining_s"):
        assert printed.pop(approximate) == pytest.approx(expected.pop(approximate), abs=2)
    assert printed == expected


def test_stats_for_a_person(redis_url: str, redis_client: redis.Redis) -> None:
    """`stats` for a person names the circuit's state and the counts in words."""
    fill(redis_client, time.time(), open_for_ms=-1)
    result = CliRunner().invoke(stats, [], env=env(redis_url))
    assert result.exit_code == 0, result.output
    assert "half-open" in result.output and "10 accepted" in result.output


@pytest.mark.parametrize("args", [["--json", "--watch"], ["--watch"]])
def test_stats_watch_refreshes_until_ctrl_c(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """`stats --watch` redraws at its interval until Ctrl-C, then exits cleanly."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("producer.cli.observe.time.sleep", sleep)
    result = CliRunner().invoke(stats, [*args, "--interval", "0.5"], env=env(redis_url))
    assert result.exit_code == 0, result.output
    assert sleeps == [0.5, 0.5]
    if "--json" in args:
        assert [json.loads(line)["queue_depth"] for line in result.output.splitlines()] == [0, 0]


@pytest.mark.parametrize(
    ("age_s", "args", "code"),
    [
        (1, [], 0),
        (1, ["--worker", "w1"], 0),
        (1, ["--worker", "w1@host-a"], 0),
        (1, ["--worker", "w9"], 1),
        (45, [], 1),
        (45, ["--max-age-s", "60"], 0),
        (None, [], 1),
    ],
)
def test_health(
    redis_url: str, redis_client: redis.Redis, age_s: float | None, args: list[str], code: int
) -> None:
    """`health` exits 0 only when the named (or any) worker beat within the allowed age."""
    if age_s is not None:
        redis_client.zadd(KEYS.workers, {"w1@host-a": int((time.time() - age_s) * 1000)})
    result = CliRunner().invoke(health, args, env=env(redis_url))
    assert result.exit_code == code, result.output


def test_health_json(redis_url: str, redis_client: redis.Redis) -> None:
    """`health --json` lists the live workers and leaves out those that stopped beating."""
    now_ms = int(time.time() * 1000)
    redis_client.zadd(KEYS.workers, {"w1@host-a": now_ms, "w2@host-b": now_ms - 60_000})
    result = CliRunner().invoke(health, ["--json"], env=env(redis_url))
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["ok"] and report["alive"] == ["w1@host-a"]
    assert set(report["workers"]) == {"w1@host-a", "w2@host-b"}


def test_unreachable_redis_exits_69() -> None:
    """`health` and `stats` exit 69 (unavailable) when Redis cannot be reached."""
    for command in (health, stats):
        result = CliRunner().invoke(command, [], env=env("redis://127.0.0.1:1/0"))
        assert result.exit_code == 69, result.output


def test_metrics_command_serves_until_ctrl_c(redis_url: str) -> None:
    """`metrics` serves the exporter until interrupted, then exits cleanly."""
    port = free_port()
    serve = "from producer.cli.observe import metrics; metrics()"
    proc = subprocess.Popen(
        [sys.executable, "-c", serve, "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, **env(redis_url)},
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that `stop` can end its group if the test fails
    )
    try:
        wait_until(lambda: _serving(port), timeout_s=20, what="the exporter")
        assert REDIS_UP in scrape(port)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)
        assert proc.stderr is not None
        proc.stderr.close()


def _serving(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_metrics_command_on_a_taken_port_exits_69(redis_url: str) -> None:
    """`metrics` on a port already taken exits 69 with a message, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(
            metrics, ["--host", "127.0.0.1", "--port", port], env=env(redis_url)
        )
    assert result.exit_code == 69
    assert "cannot listen" in result.output
