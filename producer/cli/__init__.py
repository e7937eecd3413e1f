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

import click

from producer.cli.common import load_settings
from producer.cli.dead import dead
from producer.cli.local import bench, demo, listen, sandbox
from producer.cli.observe import health, metrics, stats
from producer.cli.orders import enqueue, results, status

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="order-dispatch")
def main() -> None:
    """Place assessment orders with StackOne reliably, and deliver their test URLs."""
    with contextlib.suppress(SystemExit):  # a bad setting is reported by the command itself
        settings = load_settings(quiet=True)
        if settings.sentry_dsn is not None:
            from worker.obs.sentry import init_sentry

            init_sentry(settings, component="cli")


_COMMANDS = (enqueue, status, results, dead, stats, health, metrics, sandbox, listen, demo, bench)
for _command in _COMMANDS:
    main.add_command(_command)
