"""The checker: the campaign's history against the product's promises (SPEC §10, issue 13).

It reads only what users and the API can see: the ledger's records, the results stream, the
sandbox's counts and log, the callbacks received, and which worker processes died. Each check
names the orders (or workers) that broke it, with what was seen.

What counts as a POST: one the API acted on. A 429 or 503 answer says the API did nothing
(that is why the product retries it), so such POSTs are not duplicates of anything.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.campaign.cluster import Death, Delivery
from worker.ledger.records import Event, Record

FINAL = {"completed", "delivered", "dead"}
REFUSED = {429, 503}  # the API answered without acting
EVENT_FOR = {"completed": "order.completed", "delivered": "order.completed", "dead": "order.failed"}


@dataclass
class History:
    keys: list[str]  # every order the ledger took (accepted, or found there at the end)
    records: dict[str, Record | None]
    events: list[Event]
    stats: dict[str, Any]  # the sandbox's: posts, creates, log
    deliveries: list[Delivery]
    deaths: list[Death]
    missing: list[str] = field(default_factory=list)  # accepted, yet no record at all


@dataclass
class Check:
    name: str
    promise: str
    broken: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.broken


def order_id(key: str) -> str:
    return key.split(":", 1)[1]


def acted_posts(stats: dict[str, Any]) -> Counter[str]:
    return Counter(oid for _at, oid, status in stats.get("log", []) if status not in REFUSED)


def check(history: History) -> list[Check]:
    creates: dict[str, int] = history.stats.get("creates", {})
    posts = acted_posts(history.stats)
    events_by_key: defaultdict[str, list[str]] = defaultdict(list)
    for entry in history.events:
        events_by_key[entry.data.get("key", "")].append(entry.type)
    ids_by_key: defaultdict[str, set[str]] = defaultdict(set)
    types_by_key: defaultdict[str, set[str]] = defaultdict(set)
    for d in history.deliveries:
        ids_by_key[d.key].add(d.webhook_id)
        types_by_key[d.key].add(d.type)

    final = Check("final", "every accepted order ends completed, delivered or dead")
    once = Check("creates", "one create per order at the API (more only after ambiguous attempts)")
    post = Check("posts", "POSTs per order <= 1 + its ambiguous attempts")
    event = Check("events", "exactly one order.completed or order.failed event per order")
    callback = Check("callbacks", "each order's callback delivered, under one stable webhook-id")
    alive = Check("workers", "no worker died except those the nemesis killed")

    for key in history.missing:
        final.broken[key] = "accepted, but the ledger has no record"
    for key in history.keys:
        record = history.records.get(key)
        if record is None:
            continue
        amb = record.ambiguous_attempts
        made = creates.get(order_id(key), 0)
        if record.status not in FINAL or record.callback == "pending":
            final.broken[key] = f"status {record.status}, callback {record.callback}"
        if made > 1 + amb or (record.status in ("completed", "delivered") and made == 0):
            once.broken[key] = f"creates {made}, ambiguous attempts {amb}, status {record.status}"
        if posts[order_id(key)] > 1 + amb:
            post.broken[key] = f"POSTs acted on {posts[order_id(key)]}, ambiguous attempts {amb}"
        if record.status in FINAL:
            seen = events_by_key.get(key, [])
            if seen != [EVENT_FOR[record.status]]:
                event.broken[key] = f"status {record.status}, events {seen}"
            ids = ids_by_key.get(key, set())
            if record.callback == "failed" or len(ids) != 1:
                callback.broken[key] = (
                    f"callback {record.callback}, {len(ids)} webhook-ids, "
                    f"types {sorted(types_by_key.get(key, set()))}"
                )
    known = set(history.keys)
    for key, seen in events_by_key.items():
        if key not in known:
            event.broken[key] = f"events {seen} for an order no producer enqueued"
    for death in history.deaths:
        alive.broken[death.worker] = f"exited {death.returncode}: {death.last_line}"
    return [final, once, post, event, callback, alive]


def figures(history: History) -> dict[str, Any]:
    creates: dict[str, int] = history.stats.get("creates", {})
    records = [r for r in history.records.values() if r is not None]
    statuses = Counter(r.status for r in records)
    duplicated = [r for r in records if creates.get(r.order_id, 0) > 1]
    deliveries = Counter(d.webhook_id for d in history.deliveries)
    slowest_s, slowest = _slowest(history)
    return {
        "orders": len(history.keys),
        "completed": statuses["completed"] + statuses["delivered"],
        "dead": statuses["dead"],
        "lost": len(history.missing),
        "stuck": sum(1 for r in records if r.status not in FINAL or r.callback == "pending"),
        "duplicated": len(duplicated),
        "duplicated_unexcused": sum(
            1 for r in duplicated if creates.get(r.order_id, 0) > 1 + r.ambiguous_attempts
        ),
        "ambiguous_attempts": sum(r.ambiguous_attempts for r in records),
        "posts": sum(history.stats.get("posts", {}).values()),
        "posts_refused": sum(
            1 for _a, _o, status in history.stats.get("log", []) if status in REFUSED
        ),
        "events": len(history.events),
        "callbacks_received": sum(deliveries.values()),
        "callbacks_redelivered": sum(n - 1 for n in deliveries.values()),
        # Second creates are the candidate's second invitation: named even when excused.
        "duplicates": {
            r.key: f"creates {creates[r.order_id]}, ambiguous attempts {r.ambiguous_attempts}"
            for r in duplicated
        },
        "dead_reasons": dict(Counter(r.dead_reason or "?" for r in records if r.status == "dead")),
        "worker_deaths": len(history.deaths),
        "slowest_order_s": slowest_s,
        "slowest_order": slowest,
    }


def _slowest(history: History) -> tuple[float, str]:
    """The longest time from enqueue to the final event, and whose (no check bounds it; a long
    one points at orders that sat unseen)."""
    worst = (0.0, "")
    for e in history.events:
        record = history.records.get(e.data.get("key", ""))
        if record is None:
            continue
        enqueued_s = datetime.fromisoformat(record.created_at).timestamp()
        waited_s = int(e.id.split("-")[0]) / 1000 - enqueued_s
        worst = max(worst, (round(waited_s, 1), record.key))
    return worst
