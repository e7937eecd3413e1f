"""The limits the benchmark compares with: POSTs straight at the sandbox with the fastest client
there is, and a plain Celery task doing the same job without any of order-dispatch's guarantees.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

import httpx

from sandbox.bench.env import ACCOUNT, API_KEY, Env, bench_orders, fresh
from sandbox.processes import spawn, stop, wait_until
from worker.identity import ORDERS_PATH, basic_auth


def direct_limit(env: Env, n: int, *, latency_ms: float, concurrency: int) -> tuple[float, str]:
    """POSTs/s straight at the sandbox, `concurrency` in flight, with the fastest client here."""
    env.control.reset()
    env.control.faults(latency_ms=latency_ms)
    bodies = [json.dumps(o) for o in bench_orders(n, f"direct{int(latency_ms)}")]
    headers = {
        "x-account-id": ACCOUNT,
        "content-type": "application/json",
        "authorization": basic_auth(API_KEY),
    }
    try:
        import aiohttp  # noqa: F401 - only to know whether it is there
    except ImportError:
        return _direct_httpx(env.api_url + ORDERS_PATH, bodies, headers, concurrency), "httpx"
    return asyncio.run(
        _direct_aiohttp(env.api_url + ORDERS_PATH, bodies, headers, concurrency)
    ), "aiohttp"


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


def peer(env: Env, n: int, *, latency_ms: float, concurrency: int) -> float:
    client = fresh(env, latency_ms)
    peer_env = {
        "BENCH_REDIS_URL": env.redis_url,
        "BENCH_API_URL": env.api_url,
        "BENCH_API_KEY": API_KEY,
    }
    os.environ.update(peer_env)  # the peer app reads these when it is imported
    from sandbox.bench import peer as bench_peer

    proc = spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sandbox.bench.peer",
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
        _wait_done(client, 1, timeout_s=60)
        client.delete("peer:done")
        started = time.perf_counter()
        with bench_peer.app.producer_or_acquire() as producer:
            for order_id, body in bodies[1:]:
                bench_peer.place.apply_async((order_id, body), producer=producer)
        _wait_done(client, n, timeout_s=240)
        return n / (time.perf_counter() - started)
    finally:
        stop(proc, timeout_s=30)


def _wait_done(client: Any, n: int, *, timeout_s: float) -> None:
    wait_until(
        lambda: int(client.get("peer:done") or 0) >= n,
        timeout_s=timeout_s,
        interval_s=0.02,
        what=f"{n} peer tasks done",
    )
