"""What every command shares: the consoles, exit codes, settings loading, error translation."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from producer.api import Dispatcher, redis_unavailable
from worker.errors import ConfigurationError, ServiceUnavailable
from worker.settings import Settings, describe_errors

EX_OK, EX_FAILURE, EX_USAGE, EX_DATAERR, EX_UNAVAILABLE, EX_CONFIG = 0, 1, 2, 65, 69, 78

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def load_settings(*, quiet: bool = False) -> Settings:
    """Settings from the environment, or exit 78 naming what is wrong (never the values)."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in [] if quiet else describe_errors(exc):
            err.print(f"[red]configuration error[/]: {line}", markup=True, highlight=False)
        sys.exit(EX_CONFIG)


@contextmanager
def service_errors() -> Iterator[None]:
    """Translate our errors into messages and exit codes, at this one boundary.

    Commands that read Redis outside the `Dispatcher` (stats, dead letters) meet its errors raw:
    `redis_unavailable` turns them into the same `ServiceUnavailable`.
    """
    try:
        with redis_unavailable():
            yield
    except ServiceUnavailable as exc:
        err.print(f"[red]service unavailable[/]: {exc}")
        sys.exit(EX_UNAVAILABLE)
    except ConfigurationError as exc:
        err.print(f"[red]configuration error[/]: {exc}")
        sys.exit(EX_CONFIG)


def connected(settings: Settings) -> Dispatcher:
    """A dispatcher whose Redis has answered a ping (else `ServiceUnavailable`)."""
    dispatcher = Dispatcher(settings)
    dispatcher.ping()
    return dispatcher


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(value: str, *, now_s: float | None = None) -> float:
    """`30m`, `2h`, `1d` ago, or an ISO-8601 time, as unix seconds."""
    match = _DURATION.match(value.strip())
    if match:
        now_s = time.time() if now_s is None else now_s
        return now_s - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (30m, 2h, 1d) nor an ISO time") from None
