"""`order-dispatch bench`: throughput as ratios against limits measured in the same run (SPEC §8).

Starts its own redis-server (or uses DISPATCH_REDIS_URL when set), the sandbox, and workers as
subprocesses, and measures, each against a limit measured in the same run on the same machine:

- end to end (enqueue -> `completed`) at 0 ms and 100 ms API latency, against the direct limit:
  the same number of concurrent POSTs straight at the sandbox with the fastest client there is
  (aiohttp when installed, else several httpx clients), and against a plain Celery task (POST
  with a module-level httpx client and one Redis write: `sandbox/bench/peer.py`) run the same
  way;
- the same at 256 in flight and 100 ms, with one worker process and with `--processes` of them
  on this host (a worker process keeps one core busy; the deployment runs one per core);
- the producer (validated, idempotent, durable) against a raw Redis pipeline of the same bodies;
- Redis round trips per order on the worker's path, and the worker's peak RSS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from producer.api import Dispatcher
from sandbox.bench.env import ACCOUNT, API_KEY, Env, bench_env, bench_orders, fresh
from sandbox.bench.limits import direct_limit, peer
from sandbox.processes import start_worker, stop, wait_until
from worker.ledger.keys import Keys
from worker.settings import Settings
from worker.validation import parse_order

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
    env: Env,
    n: int,
    *,
    latency_ms: float,
    concurrency: int,
    pool: str = "threads",
    processes: int = 1,
) -> dict[str, float]:
    """Orders/s from enqueue to `completed` through real workers on this host (`processes` of
    them sharing `concurrency`), plus the peak RSS of one."""
    client = fresh(env, latency_ms)
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
    each = max(1, concurrency // processes)
    worker_env["DISPATCH_WORKER_CONCURRENCY"] = str(each)
    procs = [
        start_worker(
            worker_env,
            name=f"bench-{pool}-{i}",
            concurrency=each,
            log=env.logs / f"worker-{pool}-{concurrency}-{int(latency_ms)}-{i}.log",
            pool=pool,
        )
        for i in range(processes)
    ]
    try:
        wait_until(
            lambda: client.zcard(Keys().workers) >= processes, timeout_s=60, what="the workers"
        )
        settings = Settings(_env_file=None, redis_url=env.redis_url, account_id=ACCOUNT)
        dispatcher = Dispatcher(settings)
        orders = [json.dumps(o) for o in bench_orders(n, f"e2e{int(latency_ms)}")]
        client.config_resetstat()
        started = time.perf_counter()
        dispatcher.enqueue_many(orders)
        polls = wait_until(
            lambda: int(client.hget(Keys().counters, "orders_completed") or 0) >= n,
            timeout_s=240,
            interval_s=0.02,
            what=f"{n} completed orders",
        )
        elapsed = time.perf_counter() - started
        calls = {
            k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()
        }
        rss_mb = max(_peak_rss_mb(p.pid) for p in procs)
    finally:
        for p in procs:
            stop(p, timeout_s=30)
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
    processes: int = 1,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "orders": orders,
        "concurrency": concurrency,
        "processes": processes,
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
        direct, client = direct_limit(env, orders, latency_ms=100, concurrency=high_concurrency)
        for n in sorted({1, processes}):
            say(f"API latency 100 ms, {high_concurrency} in flight, {n} worker process(es) ...")
            e2e = end_to_end(env, orders, latency_ms=100, concurrency=high_concurrency, processes=n)
            name = f"latency_100ms_{high_concurrency}_in_flight"
            out[name if n == 1 else f"{name}_{n}_processes"] = {
                **e2e,
                "processes": n,
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
