"""The benchmark's surroundings: its own Redis and sandbox, its orders, and waiting on counts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from producer.samples import example_order
from sandbox.control import SandboxControl
from sandbox.processes import RedisServer, free_port, start_sandbox, stop

API_KEY = "bench-key"
ACCOUNT = "bench"


def bench_orders(n: int, prefix: str) -> list[dict[str, Any]]:
    """`n` valid orders of about 2 KB, like the StackOne example."""
    out = []
    for i in range(n):
        order = example_order()
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


def fresh(env: Env, latency_ms: float) -> Any:
    """An empty Redis and a sandbox answering after `latency_ms`; the Redis client."""
    client = env.client
    client.flushall()
    env.control.reset()
    env.control.faults(latency_ms=latency_ms)
    return client
