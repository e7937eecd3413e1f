"""The values the ledger hands out and takes in (no Redis here)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class NewOrder:
    key: str
    account_id: str
    order_id: str
    body: str
    callback_url: str = ""


@dataclass(slots=True)
class Claim:
    """An order a worker holds: what it needs to POST, and the token that proves it holds it."""

    key: str
    token: str
    body: str
    account_id: str
    order_id: str
    attempts: int
    ambiguous_attempts: int
    created_ms: int
    deadline_ms: int
    callback_url: str


@dataclass(frozen=True, slots=True)
class CallbackClaim:
    """A pending callback a worker holds: the signed event's body and id, and where it goes."""

    key: str
    token: str
    body: str
    msg_id: str
    callback_url: str  # the order's own URL; empty: the operator's DISPATCH_CALLBACK_URL
    attempts: int


@dataclass(frozen=True, slots=True)
class Gate:
    """What `begin` said: go (`attempts` is this attempt's number), lost, or wait."""

    verdict: str  # go | probe | lost | paused | open | probing | rate
    attempts: int = 0
    wait_s: float = 0.0  # when shut: how long until it may open
    start_in_s: float = 0.0  # when go: the start time reserved by the rate limit, from now

    @property
    def go(self) -> bool:
        return self.verdict in ("go", "probe")


@dataclass(frozen=True, slots=True)
class PumpReport:
    due: int
    lost: int
    stale: int
    held: list[str] = field(default_factory=list)
    callbacks: int = 0

    @property
    def moved(self) -> int:
        return self.due + self.lost + self.stale - len(self.held) + self.callbacks
