"""Time as order-dispatch writes it: ISO-8601 UTC with milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(ts: float) -> str:
    """Unix seconds as ISO-8601 UTC with milliseconds, e.g. `2026-11-28T13:38:30.123Z`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
