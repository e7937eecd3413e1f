"""The nemesis: every few seconds, one fault picked at random (seeded), held, then healed.

Kinds are dealt like cards: each round is a shuffle of the enabled kinds, so that a short run
still meets every kind, in an order the seed decides.

One fault at a time, so that each heal has a clear "after" to measure recovery from, and the
sandbox's fault settings (one set at a time) are never overwritten by another kind. Each kind
is an `inject` that returns what it did and how to heal it; the hold is drawn from the kind's
range, and cut short when the campaign ends (every fault is healed before the checker runs).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.campaign.cluster import SKEW, Cluster

Heal = Callable[[], None]


@dataclass
class Fault:
    kind: str
    started_s: float  # wall clock, like the stream ids the checker compares it with
    healed_s: float | None = None
    detail: str = ""


def _kill(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    victim = rng.choice(cluster.live_workers())
    cluster.kill_worker(victim)

    def replace() -> None:
        cluster.start_worker()

    return f"SIGKILL {victim.name}", replace


def _stop(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    victim = rng.choice(cluster.live_workers())
    cluster.pause_worker(victim, True)
    return f"SIGSTOP {victim.name}", lambda: cluster.pause_worker(victim, False)


def _redis_restart(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    cluster.kill_redis()
    return "SIGKILL redis-server", cluster.start_redis


def _freeze(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    cluster.proxy.freeze()
    return "bytes and FINs to Redis held", cluster.proxy.thaw


def _outage(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    cluster.api_faults(outage=True)
    return "API answers 503", cluster.api_faults


def _burst_429(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    retry_after = rng.choice(["1", "2"])
    cluster.api_faults(fail_status=429, fail_times=1_000_000, retry_after=retry_after)
    return f"API answers 429, Retry-After {retry_after}", cluster.api_faults


def _drop(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    cluster.api_faults(drop_times=1)
    return "API creates, then drops the reply (ambiguous)", cluster.api_faults


def _skew(cluster: Cluster, rng: random.Random) -> tuple[str, Heal]:
    worker = cluster.start_worker(skewed=True)
    return f"{worker.name} under faketime {SKEW}", lambda: cluster.stop_worker(worker)


# kind -> (inject, hold range in seconds). Pauses outlast the 3 s lease; freezes reach past the
# 30 s socket timeout of kombu's connections (the half-open case is 40 s); the skewed
# worker lives long enough to take orders.
Inject = Callable[[Cluster, random.Random], tuple[str, Heal]]
KINDS: dict[str, tuple[Inject, tuple[float, float]]] = {
    "kill": (_kill, (0.5, 2.0)),
    "stop": (_stop, (4.0, 9.0)),
    "redis-restart": (_redis_restart, (1.0, 4.0)),
    "freeze": (_freeze, (5.0, 40.0)),
    "outage": (_outage, (3.0, 10.0)),
    "429": (_burst_429, (2.0, 6.0)),
    "drop": (_drop, (1.0, 3.0)),
    "skew": (_skew, (10.0, 20.0)),
}


class Nemesis(threading.Thread):
    def __init__(
        self,
        cluster: Cluster,
        kinds: list[str],
        rng: random.Random,
        *,
        until_monotonic: float,
        gap_s: tuple[float, float] = (2.0, 6.0),
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        super().__init__(name="od-nemesis", daemon=True)
        self.cluster = cluster
        self.kinds = kinds
        self.rng = rng
        self.until = until_monotonic
        self.gap_s = gap_s
        self.log = log
        self.faults: list[Fault] = []
        self.errors: list[str] = []
        self._halt = threading.Event()
        self._deck: list[str] = []

    def _next_kind(self) -> str:
        if not self._deck:
            self._deck = list(self.kinds)
            self.rng.shuffle(self._deck)
        return self._deck.pop()

    def halt(self) -> None:
        """End the campaign's faults now: the current one is healed before `join` returns."""
        self._halt.set()

    def run(self) -> None:
        while not self._halt.wait(self.rng.uniform(*self.gap_s)):
            left_s = self.until - time.monotonic()
            if left_s <= 0:
                return
            kind = self._next_kind()
            inject, (low_s, high_s) = KINDS[kind]
            hold_s = self.rng.uniform(low_s, high_s)
            fault = Fault(kind, time.time())
            try:
                fault.detail, heal = inject(self.cluster, self.rng)
            except Exception as exc:  # noqa: BLE001 - a fault that cannot start is noted, not fatal
                self.errors.append(f"{kind}: not injected: {exc!r}")
                continue
            self.faults.append(fault)
            self.log(f"fault {kind}: {fault.detail} for {hold_s:.1f}s")
            self._halt.wait(min(hold_s, max(left_s, 0.0)))
            try:
                heal()
            except Exception as exc:  # noqa: BLE001 - the checker reports it; the run goes on
                self.errors.append(f"{kind}: heal failed: {exc!r}")
            fault.healed_s = time.time()
