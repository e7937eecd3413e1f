"""A point-in-time picture of the whole fleet, read from the shared Redis (SPEC §7).

This module owns what the ledger's numbers mean to a reader (the counters' names and the
latency histogram's buckets live in `worker.counters`), and `snapshot`, which reads queue
depth, the ledger's zsets, dead letters, worker heartbeats, the flow state and the counters in
one pipelined round trip. The exporter (`worker.obs.metrics`), `stats` and `health` all read through
here, so that they can never disagree (`read_health` judges each fresh worker's progress report
with `worker.obs.liveness`). Nothing here prints or writes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis

from worker.counters import (
    COUNTER_FIELDS,
    LATENCY_BUCKETS_MS,
    LATENCY_COUNT_FIELD,
    LATENCY_PREFIX,
    LATENCY_SUM_FIELD,
    latency_field,
)
from worker.ledger.keys import FlowKeys, Keys
from worker.obs.liveness import Progress, stall_reason

Circuit = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The fleet at `at_s` (unix seconds). Counts are of orders unless named otherwise."""

    at_s: float
    queue_depth: int  # messages in the Celery queue list
    queued: int
    scheduled: int  # retries and postponed orders, waiting until due
    in_flight: int  # leased by a worker
    callbacks_pending: int
    dead_submit: int
    dead_callback: int
    workers_alive: int
    workers: dict[str, float]  # node name -> seconds since its last heartbeat
    circuit: Circuit
    circuit_failures: int
    paused: bool
    pause_remaining_s: float
    oldest_queued_age_s: float
    counters: dict[str, int]
    latency_buckets: tuple[int, ...]  # non-cumulative, one per LATENCY_BUCKETS_MS, then +Inf
    latency_sum_ms: float
    latency_count: int
    # INFO memory, read only when asked (the exporter): used_memory, and maxmemory (0: no limit).
    # With noeviction, Redis refuses writes once the first is above the second.
    redis_used_memory_bytes: int | None = None
    redis_maxmemory_bytes: int | None = None

    def counter(self, name: str) -> int:
        return self.counters.get(name, 0)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (bucket bounds as strings, `inf` for the last)."""
        data = asdict(self)
        bounds = [str(b) for b in LATENCY_BUCKETS_MS] + ["inf"]
        data["latency_buckets"] = dict(zip(bounds, self.latency_buckets, strict=True))
        return data


def _number(value: object) -> float:
    try:
        result = float(str(value))
    except ValueError:
        return 0.0
    return result if math.isfinite(result) else 0.0


def _seconds(redis_time: Any) -> float:
    """Redis's TIME reply (seconds, microseconds) as seconds."""
    seconds, micros = redis_time
    return int(seconds) + int(micros) / 1_000_000


def heartbeat_ages(members: list[tuple[str, float]], now_s: float) -> dict[str, float]:
    """Seconds since each heartbeat of the workers zset's (node, ms) members."""
    # A heartbeat from a host whose clock runs ahead would have a negative age.
    return {name: max(0.0, now_s - score / 1000.0) for name, score in members}


def live_workers(
    workers: Mapping[str, float], *, max_age_s: float, name: str | None = None
) -> list[str]:
    """Workers whose heartbeat is newer than `max_age_s`; with `name`, only that one (matched
    exactly or by its part before '@', so `w1` finds `w1@host`)."""
    return sorted(
        node
        for node, age_s in workers.items()
        if age_s < max_age_s and (name is None or name in (node, node.split("@", 1)[0]))
    )


def _circuit(raw: Mapping[str, str], now_ms: float) -> Circuit:
    open_until_ms = _number(raw.get("open_until_ms", 0))
    if open_until_ms <= 0:
        return "closed"
    return "open" if open_until_ms > now_ms else "half_open"


def snapshot(
    client: redis.Redis,
    keys: Keys,
    flow: FlowKeys,
    queue: str,
    *,
    now_s: float | None = None,
    heartbeat_max_age_s: float = 30,
    memory: bool = False,
) -> Snapshot:
    """Read everything in one pipelined round trip (not a transaction: a reader needs no
    atomicity, and a MULTI would stall the writers' scripts no less); with `memory`, Redis's
    own memory figures too."""
    with client.pipeline(transaction=False) as pipe:
        pipe.time()  # ages are read on the clock they were written on: Redis's
        pipe.llen(queue)
        for zset in (keys.queued, keys.waiting, keys.leases, keys.dead, keys.dead_callback):
            pipe.zcard(zset)
        for zset in (keys.cb_queued, keys.cb_waiting, keys.cb_leases):
            pipe.zcard(zset)
        pipe.zrange(keys.workers, 0, -1, withscores=True)
        pipe.hgetall(flow.circuit)
        pipe.pttl(flow.pause)
        pipe.zrange(keys.queued, 0, 0, withscores=True)
        pipe.hgetall(keys.counters)
        if memory:
            pipe.info("memory")
        # INFO may be refused (an ACL, a managed Redis): the memory figures are then unknown,
        # and the rest of the snapshot still stands.
        replies: list[Any] = pipe.execute(raise_on_error=False)
    if now_s is None:
        now_s = _seconds(replies[0])
    replies = replies[1:]
    for reply in replies[:14]:
        if isinstance(reply, Exception):
            raise reply
    (depth, queued, waiting, leases, dead, dead_cb, cb_queued, cb_waiting, cb_leases) = replies[:9]
    beats, circuit, pause_ms, oldest, raw_counters = replies[9:14]
    info = replies[14] if memory and isinstance(replies[14], dict) else None

    counters = dict.fromkeys(COUNTER_FIELDS, 0)
    for field, value in raw_counters.items():
        if not field.startswith(LATENCY_PREFIX):
            counters[field] = int(_number(value))
    buckets = tuple(
        int(_number(raw_counters.get(latency_field(le), 0))) for le in (*LATENCY_BUCKETS_MS, None)
    )
    workers = heartbeat_ages(beats, now_s)
    return Snapshot(
        at_s=now_s,
        queue_depth=int(depth),
        queued=int(queued),
        scheduled=int(waiting),
        in_flight=int(leases),
        callbacks_pending=int(cb_queued) + int(cb_waiting) + int(cb_leases),
        dead_submit=int(dead),
        dead_callback=int(dead_cb),
        workers_alive=len(live_workers(workers, max_age_s=heartbeat_max_age_s)),
        workers=workers,
        circuit=_circuit(circuit, now_s * 1000.0),
        circuit_failures=int(_number(circuit.get("failures", 0))),
        # PTTL: -2 no key (not paused), -1 a key without expiry (paused, no end known).
        paused=int(pause_ms) != -2,
        pause_remaining_s=max(0, int(pause_ms)) / 1000.0,
        oldest_queued_age_s=max(0.0, now_s - oldest[0][1] / 1000.0) if oldest else 0.0,
        counters=counters,
        latency_buckets=buckets,
        latency_sum_ms=_number(raw_counters.get(LATENCY_SUM_FIELD, 0)),
        latency_count=int(_number(raw_counters.get(LATENCY_COUNT_FIELD, 0))),
        redis_used_memory_bytes=int(_number(info.get("used_memory", 0))) if info else None,
        redis_maxmemory_bytes=int(_number(info.get("maxmemory", 0))) if info else None,
    )


@dataclass(frozen=True, slots=True)
class Health:
    """What `order-dispatch health` found: heartbeat ages, the fresh ones, the stalled ones."""

    workers: dict[str, float]  # node name -> seconds since its heartbeat
    alive: list[str]  # fresh heartbeat (and matching the name asked for)
    stalled: dict[str, str]  # node name -> why (among `alive`)
    progress: dict[str, dict[str, Any]]  # node name -> its last report (among `alive`)
    queue_depth: int

    @property
    def healthy(self) -> list[str]:
        return [node for node in self.alive if node not in self.stalled]


def read_health(
    client: redis.Redis,
    keys: Keys,
    queue: str,
    *,
    now_s: float | None = None,
    max_age_s: float,
    stall_s: float,
    name: str | None = None,
) -> Health:
    """Heartbeats and queue depth in one round trip, then the fresh workers' reports in one
    more: cheap enough for a probe every few seconds."""
    with client.pipeline(transaction=False) as pipe:
        pipe.time()
        pipe.zrange(keys.workers, 0, -1, withscores=True)
        pipe.llen(queue)
        redis_now, beats, depth = pipe.execute()
    if now_s is None:
        now_s = _seconds(redis_now)
    ages = heartbeat_ages(beats, now_s)
    alive = live_workers(ages, max_age_s=max_age_s, name=name)
    queue_depth = int(depth)
    raws: list[str | None] = client.mget([keys.progress(n) for n in alive]) if alive else []  # type: ignore[assignment]
    stalled: dict[str, str] = {}
    reports: dict[str, dict[str, Any]] = {}
    for node, raw in zip(alive, raws, strict=True):
        progress = Progress.from_json(raw)
        if progress is None:
            continue
        reports[node] = asdict(progress)
        reason = stall_reason(
            progress, beat_age_s=ages[node], queue_depth=queue_depth, stall_s=stall_s
        )
        if reason is not None:
            stalled[node] = reason
    return Health(ages, alive, stalled, reports, queue_depth)
