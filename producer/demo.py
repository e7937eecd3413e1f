"""`order-dispatch demo`: the whole pipeline on this machine, one command.

Starts a private redis-server on a free port (or uses DISPATCH_REDIS_URL when it is set, never
someone's default Redis), the sandbox and one worker; enqueues the bundled sample orders; waits;
prints their test URLs; stops everything it started, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from producer.api import Dispatcher, Line
from producer.local import LocalError, RedisServer, free_port, start_sandbox, start_worker, stop
from worker.records import Record
from worker.settings import Settings

DEMO_API_KEY = "demo-api-key"
DEMO_ACCOUNT = "demo-account"
FINAL = {"completed", "delivered", "dead"}


def sample_lines() -> list[Line]:
    text = (resources.files("producer") / "samples" / "orders.jsonl").read_text()
    return [Line(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def run_demo(settings: Settings, *, timeout_s: float, console: Console) -> int:
    logs = Path(tempfile.mkdtemp(prefix="od-demo-"))
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
        try:
            records = _wait(dispatcher, keys, timeout_s=timeout_s, console=console)
        except KeyboardInterrupt:
            console.print("interrupted: stopping what the demo started")
            return 130
        _table(records, console)
        done = all(r is not None and r.status in FINAL for r in records)
        if not done:
            console.print(f"[red]not every order finished within {timeout_s:.0f}s; see {logs}[/]")
        return 0 if done else 1
    return 1  # pragma: no cover - the ExitStack never swallows


def _wait(
    dispatcher: Dispatcher, keys: list[str], *, timeout_s: float, console: Console
) -> list[Record | None]:
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the worker to place the orders..."):
        while True:
            records = dispatcher.records(keys)
            if all(r is not None and r.status in FINAL for r in records):
                return records
            if time.monotonic() > deadline:
                return records
            time.sleep(0.2)


def _table(records: list[Record | None], console: Console) -> None:
    table = Table(title="Assessment orders")
    for column in ("order key", "status", "attempts", "test URL"):
        table.add_column(column, overflow="fold")
    for r in records:
        if r is not None:
            table.add_row(r.key, r.status, str(r.attempts), r.test_url or r.last_error or "")
    console.print(table)
