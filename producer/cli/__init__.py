"""`order-dispatch`: the command line (click + rich).

Human text on a terminal; `--json` prints JSON Lines on stdout. Exit codes (sysexits):
0 success, 65 some input was invalid (the valid part still went through), 69 Redis unreachable
or refusing writes, 78 configuration error, 2 usage error.

- `orders`: enqueue, status, results
- `dead`: the dead-letter commands
- `observe`: stats, health, metrics
- `local`: the commands that run pieces on this machine (sandbox, listen, demo, bench); they
  import `sandbox` only when run
- `common`: settings, exit codes, the Redis-error boundary, output helpers
"""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import click

__all__ = ["main"]

# Each command's module is imported only when that command runs (or `--help` lists them all):
# `order-dispatch --version` and a command's own start-up pay for nothing else.
COMMANDS = {
    "enqueue": "producer.cli.orders:enqueue",
    "status": "producer.cli.orders:status",
    "results": "producer.cli.orders:results",
    "dead": "producer.cli.dead:dead",
    "stats": "producer.cli.observe:stats",
    "health": "producer.cli.observe:health",
    "metrics": "producer.cli.observe:metrics",
    "sandbox": "producer.cli.local:sandbox",
    "listen": "producer.cli.local:listen",
    "demo": "producer.cli.local:demo",
    "bench": "producer.cli.local:bench",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, _, attr = target.partition(":")
        command: Any = getattr(importlib.import_module(module), attr)
        return command if isinstance(command, click.Command) else None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-dispatch")
def main() -> None:
    """Place assessment orders with StackOne reliably, and deliver their test URLs."""
    from producer.cli.common import load_settings

    with contextlib.suppress(SystemExit):  # a bad setting is reported by the command itself
        settings = load_settings(quiet=True)
        if settings.sentry_dsn is not None:
            from worker.obs.sentry import init_sentry

            init_sentry(settings, component="cli")
