"""Liveness by progress (SPEC §7): what a worker says of its progress, and how
`order-dispatch health` judges it.

A heartbeat says only that the keeper thread runs, and it runs whatever the Celery consumer and
the event loop do. So each worker also reports, once per keeper tick, when it last took a message
and last finished an attempt, what it holds, and whether its event loop answered the keeper's
last no-op (`Progress`). A worker is stalled when work is waiting (messages in the queue, or
messages, orders or callbacks it holds) and it has done neither for `stall_s`, or when its event
loop has not answered for `stall_s`: a wedged process fails the probe and is restarted, and an
idle one with nothing to do passes.

The times in a report are the worker's own clock, compared only with each other; the reader adds
the heartbeat's age, so a reader whose clock is off judges no worse than the heartbeat itself.
Pure: `worker.obs.snapshot.read_health` reads the reports.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Progress:
    """One worker's report of its progress (times in ms of its own clock)."""

    at_ms: int  # when it wrote this report
    started_ms: int  # when its runtime started: a new worker is not stalled before stall_s
    taken_ms: int | None  # the last message its pool took (or orders it claimed)
    finished_ms: int | None  # the last attempt (at an order or a callback) that ended
    messages: int  # messages its pool threads hold (waiting for room, or being attempted)
    orders: int  # order leases it holds
    callbacks: int  # callback leases it holds
    loop_answers: bool | None  # None before its event loop starts
    loop_late_s: float  # how long the keeper's last no-op has waited for the loop
    renewing: bool  # False while it gives up its order leases (its loop does not answer)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | None) -> Progress | None:
        """The report, or None when there is none (a worker of an older release) or it cannot
        be read: such a worker is judged by its heartbeat alone."""
        if not raw:
            return None
        try:
            return cls(**json.loads(raw))
        except (TypeError, ValueError):
            return None

    @property
    def idle_s(self) -> float:
        """Seconds from its last progress (or its start) to this report."""
        last = max(self.started_ms, self.taken_ms or 0, self.finished_ms or 0)
        return max(0.0, (self.at_ms - last) / 1000)

    @property
    def holds_work(self) -> bool:
        return bool(self.messages or self.orders or self.callbacks)


def stall_reason(
    progress: Progress, *, beat_age_s: float, queue_depth: int, stall_s: float
) -> str | None:
    """Pure: why a worker with a fresh heartbeat is stalled, or None when it is not."""
    if progress.loop_answers is False:
        return f"its event loop has not answered for {progress.loop_late_s:.0f} s"
    idle_s = progress.idle_s + beat_age_s
    if (queue_depth > 0 or progress.holds_work) and idle_s >= stall_s:
        return (
            f"no message taken and no attempt finished for {idle_s:.0f} s while work waits "
            f"({queue_depth} queue messages; it holds {progress.messages} messages, "
            f"{progress.orders} orders, {progress.callbacks} callbacks)"
        )
    return None
