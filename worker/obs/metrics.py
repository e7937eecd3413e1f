"""The Prometheus exporter: one process that turns a fresh `Snapshot` into metrics per scrape.

It reads only the shared Redis (the counters the workers keep there), so one exporter is right
for any number of worker hosts, and a scrape costs one Redis round trip. The metric names are a
contract with the alert rules and the dashboard in ops/: `METRIC_NAMES` lists them as PromQL
sees them. When Redis does not answer, a scrape still succeeds with only
`order_dispatch_redis_up 0`, so that an alert can say so rather than see a gap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from worker.counters import LATENCY_BUCKETS_MS
from worker.ledger.connect import connect
from worker.ledger.keys import FlowKeys, Keys
from worker.obs.snapshot import Snapshot, snapshot
from worker.settings import Settings

logger = logging.getLogger("order_dispatch.metrics")

P = "order_dispatch_"
METRIC_NAMES: tuple[str, ...] = (
    f"{P}orders_total",
    f"{P}retries_total",
    f"{P}api_latency_seconds",
    f"{P}queue_depth",
    f"{P}orders_queued",
    f"{P}orders_scheduled",
    f"{P}orders_in_flight",
    f"{P}dead_letters",
    f"{P}circuit_open",
    f"{P}rate_paused",
    f"{P}callbacks_total",
    f"{P}callbacks_pending",
    f"{P}oldest_queued_seconds",
    f"{P}workers_alive",
    f"{P}poison_messages_total",
    f"{P}redis_memory_used_bytes",
    f"{P}redis_memory_max_bytes",
)
REDIS_UP = f"{P}redis_up"


def _counter(name: str, doc: str, label: str, values: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, count in values.items():
        family.add_metric([value], count)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _latency(snap: Snapshot) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        f"{P}api_latency_seconds", "Duration of the POSTs to the API, in seconds.", labels=[]
    )
    bounds = [str(ms / 1000) for ms in LATENCY_BUCKETS_MS] + ["+Inf"]
    cumulative, buckets = 0, []
    for bound, count in zip(bounds, snap.latency_buckets, strict=True):
        cumulative += count
        buckets.append((bound, float(cumulative)))
    family.add_metric([], buckets, sum_value=snap.latency_sum_ms / 1000.0)
    return family


def families(snap: Snapshot) -> list[Metric]:
    """Every metric in `METRIC_NAMES`, from one snapshot."""
    c = snap.counter
    return [
        _counter(
            f"{P}orders",
            "Orders by outcome: accepted, duplicate (enqueue), completed, dead.",
            "outcome",
            {o: c(f"orders_{o}") for o in ("accepted", "duplicate", "completed", "dead")},
        ),
        _counter(
            f"{P}retries",
            "Attempts that will be tried again, by class (retry, ambiguous).",
            "class",
            {k: c(f"retries_{k}") for k in ("retry", "ambiguous")},
        ),
        _latency(snap),
        _gauge(f"{P}queue_depth", "Messages waiting in the Celery queue.", snap.queue_depth),
        _gauge(f"{P}orders_queued", "Orders whose queue message is published.", snap.queued),
        _gauge(f"{P}orders_scheduled", "Orders waiting for a retry or a gate.", snap.scheduled),
        _gauge(f"{P}orders_in_flight", "Orders leased by a worker.", snap.in_flight),
        _stage_gauge(snap),
        _gauge(
            f"{P}circuit_open",
            "1 while the circuit breaker is open or half-open.",
            0 if snap.circuit == "closed" else 1,
        ),
        _gauge(f"{P}rate_paused", "1 while a 429 pauses every worker.", int(snap.paused)),
        _counter(
            f"{P}callbacks",
            "Callback deliveries by outcome: delivered, failed (will retry), dead.",
            "outcome",
            {o: c(f"callbacks_{o}") for o in ("delivered", "failed", "dead")},
        ),
        _gauge(f"{P}callbacks_pending", "Callbacks not yet delivered.", snap.callbacks_pending),
        _gauge(
            f"{P}oldest_queued_seconds",
            "Age of the oldest published queue message.",
            snap.oldest_queued_age_s,
        ),
        _gauge(f"{P}workers_alive", "Workers with a recent heartbeat.", snap.workers_alive),
        CounterMetricFamily(
            f"{P}poison_messages",
            "Queue messages that could not be read.",
            value=c("poison_messages"),
        ),
        *_memory(snap),
    ]


def _memory(snap: Snapshot) -> list[Metric]:
    if snap.redis_used_memory_bytes is None or snap.redis_maxmemory_bytes is None:
        return []
    return [
        _gauge(
            f"{P}redis_memory_used_bytes",
            "Memory Redis uses (INFO memory used_memory).",
            snap.redis_used_memory_bytes,
        ),
        _gauge(
            f"{P}redis_memory_max_bytes",
            "Redis's maxmemory (0: no limit); above it, with noeviction, writes are refused.",
            snap.redis_maxmemory_bytes,
        ),
    ]


def _stage_gauge(snap: Snapshot) -> GaugeMetricFamily:
    family = GaugeMetricFamily(f"{P}dead_letters", "Dead letters by stage.", labels=["stage"])
    family.add_metric(["submit"], snap.dead_submit)
    family.add_metric(["callback"], snap.dead_callback)
    return family


class SnapshotCollector:
    """A custom collector: each scrape reads a fresh snapshot (nothing is cached in-process)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        flow: FlowKeys,
        queue: str,
        *,
        heartbeat_max_age_s: float = 30.0,
        clock: Callable[[], float] | None = None,  # None: Redis's clock (tests inject one)
    ) -> None:
        self.client, self.keys, self.flow, self.queue = client, keys, flow, queue
        self.heartbeat_max_age_s = heartbeat_max_age_s
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        try:
            snap = snapshot(
                self.client,
                self.keys,
                self.flow,
                self.queue,
                now_s=self.clock() if self.clock is not None else None,
                heartbeat_max_age_s=self.heartbeat_max_age_s,
                memory=True,
            )
        except redis.RedisError as exc:
            logger.warning("metrics: Redis did not answer: %s", exc)
            yield _gauge(REDIS_UP, "1 when the exporter could read Redis.", 0)
            return
        yield _gauge(REDIS_UP, "1 when the exporter could read Redis.", 1)
        yield from families(snap)


def make_registry(settings: Settings, client: redis.Redis) -> CollectorRegistry:
    """A private registry (not the process-global one) holding only our collector."""
    registry = CollectorRegistry()
    flow = FlowKeys.for_api_key(settings.api_key.get_secret_value())
    registry.register(SnapshotCollector(client, Keys(), flow, settings.queue))
    return registry


@dataclass
class MetricsServer:
    """A running exporter; `close()` stops it and releases the port."""

    server: WSGIServer
    thread: threading.Thread
    client: redis.Redis

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.client.close()


def start_metrics_server(host: str, port: int, settings: Settings) -> MetricsServer:
    """Serve /metrics on host:port from a background thread (raises OSError if the port is
    taken). A scrape gives up on Redis after a few seconds rather than hang the scraper."""
    client = connect(
        settings.redis_url,
        retries=2,
        socket_timeout_s=5.0,
        sentinel_master=settings.redis_sentinel_master,
    )
    try:
        server, thread = start_http_server(
            port, addr=host, registry=make_registry(settings, client)
        )
    except OSError:
        client.close()
        raise
    return MetricsServer(server, thread, client)


def serve_metrics(
    host: str, port: int, settings: Settings, *, on_ready: Callable[[str], None] | None = None
) -> None:
    """Serve /metrics until Ctrl-C (SIGTERM simply ends the process: nothing to save).
    `on_ready` hears the URL once the port is bound."""
    running = start_metrics_server(host, port, settings)
    if on_ready is not None:
        on_ready(f"http://{host}:{running.port}/metrics")
    try:
        while running.thread.is_alive():
            running.thread.join(timeout=1.0)
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
