"""`order-dispatch`: the command line (click + rich).

Human text on a terminal; `--json` prints JSON Lines on stdout. Exit codes (sysexits):
0 success, 65 some input was invalid (the valid part still went through), 69 Redis unreachable,
78 configuration error, 2 usage error.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from producer.api import Dispatcher, EnqueueResult
from producer.console import (
    EX_CONFIG,
    EX_DATAERR,
    EX_FAILURE,
    EX_OK,
    connected,
    emit_json,
    err,
    load_settings,
    out,
    service_errors,
)
from producer.dead_cli import dead
from producer.observe_cli import health, metrics, stats
from producer.reading import read_orders
from worker.errors import InvalidOrder
from worker.records import Event, Record
from worker.sentry import init_sentry


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-dispatch")
def main() -> None:
    """Place assessment orders with StackOne reliably, and deliver their test URLs."""
    with contextlib.suppress(SystemExit):  # a bad setting is reported by the command itself
        init_sentry(load_settings(quiet=True), component="cli")


for _command in (dead, stats, health, metrics):
    main.add_command(_command)


@main.command()
@click.argument("file", type=click.File("r"), default="-")
@click.option(
    "--account", "account_id", help="Account (x-account-id); default DISPATCH_ACCOUNT_ID."
)
@click.option("--callback-url", help="Per-order callback URL (its host must be allowed).")
@click.option("--dry-run", is_flag=True, help="Validate only; enqueue nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines on stdout.")
def enqueue(
    file: IO[str], account_id: str | None, callback_url: str | None, dry_run: bool, as_json: bool
) -> None:
    """Validate and enqueue orders from FILE (JSON Lines or a JSON array; - for stdin)."""
    settings = load_settings()
    with service_errors():
        dispatcher = Dispatcher(settings) if dry_run else connected(settings)
        try:
            with _progress(enabled=sys.stdout.isatty() and not as_json) as tick:
                report = dispatcher.enqueue_many(
                    read_orders(file),
                    account_id=account_id,
                    callback_url=callback_url,
                    dry_run=dry_run,
                    on_progress=tick,
                )
        except InvalidOrder as exc:  # the callback URL: no order can go through
            raise click.BadParameter(str(exc), param_hint="--callback-url") from None
    for result in report.results:
        if as_json:
            emit_json(result.as_dict())
        else:
            _print_result(result)
    if not as_json:
        verb = "would be accepted" if dry_run else "accepted"
        err.print(
            f"{report.accepted} {verb}, {report.duplicate} duplicate, {report.invalid} invalid"
        )
    sys.exit(EX_DATAERR if report.invalid else EX_OK)


def _print_result(r: EnqueueResult) -> None:
    colour = {"accepted": "green", "duplicate": "yellow", "invalid": "red"}[r.outcome]
    head = f"line {r.line:>5}  [{colour}]{r.outcome:<9}[/]"
    if r.outcome == "invalid":
        for e in r.errors:
            out.print(f"{head}  {e.loc}: {e.msg}", markup=True)
    else:
        out.print(f"{head}  {r.key}  ({r.status})" if r.status else f"{head}  {r.key}")


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int], None]]:
    if not enabled:
        yield lambda _n: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("enqueueing", total=None)
        yield lambda n: progress.update(task, description=f"enqueued {n} orders")


@main.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("--account", "account_id", help="Account for bare order ids.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per order.")
def status(keys: tuple[str, ...], account_id: str | None, as_json: bool) -> None:
    """Show the record of each order (KEY is account:order-id, or an order id with --account)."""
    settings = load_settings()
    with service_errors():
        dispatcher = connected(settings)
        resolved = [dispatcher.resolve(k, account_id) for k in keys]
        records = dispatcher.records(resolved)
    missing = 0
    for key, record in zip(resolved, records, strict=True):
        if record is None:
            missing += 1
            if as_json:
                emit_json({"key": key, "error": "unknown order"})
            else:
                err.print(f"{key}: [red]unknown order[/]")
        elif as_json:
            emit_json(record.model_dump(mode="json"))
        else:
            _print_record(record)
    sys.exit(EX_FAILURE if missing else EX_OK)


def _print_record(r: Record) -> None:
    out.print(
        f"[bold]{r.key}[/]  {r.status}  attempts={r.attempts} ambiguous={r.ambiguous_attempts} "
        f"callback={r.callback}"
    )
    if r.test_url:
        out.print(f"  test_url: {r.test_url}")
    if r.last_error:
        out.print(f"  last_error: {r.last_error}")
    if r.status == "dead":
        out.print(
            f"  dead: stage={r.dead_stage} reason={r.dead_reason} http_status={r.http_status}"
        )


@main.command()
@click.option("--follow", "-f", is_flag=True, help="Keep printing events as they come.")
@click.option(
    "--since",
    default=None,
    help="Stream id to start after (default: the start; with --follow: now).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event.")
def results(follow: bool, since: str | None, as_json: bool) -> None:
    """Print the results stream (order.completed and order.failed events)."""
    settings = load_settings()
    with service_errors():
        dispatcher = connected(settings)
        if not follow:
            for event in dispatcher.events(since=since or "0", count=100_000):
                _print_event(event, as_json)
            return
        try:
            for event in dispatcher.follow(since=since or "$"):
                _print_event(event, as_json)
                sys.stdout.flush()
        except KeyboardInterrupt:
            return


def _print_event(event: Event, as_json: bool) -> None:
    if as_json:
        emit_json(event.as_dict())
        return
    d = event.data
    if event.type == "order.completed":
        url = d.get("test_url") or "(no test_url)"
        out.print(f"{event.id}  [green]{event.type}[/]  {d.get('key')}  {url}")
    else:
        out.print(
            f"{event.id}  [red]{event.type}[/]  {d.get('key')}  {d.get('stage')}/{d.get('reason')} "
            f"{d.get('http_status') or ''}"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--api-key", default=None, help="Accept only this API key (default: any non-empty).")
@click.option("--latency-ms", default=0.0, type=float, help="Added to every POST.")
@click.option(
    "--fail-status",
    default=None,
    type=int,
    help="Answer this status to the first --fail-times attempts of each order.",
)
@click.option("--fail-times", default=0, type=int)
@click.option("--retry-after", default=None, help="Retry-After sent with --fail-status.")
@click.option(
    "--drop-times",
    default=0,
    type=int,
    help="Create, then drop the connection, for the first N attempts of each order.",
)
@click.option("--reject-status", default=None, type=int, help="Answer this status to every POST.")
@click.option("--no-idempotency", is_flag=True, help="Create again on a repeated Idempotency-Key.")
def sandbox(
    host: str,
    port: int,
    api_key: str | None,
    latency_ms: float,
    fail_status: int | None,
    fail_times: int,
    retry_after: str | None,
    drop_times: int,
    reject_status: int | None,
    no_idempotency: bool,
) -> None:
    """Serve a StackOne-compatible sandbox of the orders endpoint, with faults to inject."""
    from sandbox.app import Faults, serve

    faults = Faults(
        latency_ms=latency_ms,
        fail_status=fail_status,
        fail_times=fail_times,
        retry_after=retry_after,
        drop_times=drop_times,
        reject_status=reject_status,
        honor_idempotency=not no_idempotency,
    )
    err.print(
        f"sandbox listening on http://{host}:{port} (faults: PUT /_sandbox/faults, "
        f"counts: GET /_sandbox/stats)"
    )
    serve(host, port, api_key, faults=faults)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
def listen(host: str, port: int) -> None:
    """Receive callbacks here: verify each signature with DISPATCH_CALLBACK_SECRET and print it.

    Point workers at it with DISPATCH_CALLBACK_URL=http://HOST:PORT/ and the same secret.
    """
    from producer.listen import serve_listener

    settings = load_settings()
    secret = settings.callback_secret.get_secret_value()
    if not secret:
        err.print(
            "[red]configuration error[/]: set DISPATCH_CALLBACK_SECRET (whsec_...) to the "
            "secret the workers sign with"
        )
        sys.exit(EX_CONFIG)
    serve_listener(host, port, secret, out)


@main.command()
@click.option("--orders", default=4000, show_default=True, help="Orders per end-to-end run.")
@click.option("--concurrency", default=64, show_default=True, help="Requests in flight.")
@click.option(
    "--high-concurrency",
    default=256,
    show_default=True,
    help="In flight for the 100 ms run that checks throughput grows.",
)
@click.option(
    "--latency-ms",
    "latencies",
    multiple=True,
    type=float,
    default=[0.0, 100.0],
    show_default=True,
    help="API latencies to measure at (repeatable).",
)
@click.option("--pools", is_flag=True, help="Also compare worker pools at 100 ms and 1 s.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
def bench(
    orders: int,
    concurrency: int,
    high_concurrency: int,
    latencies: tuple[float, ...],
    pools: bool,
    as_json: bool,
) -> None:
    """Measure throughput as ratios against limits measured in the same run."""
    import os
    import tempfile
    from pathlib import Path

    from producer.bench import run_bench
    from producer.bench_report import print_report

    logs = Path(tempfile.mkdtemp(prefix="od-bench-"))
    result = run_bench(
        orders=orders,
        concurrency=concurrency,
        high_concurrency=high_concurrency,
        latencies_ms=list(latencies),
        redis_url=os.environ.get("DISPATCH_REDIS_URL"),
        logs=logs,
        say=lambda text: err.print(text),
        pools=pools,
    )
    if as_json:
        emit_json(result)
    else:
        print_report(result, out)


@main.command()
@click.option("--timeout", "timeout_s", default=90.0, show_default=True, type=float)
def demo(timeout_s: float) -> None:
    """Run the whole pipeline here: Redis, the sandbox, a worker, the sample orders."""
    from producer.demo import run_demo

    sys.exit(run_demo(load_settings(), timeout_s=timeout_s, console=out))
