"""The order commands: `enqueue`, `status` and `results`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from producer.api import Dispatcher, EnqueueReport, EnqueueResult, EnqueueStopped
from producer.cli.common import (
    EX_DATAERR,
    EX_FAILURE,
    EX_OK,
    EX_UNAVAILABLE,
    connected,
    emit_json,
    err,
    load_settings,
    out,
    service_errors,
)
from producer.reading import read_orders
from worker.errors import InvalidOrder
from worker.ledger.records import Event, Record


@click.command()
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
    """Validate and enqueue orders from FILE (JSON Lines or a JSON array; - for stdin).

    Exit 69 if Redis stops taking orders part-way (out of memory, or gone): the orders before
    the failed chunk are printed as usual, and the message says from which line on nothing
    was enqueued."""
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
        except EnqueueStopped as exc:
            _print_report(exc.report, as_json=as_json, dry_run=False)
            err.print(f"[red]service unavailable[/]: {exc}")
            sys.exit(EX_UNAVAILABLE)
    _print_report(report, as_json=as_json, dry_run=dry_run)
    sys.exit(EX_DATAERR if report.invalid else EX_OK)


def _print_report(report: EnqueueReport, *, as_json: bool, dry_run: bool) -> None:
    for result in report.results:
        if as_json:
            emit_json(result.as_dict())
        else:
            _print_result(result)
    sys.stdout.flush()
    if not as_json:
        verb = "would be accepted" if dry_run else "accepted"
        err.print(
            f"{report.accepted} {verb}, {report.duplicate} duplicate, {report.invalid} invalid"
        )


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


@click.command()
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


@click.command()
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
