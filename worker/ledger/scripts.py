"""The ledger's Lua scripts: the one registry, the one loader, and `Op`, a step as data.

Every script in `lua/` is listed in `SCRIPTS` with the shared Lua it needs put before it:
`final` (the table `FINAL` of the final statuses, written from `keys.FINAL_STATUSES`, so the
list exists once), `clock` (lua/_clock.lua: Redis's `TIME`, the one clock every lease, renewal,
schedule and gate is read on, and ISO stamps of it), `replies` (lua/_replies.lua: a reply kept
under its request id, for the scripts a resend could not otherwise answer the same),
`tickets` (`push_tickets`, lua/_tickets.lua) and `moves` (the pump's helpers, lua/_moves.lua).
Each script names in KEYS every key it touches, records included, as Redis's scripting
contract asks: its callers pass them.

Every script is safe to send twice, because redis-py's `Retry` does send a script again when
its reply was lost after it ran: a claim recognises its token, an attempt's report its token,
and the others their request id.

A step of the ledger is an `Op`: the scripts it runs (`Call`s, sent in order and in one round
trip) and how to read their replies. The sync `Ledger` (steps.py) and the asyncio
`AsyncLedger` (aio.py) run the same ops, built by `LedgerOps` (ops.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Generic, TypeVar

from worker.ledger.keys import FINAL_STATUSES

T = TypeVar("T")

SCRIPTS: dict[str, tuple[str, ...]] = {
    "enqueue": ("clock", "replies", "tickets"),
    "claim": ("clock", "final"),
    "begin": ("clock",),
    "gates": ("clock",),
    "report_flow": ("clock",),
    "finish": ("clock", "final"),
    "renew": ("clock",),
    "reserve": ("clock",),
    "heartbeat": ("clock",),
    "unreserve": (),
    "pump_scan": ("clock",),
    "pump_orders": ("clock", "replies", "tickets", "moves"),
    "pump_callbacks": ("clock", "replies", "tickets", "moves"),
    "trim": ("clock",),
    "cbclaim": ("clock",),
    "cbfinish": ("clock",),
    "replay": ("clock", "replies", "tickets"),
    "purge": ("replies",),
}


def _final_statuses() -> str:
    entries = ", ".join(f"[{json.dumps(status)}] = true" for status in FINAL_STATUSES)
    return f"local FINAL = {{{entries}}}\n"


@functools.cache
def source(name: str) -> str:
    """The Lua that Redis runs for script `name`: its shared parts first, then its file."""
    lua = resources.files("worker.ledger") / "lua"
    shared = {
        "final": _final_statuses,
        "clock": (lua / "_clock.lua").read_text,
        "replies": (lua / "_replies.lua").read_text,
        "tickets": (lua / "_tickets.lua").read_text,
        "moves": (lua / "_moves.lua").read_text,
    }
    return "".join(shared[part]() for part in SCRIPTS[name]) + (lua / f"{name}.lua").read_text()


def register_scripts(client: Any) -> dict[str, Any]:
    """Every script on `client`, sync or asyncio (redis-py registers either), by name."""
    return {name: client.register_script(source(name)) for name in SCRIPTS}


@dataclass(frozen=True, slots=True)
class Call:
    """One run of a script: its name in `SCRIPTS`, the keys it touches and its arguments."""

    script: str
    keys: list[str]
    args: list[Any]


@dataclass(frozen=True, slots=True)
class Op(Generic[T]):
    """One ledger step as data: the scripts it runs, in order and in one round trip (none: the
    step has nothing to do), and how to read their replies."""

    calls: tuple[Call, ...]
    parse: Callable[[list[Any]], T]

    @classmethod
    def one(cls, script: str, keys: list[str], args: list[Any], parse: Callable[[Any], T]) -> Op[T]:
        return cls((Call(script, keys, args),), lambda replies: parse(replies[0]))

    @classmethod
    def nothing(cls, value: T) -> Op[T]:
        return cls((), lambda _: value)
