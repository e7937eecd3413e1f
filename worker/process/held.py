"""What one worker process holds, shared by its threads for the keeper to renew: the leases
of the orders and callbacks it claimed (`Held`), and the order keys of the messages its pool
threads hold while they wait for room (`Reserved`)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.process.progress import Marks


class Held:
    """The (key, token) pairs of the leases this process holds, shared by its threads. Taking
    leases, and letting one go once its attempt is over, are progress (`marks`)."""

    def __init__(self, marks: Marks | None = None) -> None:
        self._items: dict[str, str] = {}
        self._lock = threading.Lock()
        self._marks = marks

    def add(self, pairs: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self._items.update(pairs)
        if self._marks is not None:
            self._marks.took()

    def discard(self, key: str, token: str) -> None:
        with self._lock:
            if self._items.get(key) != token:
                return
            del self._items[key]
        if self._marks is not None:
            self._marks.finished_one()

    def pairs(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._items.items())


class Reserved:
    """The order keys of the messages this process's pool threads hold, for the keeper to
    renew their notes (`Ledger.reserve`)."""

    def __init__(self) -> None:
        self._messages: dict[int, Sequence[str]] = {}
        self._next = 0
        self._lock = threading.Lock()

    def add(self, keys: Sequence[str]) -> int:
        with self._lock:
            self._next += 1
            self._messages[self._next] = keys
            return self._next

    def discard(self, token: int) -> None:
        with self._lock:
            self._messages.pop(token, None)

    def keys(self) -> list[str]:
        with self._lock:
            return [key for keys in self._messages.values() for key in keys]
