"""The Celery app and the settings that make it fit for this job.

JSON only; late acks, reject on worker lost and prefetch 1, so a message leaves Redis only when
its work is recorded; the threads pool, whose threads only carry messages to the process's
event loop (the loop keeps the slow API calls in flight: `runtime.py`) and send callbacks; a
broker connection pool sized to the threads (a dry pool leaves messages unacked, and they run
again). The configuration is computed from `Settings` when the worker first needs it, not at
import.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from celery import Celery, signals

from worker.obs.sentry import init_sentry
from worker.process.runtime import get_runtime
from worker.process.transport import transport_for
from worker.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    concurrency = settings.worker_concurrency
    transport_options: dict[str, Any] = {
        # A dry pool leaves acks undone and messages run again (FACTS: MaxConnectionsError).
        # The cap is only a cap (connections open lazily): big enough for `-c` up to 512 too.
        "max_connections": max(2 * concurrency + 10, 2 * 512 + 10),
        # The ledger's leases recover a dead worker's orders in seconds; this is only the
        # backstop for messages, and a redelivered message is harmless (claims are atomic).
        "visibility_timeout": 3600,
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
        "health_check_interval": 10,
    }
    if settings.redis_url.startswith("sentinel://"):
        transport_options["master_name"] = settings.redis_sentinel_master
    config: dict[str, Any] = {
        "broker_url": settings.redis_url,
        "broker_transport": transport_for(settings.redis_url),
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "broker_transport_options": transport_options,
        "task_default_queue": settings.queue,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_pool": "threads",
        "worker_concurrency": concurrency,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "broker_channel_error_retry": True,
    }
    if settings.redis_url.startswith("rediss://"):
        # TLS: certificates are checked unless the URL says otherwise (ssl_cert_reqs=...).
        config["broker_use_ssl"] = {"ssl_cert_reqs": _cert_reqs(settings.redis_url)}
    return config


def _cert_reqs(url: str) -> ssl.VerifyMode:
    query = dict(parse_qsl(urlsplit(url).query))
    value = query.get("ssl_cert_reqs", "required").lower()
    return {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL}.get(value, ssl.CERT_REQUIRED)


app = Celery("order_dispatch", include=["worker.process.tasks"])
app.add_defaults(lambda: celery_config(get_runtime().settings))


def entry_app() -> Celery:
    """The app for `celery -A worker worker`, the worker's entry point: the settings are read
    here, so a bad or unknown variable exits 78 naming it before Celery starts."""
    get_runtime()
    return app


@signals.worker_init.connect
def _init_worker(sender: Any = None, **_: Any) -> None:
    runtime = get_runtime()
    init_sentry(runtime.settings, component="worker")
    # With the threads pool, `-c` (whose default is DISPATCH_WORKER_CONCURRENCY) is also the
    # number of POSTs the process keeps in flight.
    concurrency = getattr(sender, "concurrency", None)
    if isinstance(concurrency, int) and "thread" in str(getattr(sender, "pool_cls", "")).lower():
        runtime.in_flight = concurrency


@signals.worker_process_init.connect
def _init_child(**_: Any) -> None:
    """A prefork child holds its own leases: it starts its own keeper (and Sentry client)."""
    runtime = get_runtime()
    init_sentry(runtime.settings, component="worker")
    runtime.start()


@signals.worker_ready.connect
def _start_keeper(sender: Any = None, **_: Any) -> None:
    runtime = get_runtime()
    runtime.node = getattr(sender, "hostname", None) or runtime.node
    runtime.start()


@signals.worker_shutting_down.connect
def _close_intake(**_: Any) -> None:
    """Warm shutdown begins: messages still waiting for room go back to the queue at once."""
    get_runtime().close_intake()


@signals.worker_shutdown.connect
def _stop_keeper(**_: Any) -> None:
    get_runtime().stop()


@signals.after_setup_logger.connect
def _configure_logging(**_: Any) -> None:
    from worker.obs.logformat import configure

    configure(get_runtime().settings.log_format)
