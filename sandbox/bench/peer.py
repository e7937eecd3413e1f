"""The benchmark's peer: the hand-rolled Celery task order-dispatch is compared with.

A plain task that POSTs the order with a module-level httpx client and writes one Redis key: no
ledger, no leases, no retries, no guarantees. `order-dispatch bench` runs it with the same pool
and concurrency as the real worker: `celery -A sandbox.bench.peer worker -P threads -c C`.
Configured from BENCH_REDIS_URL and BENCH_API_URL (read when the module loads: this is a
benchmark fixture, not part of the product).
"""

from __future__ import annotations

import os

import httpx
import redis
from celery import Celery

from worker.identity import ORDERS_PATH

app = Celery("bench_peer", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_queue="bench-peer",
    broker_transport_options={"max_connections": 600},
    worker_hijack_root_logger=False,
)
_api = os.environ.get("BENCH_API_URL", "http://127.0.0.1:1")
_client = httpx.Client(
    base_url=_api,
    auth=(os.environ.get("BENCH_API_KEY", ""), ""),
    timeout=30,
    limits=httpx.Limits(max_connections=300, max_keepalive_connections=300),
)
_redis = redis.Redis.from_url(
    os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:1/0"), max_connections=600
)


@app.task(name="bench_peer.place")
def place(order_id: str, body: str) -> None:
    reply = _client.post(
        ORDERS_PATH,
        content=body,
        headers={"x-account-id": "bench", "content-type": "application/json"},
    )
    reply.raise_for_status()
    _redis.set(f"peer:{order_id}", reply.json().get("test_url") or "")
    _redis.incr("peer:done")
