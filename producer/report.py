"""What an enqueue reports: one result per order, and how an enqueue that Redis stopped
part-way says what went through (`EnqueueStopped`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from worker.errors import FieldError, ServiceUnavailable

Outcome = Literal["accepted", "duplicate", "invalid"]


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    line: int
    key: str | None
    outcome: Outcome
    status: str | None = None
    errors: list[FieldError] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line": self.line,
            "key": self.key,
            "outcome": self.outcome,
            "status": self.status,
        }
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        return out


@dataclass(slots=True)
class EnqueueReport:
    results: list[EnqueueResult] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def accepted(self) -> int:
        return self.count("accepted")

    @property
    def duplicate(self) -> int:
        return self.count("duplicate")

    @property
    def invalid(self) -> int:
        return self.count("invalid")


class EnqueueStopped(ServiceUnavailable):
    """Redis stopped taking orders part-way through an enqueue.

    `report` holds the result of every order before line `next_line` (each chunk is written
    whole or not at all); the orders from `next_line` on were not enqueued, except after a lost
    connection (`written_unknown`), when the chunk in flight may have been."""

    def __init__(
        self, message: str, *, report: EnqueueReport, next_line: int, written_unknown: bool
    ) -> None:
        super().__init__(message)
        self.report = report
        self.next_line = next_line
        self.written_unknown = written_unknown


def line_of(result: EnqueueResult) -> int:
    return result.line


def stopped(
    exc: redis.RedisError, where: str, report: EnqueueReport, chunk: tuple[int, int]
) -> EnqueueStopped:
    """The error for an enqueue whose chunk of lines `chunk` (first, last) Redis did not take,
    reporting the orders before it."""
    first, last = chunk
    known = EnqueueReport(sorted((r for r in report.results if r.line < first), key=line_of))
    # A refused script wrote nothing (Redis refuses a script at its first write, and lets one
    # that has written finish); a lost connection may have lost only the reply.
    unknown = not isinstance(exc, redis.ResponseError)
    if isinstance(exc, redis.exceptions.OutOfMemoryError):
        cause = "refused writes (out of memory: its used memory is above maxmemory)"
    else:
        cause = f"failed: {exc}"
    fate = (
        f"lines {first} to {last} may or may not be enqueued and nothing after them was "
        "(enqueue them again: orders already known report duplicate)"
        if unknown
        else f"nothing from line {first} on was enqueued"
    )
    return EnqueueStopped(
        f"{where} {cause}; {known.accepted} orders accepted before line {first}; {fate}",
        report=known,
        next_line=first,
        written_unknown=unknown,
    )
