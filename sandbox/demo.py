"""`order-dispatch demo`: the whole pipeline on this machine, one command.

Starts a private redis-server on a free port (or uses DISPATCH_REDIS_URL when it is set, never
someone's default Redis), the sandbox, one worker and, unless DISPATCH_CALLBACK_URL is set, a
local callback receiver that verifies every signature; enqueues the bundled sample orders;
waits; prints their test URLs and the verified callbacks; stops everything it started, also on
Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from producer.api import Dispatcher
from producer.samples import sample_lines
from sandbox.listen import create_listener_app, describe
from sandbox.processes import (
    LocalError,
    RedisServer,
    ThreadServer,
    free_port,
    start_sandbox,
    start_worker,
    stop,
    wait_until,
)
from worker.ledger.keys import FINAL_STATUSES
from worker.ledger.records import Record
from worker.settings import Settings
from worker.signing import new_secret

DEMO_API_KEY = "demo-api-key"
DEMO_ACCOUNT = "demo-account"
FINAL = set(FINAL_STATUSES)


def run_demo(settings: Settings, *, timeout_s: float, console: Console) -> int:
    logs = Path(tempfile.mkdtemp(prefix="od-demo-"))
    received: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        if "DISPATCH_REDIS_URL" in os.environ:
            redis_url = settings.redis_url
            console.print(f"Redis: {redis_url} (from DISPATCH_REDIS_URL)")
        else:
            try:
                server = stack.enter_context(RedisServer())
            except LocalError as exc:
                console.print(f"[red]{exc}[/]")
                return 69
            redis_url = server.url
            console.print(f"Redis: a private redis-server on port {server.port}")
        port = free_port()
        api_url = f"http://127.0.0.1:{port}"
        sandbox = start_sandbox(port, api_key=DEMO_API_KEY, log=logs / "sandbox.log")
        stack.callback(stop, sandbox)
        console.print(f"Sandbox API: {api_url}")
        env = {
            "DISPATCH_REDIS_URL": redis_url,
            "DISPATCH_API_URL": api_url,
            "DISPATCH_API_KEY": DEMO_API_KEY,
            "DISPATCH_ACCOUNT_ID": DEMO_ACCOUNT,
            "DISPATCH_LOG_FORMAT": "json",
        }
        if not settings.callback_url:
            secret = new_secret()  # this run's own; never shown
            app = create_listener_app(secret, on_delivery=received.append)
            listener = stack.enter_context(ThreadServer(app, free_port()))
            env |= {
                "DISPATCH_CALLBACK_URL": f"{listener.url}/hooks/assessments",
                "DISPATCH_CALLBACK_SECRET": secret,
            }
            console.print(
                f"Callback receiver: {listener.url}/hooks/assessments (verifies every signature)"
            )
        worker = start_worker(env, name="demo", concurrency=8, log=logs / "worker.log")
        stack.callback(stop, worker)
        console.print(f"Worker: started (logs in {logs})")

        demo_settings = settings.model_copy(
            update={"redis_url": redis_url, "account_id": DEMO_ACCOUNT}
        )
        dispatcher = Dispatcher(demo_settings)
        report = dispatcher.enqueue_many(sample_lines(), account_id=DEMO_ACCOUNT)
        keys = [r.key for r in report.results if r.key]
        console.print(
            f"Enqueued {report.accepted} sample orders ({report.duplicate} already known)"
        )
        wanted = {"delivered", "dead"} if not settings.callback_url else FINAL
        try:
            records = _wait(dispatcher, keys, wanted, timeout_s=timeout_s, console=console)
        except KeyboardInterrupt:
            console.print("interrupted: stopping what the demo started")
            return 130
        _table(records, console)
        for event in received:
            console.print(f"[green]verified callback[/] {describe(event)}")
        done = all(r is not None and r.status in wanted for r in records)
        if not done:
            console.print(f"[red]not every order finished within {timeout_s:.0f}s; see {logs}[/]")
        return 0 if done else 1
    return 1  # pragma: no cover - the ExitStack never swallows


def _wait(
    dispatcher: Dispatcher, keys: list[str], wanted: set[str], *, timeout_s: float, console: Console
) -> list[Record | None]:
    records: list[Record | None] = []

    def done() -> bool:
        nonlocal records
        records = dispatcher.records(keys)
        return all(r is not None and r.status in wanted for r in records)

    # Out of time, the table shows where each order got to.
    with (
        console.status("waiting for the worker to place the orders..."),
        contextlib.suppress(TimeoutError),
    ):
        wait_until(done, timeout_s=timeout_s, interval_s=0.2, what="the orders")
    return records


def _table(records: list[Record | None], console: Console) -> None:
    table = Table(title=f"Assessment orders of account {DEMO_ACCOUNT}")
    for column in ("order id", "status", "test URL"):
        table.add_column(column, overflow="fold")
    for r in records:
        if r is not None:
            table.add_row(r.order_id, r.status, r.test_url or r.last_error or "")
    console.print(table)
