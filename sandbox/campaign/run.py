"""One campaign, start to end: start the cluster, let producers and the nemesis run, stop the
producers early, heal every fault, wait (bounded) for every order to be final, then hand the
history to the checker and the report.

Timeline for `duration_s` D: producers enqueue during the first 80 % of D, the nemesis injects
faults until D, then everything is healed and the orders get up to `settle_s` to finish.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from producer.api import Dispatcher
from sandbox.campaign.checker import FINAL, History, check, figures
from sandbox.campaign.cluster import Cluster, faketime_available
from sandbox.campaign.nemesis import KINDS, Nemesis
from sandbox.campaign.producers import Producer
from sandbox.campaign.report import document
from worker.ledger.records import Event, Record
from worker.settings import Settings

PRODUCING = 0.8  # of the duration


@dataclass
class Options:
    duration_s: float = 600.0
    seed: int = 0
    faults: list[str] = field(default_factory=lambda: list(KINDS))
    workers: int = 3
    concurrency: int = 16
    producers: int = 3
    rate_per_s: float = 8.0  # all producers together
    settle_s: float = 120.0
    # A slow API keeps POSTs in flight (8/s at 1 s: ~8), so kills and pauses catch some.
    latency_ms: float = 1000.0
    out: Path | None = None


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_campaign(options: Options) -> dict[str, Any]:
    notes: list[str] = []
    kinds = list(options.faults)
    if "skew" in kinds and not faketime_available():
        kinds.remove("skew")
        notes.append("skew skipped: faketime is not installed (Debian: apt-get install faketime)")
    run_dir = options.out or Path(tempfile.mkdtemp(prefix="od-campaign-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    notes.append(f"logs in {run_dir}")
    rng = random.Random(options.seed)
    say(f"campaign seed {options.seed}, faults {','.join(kinds) or 'none'}, logs in {run_dir}")
    cluster = Cluster(
        run_dir,
        workers_wanted=options.workers,
        concurrency=options.concurrency,
        latency_ms=options.latency_ms,
    )
    cluster.start()
    try:
        start = time.monotonic()
        producers = [
            Producer(
                i,
                cluster.redis.url,
                seed=options.seed,
                rate_per_s=options.rate_per_s / options.producers,
                until_monotonic=start + PRODUCING * options.duration_s,
            )
            for i in range(options.producers)
        ]
        nemesis = Nemesis(cluster, kinds, rng, until_monotonic=start + options.duration_s, log=say)
        for p in producers:
            p.start()
        if kinds:
            nemesis.start()
        time.sleep(max(0.0, start + options.duration_s - time.monotonic()))
        nemesis.halt()
        if kinds:
            nemesis.join()
        for p in producers:
            p.halt()
            p.join()
        heal_all(cluster)
        say("faults healed; waiting for every order to be final")
        history = collect(cluster, producers, settle_s=options.settle_s)
    finally:
        cluster.close()
    notes += nemesis.errors
    invalid = sum(len(p.invalid) for p in producers)
    if invalid:
        notes.append(f"{invalid} generated orders were refused as invalid (a campaign bug)")
    return document(
        seed=options.seed,
        options={k: v for k, v in asdict(options).items() if k not in ("out", "seed")}
        | {"faults": kinds},
        faults=nemesis.faults,
        events=history.events,
        figures=figures(history) | {"enqueue_errors": sum(p.errors for p in producers)},
        checks=check(history),
        notes=notes,
    )


def heal_all(cluster: Cluster) -> None:
    """Whatever the nemesis left (it heals each fault itself; this is the belt to its braces)."""
    cluster.proxy.thaw()
    if cluster.redis.proc is None or cluster.redis.proc.poll() is not None:
        cluster.start_redis()
    cluster.api_faults()
    for w in cluster.live_workers() + cluster.live_workers(skewed=True):
        cluster.pause_worker(w, False)


def collect(cluster: Cluster, producers: list[Producer], *, settle_s: float) -> History:
    settings = Settings(_env_file=None, redis_url=cluster.redis.url, account_id="acct-campaign")
    reader = Dispatcher(settings)
    try:
        accepted = sorted(set().union(*(p.accepted for p in producers)))
        unanswered = sorted(set().union(*(p.unanswered for p in producers)))
        # A batch never answered counts if the ledger has it: its first send landed.
        found = [k for k, r in zip(unanswered, read(reader, unanswered), strict=True) if r]
        keys = accepted + found
        deadline = time.monotonic() + settle_s
        while True:
            records = read(reader, keys)
            open_ = [r for r in records if r is None or not _final(r)]
            if not open_ or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        say(f"{len(keys)} orders, {len(open_)} not final")
        return History(
            keys=[k for k, r in zip(keys, records, strict=True) if r is not None],
            records=dict(zip(keys, records, strict=True)),
            events=all_events(reader),
            stats=cluster.control.stats(log=True),
            deliveries=list(cluster.deliveries),
            deaths=list(cluster.deaths),
            missing=[k for k, r in zip(keys, records, strict=True) if r is None],
        )
    finally:
        reader.redis.close()


def _final(record: Record) -> bool:
    return record.status in FINAL and record.callback != "pending"


def read(reader: Dispatcher, keys: list[str]) -> list[Record | None]:
    out: list[Record | None] = []
    for i in range(0, len(keys), 1000):
        out += reader.records(keys[i : i + 1000])
    return out


def all_events(reader: Dispatcher) -> list[Event]:
    events: list[Event] = []
    since = "0"
    while batch := reader.events(since=since, count=1000):
        events += batch
        since = batch[-1].id
    return events
