"""`order-dispatch bench`: throughput as ratios against limits measured in the same run (SPEC §8).

Starts its own redis-server (or uses DISPATCH_REDIS_URL when set), the sandbox, and workers as
subprocesses, and measures, each against a limit measured in the same run on the same machine:

- end to end (enqueue -> `completed`) at 0 ms and 100 ms API latency, against the direct limit:
  the same number of concurrent POSTs straight at the sandbox with the fastest client there is
  (aiohttp when installed, else several httpx clients), and against a plain Celery task (POST
  with a module-level httpx client and one Redis write: `producer/bench_peer.py`) run the same
  way;
- the same at 256 in flight and 100 ms;
- the producer (validated, idempotent, durable) against a raw Redis pipeline of the same bodies;
- Redis round trips per order on the worker's path, and the worker's peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis

from producer.api import Dispatcher
from producer.local import (
    RedisServer,
    free_port,
    spawn,
    start_sandbox,
    start_worker,
    stop,
    wait_until,
)
from sandbox.control import SandboxControl
from worker.keys import Keys
from worker.orders import parse_order
from worker.settings import Settings

API_KEY = "bench-key"
ACCOUNT = "bench"
ORDERS_PATH = "/unified/ats/assessments/orders"


def bench_orders(n: int, prefix: str) -> list[dict[str, Any]]:
    """`n` valid orders of about 2 KB, like the StackOne example."""
    from importlib import resources

    text = (resources.files("producer") / "samples" / "orders.jsonl").read_text()
    base = json.loads(text.splitlines()[0])
    out = []
    for i in range(n):
        order = json.loads(json.dumps(base))
        order["id"] = f"{prefix}-{i:06d}"
        order["candidate"]["emails"] = [{"type": "work", "value": f"c{i}@example.org"}]
        out.append(order)
    return out


@dataclass
class Env:
    redis_url: str
    api_url: str
    control: SandboxControl
    logs: Path

    @property
    def client(self) -> Any:  # redis-py's sync/async union types say nothing useful here
        return redis.Redis.from_url(self.redis_url, decode_responses=True)


# --- producer ------------------------------------------------------------------------------------


def producer_rates(env: Env, n: int) -> tuple[float, float]:
    """Accepted orders/s through the producer, and LPUSHes/s of the same bodies, raw."""
    orders = [json.dumps(o) for o in bench_orders(n, "prod")]
    client = env.client
    client.flushall()
    settings = Settings(_env_file=None, redis_url=env.redis_url, account_id=ACCOUNT)
    dispatcher = Dispatcher(settings)
    started = time.perf_counter()
    report = dispatcher.enqueue_many(orders)
    producer_s = time.perf_counter() - started
    assert report.accepted == n, "the producer refused bench orders"
    bodies = [parse_order(o, max_bytes=1 << 20)[1] for o in orders]
    started = time.perf_counter()
    with client.pipeline(transaction=False) as pipe:
        for i in range(0, n, 1000):
            for body in bodies[i : i + 1000]:
                pipe.lpush("bench:raw", body)
            pipe.execute()
    raw_s = time.perf_counter() - started
    client.flushall()
    return n / producer_s, n / raw_s


# --- end to end ----------------------------------------------------------------------------------


def end_to_end(
    env: Env, n: int, *, latency_ms: float, concurrency: int, pool: str = "threads"
) -> dict[str, float]:
    """Orders/s from enqueue to `completed` through a real worker, plus its peak RSS."""
    client = _fresh(env, latency_ms)
    worker_env = {
        "DISPATCH_REDIS_URL": env.redis_url,
        "DISPATCH_API_URL": env.api_url,
        "DISPATCH_API_KEY": API_KEY,
        "DISPATCH_ACCOUNT_ID": ACCOUNT,
        "DISPATCH_RATE_LIMIT": "10000000/minute",  # the sandbox has no limit to respect
        "DISPATCH_BATCH_SPREAD": str(concurrency),
        "DISPATCH_WORKER_CONCURRENCY": str(concurrency),
        "DISPATCH_HTTP_TIMEOUT_S": "30",
    }
    log = env.logs / f"worker-{pool}-{concurrency}-{int(latency_ms)}.log"
    proc = start_worker(
        worker_env, name=f"bench-{pool}", concurrency=concurrency, log=log, pool=pool
    )
    try:
        wait_until(lambda: client.zcard(Keys().workers) > 0, timeout_s=60, what="the worker")
        settings = Settings(_env_file=None, redis_url=env.redis_url, account_id=ACCOUNT)
        dispatcher = Dispatcher(settings)
        orders = [json.dumps(o) for o in bench_orders(n, f"e2e{int(latency_ms)}")]
        client.config_resetstat()
        started = time.perf_counter()
        dispatcher.enqueue_many(orders)
        polls = _wait_count(client, Keys().counters, "orders_completed", n, timeout_s=240)
        elapsed = time.perf_counter() - started
        calls = {
            k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()
        }
        rss_mb = _peak_rss_mb(proc.pid)
    finally:
        stop(proc, timeout_s=30)
    # Commands sent by the worker (a script call is one round trip, whatever it runs; kombu
    # reads with BRPOP and acks in MULTI/EXEC pipelines), and all commands Redis ran for it.
    trips = sum(calls.get(c, 0) for c in ("evalsha", "eval", "brpop", "exec", "ping"))
    enqueue_scripts = n // 500 + 1
    ours = polls + 2 + enqueue_scripts  # the bench's own polls, stats and enqueue scripts
    return {
        "orders_per_s": n / elapsed,
        "redis_round_trips_per_order": (trips - enqueue_scripts) / n,
        "redis_commands_per_order": (sum(calls.values()) - ours) / n,
        "worker_peak_rss_mb": rss_mb,
    }


def _fresh(env: Env, latency_ms: float) -> Any:
    """An empty Redis and a sandbox answering after `latency_ms`; the Redis client."""
    client = env.client
    client.flushall()
    env.control.reset()
    env.control.faults(latency_ms=latency_ms)
    return client


def _wait_count(client: Any, key: str, field: str, n: int, *, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if int(client.hget(key, field) or 0) >= n:
            return polls
        time.sleep(0.02)
    raise TimeoutError(f"{field} did not reach {n} within {timeout_s}s")


def _peak_rss_mb(pid: int) -> float:
    """The high-water mark of the resident memory of `pid` and its children (MB)."""
    total = 0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = max(total, int(line.split()[1]))
    return total / 1024


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


# --- the direct limit ----------------------------------------------------------------------------


def direct_limit(env: Env, n: int, *, latency_ms: float, concurrency: int) -> tuple[float, str]:
    """POSTs/s straight at the sandbox, `concurrency` in flight, with the fastest client here."""
    env.control.reset()
    env.control.faults(latency_ms=latency_ms)
    bodies = [json.dumps(o) for o in bench_orders(n, f"direct{int(latency_ms)}")]
    headers = {
        "x-account-id": ACCOUNT,
        "content-type": "application/json",
        "authorization": "Basic " + _basic(API_KEY),
    }
    try:
        import aiohttp  # noqa: F401 - only to know whether it is there
    except ImportError:
        return _direct_httpx(env.api_url + ORDERS_PATH, bodies, headers, concurrency), "httpx"
    return asyncio.run(
        _direct_aiohttp(env.api_url + ORDERS_PATH, bodies, headers, concurrency)
    ), "aiohttp"


def _basic(user: str) -> str:
    import base64

    return base64.b64encode(f"{user}:".encode()).decode()


async def _direct_aiohttp(
    url: str, bodies: list[str], headers: dict[str, str], concurrency: int
) -> float:
    import aiohttp

    queue = iter(bodies)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def run() -> None:
            for body in queue:
                async with session.post(url, data=body) as reply:
                    await reply.read()

        started = time.perf_counter()
        await asyncio.gather(*(run() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - started)


def _direct_httpx(url: str, bodies: list[str], headers: dict[str, str], concurrency: int) -> float:
    lock = threading.Lock()
    queue = iter(bodies)

    def run() -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while True:
                with lock:
                    body = next(queue, None)
                if body is None:
                    return
                client.post(url, content=body)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(bodies) / (time.perf_counter() - started)


# --- the peer: a plain Celery task ---------------------------------------------------------------


def peer(env: Env, n: int, *, latency_ms: float, concurrency: int) -> float:
    client = _fresh(env, latency_ms)
    peer_env = {
        "BENCH_REDIS_URL": env.redis_url,
        "BENCH_API_URL": env.api_url,
        "BENCH_API_KEY": API_KEY,
    }
    os.environ.update(peer_env)  # the peer app reads these when it is imported
    from producer import bench_peer

    proc = spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "producer.bench_peer",
            "worker",
            "-P",
            "threads",
            "-c",
            str(concurrency),
            "-Q",
            "bench-peer",
            "-l",
            "warning",
            "--without-gossip",
            "--without-mingle",
            "-n",
            "peer@%h",
        ],
        peer_env,
        log=env.logs / f"peer-{int(latency_ms)}.log",
    )
    try:
        bodies = [(o["id"], json.dumps(o)) for o in bench_orders(n + 1, f"peer{int(latency_ms)}")]
        bench_peer.place.delay(*bodies[0])  # warm up: the worker is ready when this is done
        _wait_count_key(client, "peer:done", 1, timeout_s=60)
        client.delete("peer:done")
        started = time.perf_counter()
        with bench_peer.app.producer_or_acquire() as producer:
            for order_id, body in bodies[1:]:
                bench_peer.place.apply_async((order_id, body), producer=producer)
        _wait_count_key(client, "peer:done", n, timeout_s=240)
        return n / (time.perf_counter() - started)
    finally:
        stop(proc, timeout_s=30)


def _wait_count_key(client: Any, key: str, n: int, *, timeout_s: float) -> None:
    wait_until(
        lambda: int(client.get(key) or 0) >= n,
        timeout_s=timeout_s,
        interval_s=0.02,
        what=key,
    )


# --- the run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def bench_env(settings_redis_url: str | None, logs: Path) -> Iterator[Env]:
    with contextlib.ExitStack() as stack:
        redis_url = settings_redis_url or stack.enter_context(RedisServer()).url
        port = free_port()
        sandbox = start_sandbox(port, api_key=API_KEY, log=logs / "sandbox.log")
        stack.callback(stop, sandbox)
        control = SandboxControl(f"http://127.0.0.1:{port}")
        stack.callback(control.close)
        yield Env(redis_url, f"http://127.0.0.1:{port}", control, logs)


def run_bench(
    *,
    orders: int,
    concurrency: int,
    high_concurrency: int,
    latencies_ms: list[float],
    redis_url: str | None,
    logs: Path,
    say: Callable[[str], None],
    pools: bool = False,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "orders": orders,
        "concurrency": concurrency,
    }
    with bench_env(redis_url, logs) as env:
        say("producer: validated, idempotent enqueue vs a raw Redis pipeline ...")
        produced, raw = producer_rates(env, max(orders, 10_000))
        out["producer"] = {
            "orders_per_s": produced,
            "raw_pipeline_per_s": raw,
            "ratio": produced / raw,
        }
        for latency in latencies_ms:
            say(f"API latency {latency:.0f} ms, {concurrency} in flight ...")
            e2e = end_to_end(env, orders, latency_ms=latency, concurrency=concurrency)
            direct, client = direct_limit(env, orders, latency_ms=latency, concurrency=concurrency)
            plain = peer(env, orders, latency_ms=latency, concurrency=concurrency)
            out[f"latency_{latency:.0f}ms"] = {
                **e2e,
                "direct_limit_per_s": direct,
                "direct_client": client,
                "ratio_to_direct": e2e["orders_per_s"] / direct,
                "plain_celery_per_s": plain,
                "ratio_to_plain_celery": e2e["orders_per_s"] / plain,
            }
        say(f"API latency 100 ms, {high_concurrency} in flight ...")
        e2e = end_to_end(env, orders, latency_ms=100, concurrency=high_concurrency)
        direct, client = direct_limit(env, orders, latency_ms=100, concurrency=high_concurrency)
        out[f"latency_100ms_{high_concurrency}_in_flight"] = {
            **e2e,
            "direct_limit_per_s": direct,
            "direct_client": client,
            "ratio_to_direct": e2e["orders_per_s"] / direct,
        }
        if pools:
            out["pools"] = compare_pools(env, say)
    return out


def compare_pools(env: Env, say: Callable[[str], None]) -> list[dict[str, Any]]:
    """The worker's pools at 100 ms and 1 s API latency (orders/s and peak RSS)."""
    rows = []
    for latency in (100.0, 1000.0):
        for pool, concurrency in (("threads", 64), ("prefork", 2), ("prefork", 8)):
            n = 64 * 6 if latency == 100 else 64 * 2
            if pool == "prefork":
                n = concurrency * (20 if latency == 100 else 4)
            say(f"pool {pool} -c {concurrency} at {latency:.0f} ms ...")
            result = end_to_end(env, n, latency_ms=latency, concurrency=concurrency, pool=pool)
            rows.append(
                {
                    "pool": pool,
                    "concurrency": concurrency,
                    "latency_ms": latency,
                    "limit_per_s": concurrency * 1000 / latency,
                    **result,
                }
            )
        if importlib.util.find_spec("gevent") is None:
            rows.append(
                {
                    "pool": "gevent",
                    "latency_ms": latency,
                    "note": "not installed: gevent is not a dependency",
                }
            )
    return rows
