"""Sentinel for real (SPEC §9, §10): real `redis-server --sentinel` processes watch a master
with a non-default name; every client (producer, workers, stats, health) connects through them,
and workers survive a failover (master SIGKILLed, replica promoted)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from producer.api import Dispatcher
from sandbox.processes import RedisServer, free_port, kill, wait_until
from tests.conftest import Sandbox, WorkerFactory, make_settings
from tests.factories import make_order, run_cli, wait_final

pytestmark = pytest.mark.chaos

MASTER = "od-primary"  # not "mymaster": every client must pass the configured name


class Sentinels:
    """A master, a replica and three sentinels (quorum 2) on free ports."""

    def __init__(self, directory: Path, make_redis: Callable[..., RedisServer]) -> None:
        self.master = make_redis(appendonly=True, appendfsync="always")
        self.replica = make_redis(appendonly=True, appendfsync="always")
        replica = redis.Redis(port=self.replica.port)
        replica.replicaof("127.0.0.1", self.master.port)
        replica.close()
        self.ports = [free_port() for _ in range(3)]
        self.procs: list[subprocess.Popen[bytes]] = []
        for port in self.ports:
            conf = directory / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.master.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
            )
            binary = shutil.which("redis-server") or "redis-server"
            self.procs.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        wait_until(self._watching, timeout_s=20, what="the sentinels to see the replica")

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{p}/0" for p in self.ports)

    def master_port(self) -> int:
        client = redis.Redis(port=self.ports[0], decode_responses=True)
        try:
            return int(client.sentinel_get_master_addr_by_name(MASTER)[1])
        finally:
            client.close()

    def _watching(self) -> bool:
        try:
            client = redis.Redis(port=self.ports[0], decode_responses=True)
            replicas = client.sentinel_slaves(MASTER)
            client.close()
        except redis.RedisError:
            return False
        return any(r.get("master-link-status") == "ok" for r in replicas)

    def close(self) -> None:
        for proc in self.procs:
            kill(proc)


@pytest.fixture
def sentinels(tmp_path: Path, make_redis_server: Any) -> Iterator[Sentinels]:
    topology = Sentinels(tmp_path, make_redis_server)
    yield topology
    topology.close()


def _env(sentinels: Sentinels, sandbox: Sandbox) -> dict[str, str]:
    return {
        "DISPATCH_REDIS_URL": sentinels.url,
        "DISPATCH_REDIS_SENTINEL_MASTER": MASTER,
    }


def test_every_client_connects_through_sentinels_with_any_master_name(
    sentinels: Sentinels, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """Enqueue, the worker, `stats` and `health` all find the master by its configured name."""
    settings = make_settings(sentinels.url, redis_sentinel_master=MASTER)
    dispatcher = Dispatcher(settings)
    report = dispatcher.enqueue_many([make_order(i, prefix="sn") for i in range(20)])
    keys = [r.key for r in report.results if r.key]
    workers(concurrency=64, **_env(sentinels, sandbox))
    records = wait_final(dispatcher, keys, timeout_s=60)
    assert {r.status for r in records} == {"completed"}
    assert sandbox.creates() == {k.split(":", 1)[1]: 1 for k in keys}
    env = {**_cli_env(), **_env(sentinels, sandbox)}
    stats = run_cli(env, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    snap = json.loads(stats.stdout.splitlines()[0])
    assert snap["workers_alive"] == 1 and snap["counters"]["orders_completed"] >= 20
    health = run_cli(env, "health")
    assert health.returncode == 0, health.stderr + health.stdout


def test_workers_survive_a_sentinel_failover(
    sentinels: Sentinels, sandbox: Sandbox, workers: WorkerFactory
) -> None:
    """The master is SIGKILLed mid-run and the replica promoted: both workers stay up and every
    order is placed once."""
    settings = make_settings(sentinels.url, redis_sentinel_master=MASTER)
    dispatcher = Dispatcher(settings)
    sandbox.control.faults(latency_ms=200)
    report = dispatcher.enqueue_many([make_order(i, prefix="fo") for i in range(150)])
    keys = [r.key for r in report.results if r.key]
    procs = [workers(name=f"w{i}", concurrency=64, **_env(sentinels, sandbox)) for i in (1, 2)]
    wait_until(lambda: sum(sandbox.posts().values()) >= 10, timeout_s=30, what="first POSTs")
    first = sentinels.master_port()
    time.sleep(0.5)  # let the replica catch up with what was acknowledged (appendfsync always)
    sentinels.master.kill()
    wait_until(lambda: sentinels.master_port() != first, timeout_s=30, what="the promotion")
    sandbox.control.faults(latency_ms=0)
    records = wait_final(dispatcher, keys, timeout_s=120)
    assert {r.status for r in records} == {"completed"}
    posts, creates = sandbox.posts(), sandbox.creates()
    assert creates == {r.order_id: 1 for r in records}
    for r in records:
        assert posts[r.order_id] <= 1 + r.ambiguous_attempts
    assert [p.poll() for p in procs] == [None, None], "a worker died in the failover"
    for proc in procs:  # done: a warm shutdown after a failover waits out old connections
        kill(proc)


def _cli_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")}
