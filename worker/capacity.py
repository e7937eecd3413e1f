"""How much one worker process takes on at once (`Capacity`), and the signal that it takes
nothing more because it is shutting down (`ShuttingDown`)."""

from __future__ import annotations

import asyncio


class ShuttingDown(Exception):
    """The worker is shutting down: the message's orders were not claimed (back to the queue)."""


class Capacity:
    """How much one worker process takes on: `in_flight` POSTs at once, and at most twice as
    many orders claimed (leased) and not yet done, so that a process holds little more than it
    can run (the rest stay queued for any worker) and the keeper renews few leases."""

    def __init__(self, in_flight: int, *, batch_max: int = 1) -> None:
        self.in_flight = asyncio.Semaphore(in_flight)
        self.size = max(2 * in_flight, batch_max)
        self._held = asyncio.Semaphore(self.size)
        self._taking = asyncio.Lock()  # one message at a time takes its share: no deadlock
        self.closed = False

    async def take(self, n: int) -> int:
        """Wait until `n` more orders may be held (at most `size`); return how many units, or 0
        once closed (the worker is shutting down: take nothing more)."""
        units = min(n, self.size)
        async with self._taking:
            for _ in range(units):
                if self.closed:
                    return 0
                await self._held.acquire()
        return 0 if self.closed else units

    def close(self) -> None:
        """Take nothing more: every message still waiting for room gets 0 at once."""
        self.closed = True
        self.give_back(self.size)  # wakes the one waiting inside `take`; the rest see `closed`

    def give_back(self, units: int) -> None:
        for _ in range(units):
            self._held.release()
