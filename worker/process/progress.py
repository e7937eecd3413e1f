"""How a worker process knows it makes progress, for its keeper thread (liveness by progress).

A heartbeat says only that the keeper runs, and it runs whatever the Celery consumer and the
event loop do. So the process marks its progress (`Marks`: a message taken, orders or callbacks
claimed, an attempt finished), and the keeper asks the event loop whether it answers
(`LoopProbe`: it posts a no-op and sees when it runs). Each tick the keeper writes what
`Liveness.report` says next to the heartbeat, for `order-dispatch health` to judge
(`worker.obs.liveness`).

A loop that has not run the no-op for DISPATCH_HEALTH_STALL_S is wedged (a blocking call, a
coroutine that never yields), and renewing the leases and notes of the orders it holds would
keep them from every other worker for as long as it stays wedged: `Liveness.tick` then says
to stop renewing them, so they lapse and the pump hands them to another worker. Callback
leases are still renewed: callbacks are sent from the pool threads, not the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from worker.logs import step
from worker.obs.liveness import Progress

Clock = Callable[[], float]


class Marks:
    """When this process last took a message and last finished an attempt (monotonic seconds),
    and how many messages its pool threads hold; set from any thread, read by the keeper."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.taken: float | None = None
        self.finished: float | None = None
        self.messages = 0
        self._lock = threading.Lock()

    def took(self) -> None:
        self.taken = self.clock()

    def finished_one(self) -> None:
        self.finished = self.clock()

    @contextmanager
    def holding_message(self) -> Iterator[None]:
        with self._lock:
            self.messages += 1
        self.took()
        try:
            yield
        finally:
            with self._lock:
                self.messages -= 1


class LoopProbe:
    """Whether an event loop answers: a no-op posted to it, and how long it has waited."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._sent: float | None = None  # when the no-op still waiting was posted
        self._lock = threading.Lock()

    def ask(self, loop: asyncio.AbstractEventLoop) -> None:
        """Post a no-op, unless the last one has not run yet."""
        with self._lock:
            if self._sent is not None:
                return
            self._sent = self.clock()
        try:
            loop.call_soon_threadsafe(self._answered)
        except RuntimeError:  # the loop is closed: the process is stopping
            with self._lock:
                self._sent = None

    def _answered(self) -> None:
        with self._lock:
            self._sent = None

    def late_s(self) -> float:
        """How long the posted no-op has waited (0 when none waits)."""
        with self._lock:
            return 0.0 if self._sent is None else self.clock() - self._sent


class Liveness:
    """One process's marks and loop probe, and whether its keeper renews the order leases."""

    def __init__(self, stall_s: float, clock: Clock = time.monotonic) -> None:
        self.stall_s = stall_s
        self.marks = Marks(clock)
        self.probe = LoopProbe(clock)
        self.renewing = True

    def tick(self, loop: asyncio.AbstractEventLoop | None, *, orders: int) -> bool:
        """Ask the loop (None before it starts) and say whether to renew the leases and notes
        of the orders this process holds (`orders` of them): not while the loop is silent."""
        if loop is not None:
            self.probe.ask(loop)
        late_s = self.probe.late_s()
        renewing = late_s < self.stall_s
        if renewing != self.renewing:
            self.renewing = renewing
            if renewing:
                step("worker.loop_answers", outcome="renewing", late_s=round(late_s, 1))
            else:
                step(
                    "worker.loop_stalled",
                    level=logging.ERROR,
                    outcome="leases_given_up",
                    late_s=round(late_s, 1),
                    orders=orders,
                )
        return renewing

    def report(self, *, loop_started: bool, orders: int, callbacks: int) -> str:
        """The progress report (JSON) the keeper writes, its times on the wall clock in ms."""
        marks = self.marks
        now_s, now_mono = time.time(), marks.clock()

        def wall_ms(mono: float | None) -> int | None:
            return None if mono is None else int((now_s - (now_mono - mono)) * 1000)

        late_s = self.probe.late_s()
        return Progress(
            at_ms=int(now_s * 1000),
            started_ms=wall_ms(marks.started) or 0,
            taken_ms=wall_ms(marks.taken),
            finished_ms=wall_ms(marks.finished),
            messages=marks.messages,
            orders=orders,
            callbacks=callbacks,
            loop_answers=(late_s < self.stall_s) if loop_started else None,
            loop_late_s=round(late_s, 3),
            renewing=self.renewing,
        ).to_json()
