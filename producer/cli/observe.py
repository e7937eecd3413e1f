"""`order-dispatch stats|health|metrics`: the fleet at a glance, a liveness probe, the exporter.

All three read the shared Redis through `worker.obs.snapshot`, so they agree with each other and
with the metrics. `health` is built for a probe every few seconds: two Redis round trips, exit 0
(a live worker making progress), 1 (none, not the named one, or stalled: see
`worker.obs.liveness`) or 69 (Redis unreachable).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator

import click
import redis
from rich.console import Group
from rich.live import Live
from rich.table import Table

from producer.cli.common import (
    EX_FAILURE,
    EX_OK,
    EX_UNAVAILABLE,
    emit_json,
    err,
    load_settings,
    out,
    service_errors,
)
from worker.counters import LATENCY_BUCKETS_MS
from worker.ledger.connect import connect
from worker.ledger.keys import FlowKeys, Keys
from worker.obs.snapshot import Health, Snapshot, read_health, snapshot
from worker.settings import Settings


def _client(settings: Settings) -> redis.Redis:
    # Few retries: a person or a probe wants to hear "unreachable" in seconds, not minutes.
    return connect(settings.redis_url, retries=2, sentinel_master=settings.redis_sentinel_master)


def _read(settings: Settings, client: redis.Redis) -> Snapshot:
    flow = FlowKeys.for_api_key(settings.api_key.get_secret_value())
    return snapshot(client, Keys(), flow, settings.queue)


def _median_ms(snap: Snapshot) -> str:
    """The bucket bound below which half the calls finished (`-` before the first call)."""
    total = sum(snap.latency_buckets)
    if total == 0:
        return "-"
    seen = 0
    for bound, count in zip((*LATENCY_BUCKETS_MS, None), snap.latency_buckets, strict=True):
        seen += count
        if seen * 2 >= total:
            return f"<= {bound} ms" if bound is not None else f"> {LATENCY_BUCKETS_MS[-1]} ms"
    return "-"  # pragma: no cover - the loop always reaches the total


def render(snap: Snapshot) -> Group:
    """The snapshot as two tables: where orders are now, and what has happened so far."""
    c = snap.counter
    now = Table(title="now", show_header=False, box=None, padding=(0, 2))
    now.add_row("queue messages", str(snap.queue_depth))
    now.add_row(
        "queued / scheduled / in flight", f"{snap.queued} / {snap.scheduled} / {snap.in_flight}"
    )
    now.add_row("oldest queued", f"{snap.oldest_queued_age_s:.1f} s")
    now.add_row("callbacks pending", str(snap.callbacks_pending))
    now.add_row("dead (submit / callback)", f"{snap.dead_submit} / {snap.dead_callback}")
    circuit = {"closed": "[green]closed[/]", "open": "[red]open[/]"}.get(
        snap.circuit, "[yellow]half-open[/]"
    )
    now.add_row("circuit", f"{circuit} ({snap.circuit_failures} failures)")
    paused = f"[yellow]paused {snap.pause_remaining_s:.1f} s[/]" if snap.paused else "no"
    now.add_row("429 pause", paused)
    now.add_row("workers alive", f"{snap.workers_alive} of {len(snap.workers)} known")

    totals = Table(title="since the start", show_header=False, box=None, padding=(0, 2))
    totals.add_row(
        "orders",
        f"{c('orders_accepted')} accepted, {c('orders_duplicate')} duplicate, "
        f"{c('orders_completed')} completed, {c('orders_dead')} dead",
    )
    totals.add_row("retries", f"{c('retries_retry')} retry, {c('retries_ambiguous')} ambiguous")
    totals.add_row(
        "callbacks",
        f"{c('callbacks_delivered')} delivered, {c('callbacks_failed')} failed, "
        f"{c('callbacks_dead')} dead",
    )
    mean = snap.latency_sum_ms / snap.latency_count if snap.latency_count else 0.0
    totals.add_row(
        "API latency", f"{snap.latency_count} calls, mean {mean:.0f} ms, median {_median_ms(snap)}"
    )
    totals.add_row("poison messages", str(c("poison_messages")))
    return Group(now, totals)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, per refresh.")
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes with --watch.",
)
def stats(as_json: bool, watch: bool, interval_s: float) -> None:
    """Where the orders are, and the fleet's counters (read from Redis)."""
    settings = load_settings()
    with service_errors():
        client = _client(settings)
        try:
            if as_json:
                for _ in _ticks(watch, interval_s):
                    emit_json(_read(settings, client).as_dict())
                    sys.stdout.flush()
            elif not watch:
                out.print(render(_read(settings, client)))
            else:
                with Live(console=out, auto_refresh=False) as live:
                    for _ in _ticks(watch, interval_s):
                        live.update(render(_read(settings, client)), refresh=True)
        except KeyboardInterrupt:
            pass  # Ctrl-C is how --watch ends
        finally:
            client.close()


def _ticks(watch: bool, interval_s: float) -> Iterator[None]:
    """Once, or (with --watch) every `interval_s` until Ctrl-C."""
    yield
    while watch:
        time.sleep(interval_s)
        yield


@click.command()
@click.option("--worker", "name", help="This worker only (its node name, or the part before @).")
@click.option(
    "--max-age-s",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="A heartbeat older than this is dead.",
)
@click.option("--json", "as_json", is_flag=True)
def health(name: str | None, max_age_s: float, as_json: bool) -> None:
    """Exit 0 if a worker (or the named one) has a fresh heartbeat and is making progress, 1 if
    not, 69 if Redis is unreachable. A worker with work waiting (queue messages, or what it
    holds) that has taken no message and finished no attempt for DISPATCH_HEALTH_STALL_S, or
    whose event loop has not answered for as long, is stalled. Cheap enough for a probe every
    few seconds."""
    settings = load_settings()
    with service_errors():
        client = _client(settings)
        try:
            found = read_health(
                client,
                Keys(),
                settings.queue,
                max_age_s=max_age_s,
                stall_s=settings.health_stall_s,
                name=name,
            )
        finally:
            client.close()
    healthy = found.healthy
    if as_json:
        emit_json(
            {
                "ok": bool(healthy),
                "alive": found.alive,
                "healthy": healthy,
                "stalled": found.stalled,
                "workers": found.workers,
                "progress": found.progress,
                "queue_depth": found.queue_depth,
                "max_age_s": max_age_s,
                "stall_s": settings.health_stall_s,
            }
        )
    elif healthy:
        out.print(f"ok: {', '.join(healthy)}")
    else:
        _print_unhealthy(found, name, max_age_s)
    sys.exit(EX_OK if healthy else EX_FAILURE)


def _print_unhealthy(found: Health, name: str | None, max_age_s: float) -> None:
    for node, reason in sorted(found.stalled.items()):
        err.print(f"[red]unhealthy[/]: worker {node!r} is stalled: {reason}")
    if not found.alive:
        who = f"worker {name!r}" if name else "any worker"
        err.print(f"[red]unhealthy[/]: no heartbeat from {who} in the last {max_age_s:g} s")


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")  # noqa: S104 - an exporter is scraped from other hosts
@click.option("--port", type=click.IntRange(1, 65535), default=9808, show_default=True)
def metrics(host: str, port: int) -> None:
    """Serve Prometheus metrics on http://HOST:PORT/metrics until Ctrl-C."""
    # prometheus-client comes with the worker extra; the other commands run without it.
    from worker.obs.metrics import serve_metrics

    settings = load_settings()
    try:
        serve_metrics(
            host, port, settings, on_ready=lambda url: err.print(f"serving {url} (Ctrl-C to stop)")
        )
    except OSError as exc:
        err.print(f"[red]cannot listen on {host}:{port}[/]: {exc}")
        sys.exit(EX_UNAVAILABLE)
