"""`order-dispatch dead list|show|replay|purge`: the dead letters, for a person or a script.

Bulk actions (no keys given, or `--all`) act on every dead letter that matches the filters and
ask first; `--yes` answers for scripts, `--dry-run` only shows what would be done.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
from rich.table import Table

from producer.cli.common import (
    EX_FAILURE,
    EX_OK,
    EX_USAGE,
    connected,
    emit_json,
    err,
    load_settings,
    out,
    parse_since,
    service_errors,
)
from worker.ledger.dead import DeadFilter, DeadLetters

PAST = {"replay": "replayed", "purge": "purged"}


def _filters(f: Callable[..., object]) -> Callable[..., object]:
    f = click.option("--stage", type=click.Choice(["submit", "callback"]), help="Only this stage.")(
        f
    )
    f = click.option("--reason", help="Only this reason (rejected, exhausted, ambiguous, ...).")(f)
    f = click.option("--since", help="Only those dead since: 30m, 2h, 1d or an ISO time.")(f)
    return f


def _where(stage: str | None, reason: str | None, since: str | None) -> DeadFilter:
    try:
        since_s = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    return DeadFilter(stage=stage, reason=reason, since_s=since_s)


def _letters() -> DeadLetters:
    return DeadLetters(connected(load_settings()).ledger)


@click.group()
def dead() -> None:
    """Orders that could not be placed or delivered: list, show, replay, purge."""


@dead.command("list")
@_filters
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def list_(stage: str | None, reason: str | None, since: str | None, as_json: bool) -> None:
    """List dead letters (submit stage first), oldest first."""
    where = _where(stage, reason, since)
    with service_errors():
        letters = _letters().select(where)
    if as_json:
        for letter in letters:
            emit_json(letter.as_dict())
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("key", "stage", "reason", "http", "attempts", "died at", "last error"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(
            d.key,
            d.stage,
            d.reason or "",
            str(d.http_status or ""),
            str(d.attempts),
            d.died_at or "",
            (d.last_error or "")[:80],
        )
    out.print(table)


@dead.command()
@click.argument("keys", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
def show(keys: tuple[str, ...], as_json: bool) -> None:
    """Show orders' records with their attempt history."""
    with service_errors():
        letters = _letters()
        found = [(k, letters.show(k)) for k in keys]
    missing = 0
    for key, shown in found:
        if shown is None:
            missing += 1
            err.print(f"{key}: [red]unknown order[/]")
            continue
        r, history = shown
        if as_json:
            emit_json(
                {
                    **r.model_dump(mode="json"),
                    "stage": r.dead_stage,
                    "reason": r.dead_reason,
                    "history": history,
                }
            )
            continue
        out.print(
            f"[bold]{r.key}[/] {r.status} callback={r.callback} stage={r.dead_stage} "
            f"reason={r.dead_reason} http_status={r.http_status} attempts={r.attempts} "
            f"ambiguous={r.ambiguous_attempts}"
        )
        out.print(f"  last_error: {r.last_error}")
        if r.callback in ("failed", "pending"):
            out.print(f"  callback: attempts={r.callback_attempts} error={r.callback_error}")
        for h in history:
            out.print(
                f"  attempt {h.get('attempt')}: {h.get('outcome')} "
                f"http={h.get('http_status')} {h.get('duration_ms')} ms"
            )
    sys.exit(EX_FAILURE if missing else EX_OK)


def _bulk(
    action: str,
    keys: tuple[str, ...],
    every: bool,
    where: DeadFilter,
    dry_run: bool,
    yes: bool,
    run: Callable[[DeadLetters, list[str]], list[str]],
    as_json: bool,
) -> None:
    if keys and every:
        err.print("give keys or --all, not both")
        sys.exit(EX_USAGE)
    if not keys and not every:
        err.print(f"name the dead letters to {action}, or use --all (with filters)")
        sys.exit(EX_USAGE)
    with service_errors():
        letters = _letters()
        chosen = list(keys) or list(dict.fromkeys(d.key for d in letters.select(where)))
        if dry_run:
            for key in chosen:
                emit_json(
                    {"key": key, "action": action, "dry_run": True}
                ) if as_json else out.print(f"would {action} {key}")
            return
        if (
            every
            and not yes
            and not click.confirm(f"{action} {len(chosen)} dead letter(s)?", err=True)
        ):
            sys.exit(EX_FAILURE)
        done = set(run(letters, chosen))
    for key in chosen:
        if as_json:
            emit_json({"key": key, "action": action, "done": key in done})
        else:
            out.print(f"{PAST[action]} {key}" if key in done else f"{key}: not dead, left alone")
    sys.exit(EX_OK if done == set(chosen) else EX_FAILURE)


def _bulk_command(action: str, doc: str) -> None:
    """`dead replay` and `dead purge`: the same arguments, filters and guards."""

    def command(
        keys: tuple[str, ...],
        every: bool,
        stage: str | None,
        reason: str | None,
        since: str | None,
        dry_run: bool,
        yes: bool,
        as_json: bool,
    ) -> None:
        def run(letters: DeadLetters, chosen: list[str]) -> list[str]:
            if action == "replay":
                return letters.replay(chosen, stage=stage)
            return letters.purge(chosen)

        _bulk(action, keys, every, _where(stage, reason, since), dry_run, yes, run, as_json)

    command.__doc__ = doc
    Decorator = Callable[[Callable[..., object]], Callable[..., object]]
    options: list[Decorator] = [
        click.argument("keys", nargs=-1),
        click.option(
            "--all", "every", is_flag=True, help="Every dead letter matching the filters."
        ),
        _filters,
        click.option("--dry-run", is_flag=True, help=f"Show what would be {PAST[action]}."),
        click.option("--yes", is_flag=True, help=f"Do not ask before a bulk {action}."),
        click.option("--json", "as_json", is_flag=True),
    ]
    decorated: Callable[..., object] = command
    for option in reversed(options):
        decorated = option(decorated)
    dead.command(action)(decorated)


_bulk_command(
    "replay", "Place dead orders again with a fresh attempt budget; send dead callbacks again."
)
_bulk_command("purge", "Forget dead orders for good (their keys may then be enqueued again).")
