"""The campaign's report: the seed, the faults injected by kind with the recovery after each,
the figures, and every check with the orders that broke it; as text, or one JSON document.

Recovery after a fault: seconds from its heal to the next `order.completed` event (the results
stream's ids are Redis's clock in milliseconds, the same host clock the heal was taken on). When
the next fault begins before any order completes, that recovery is not measured (it would be
the next fault's time, not this one's): the table counts those as "cut".
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from sandbox.campaign.checker import Check
from sandbox.campaign.nemesis import Fault
from worker.ledger.records import Event

SHOWN = 10  # broken orders listed per check in the text (the JSON has them all)


def recovery_s(faults: list[Fault], events: list[Event]) -> list[float | None]:
    completed = sorted(
        int(e.id.split("-")[0]) / 1000 for e in events if e.type == "order.completed"
    )
    result: list[float | None] = []
    for n, fault in enumerate(faults):
        i = bisect.bisect_left(completed, fault.healed_s or float("inf"))
        next_start_s = faults[n + 1].started_s if n + 1 < len(faults) else float("inf")
        if fault.healed_s is None or i == len(completed) or completed[i] > next_start_s:
            result.append(None)
        else:
            result.append(round(completed[i] - fault.healed_s, 2))
    return result


def by_kind(faults: list[Fault], recoveries: list[float | None]) -> dict[str, dict[str, Any]]:
    table: defaultdict[str, dict[str, Any]] = defaultdict(
        lambda: {"injected": 0, "held_s": 0.0, "recovery_s": [], "cut": 0}
    )
    for fault, rec in zip(faults, recoveries, strict=True):
        row = table[fault.kind]
        row["injected"] += 1
        row["held_s"] += (fault.healed_s or fault.started_s) - fault.started_s
        if rec is None:
            row["cut"] += 1
        else:
            row["recovery_s"].append(rec)
    out: dict[str, dict[str, Any]] = {}
    for kind, row in sorted(table.items()):
        recs = row["recovery_s"]
        out[kind] = {
            "injected": row["injected"],
            "held_s": round(row["held_s"], 1),
            "recovery_median_s": round(statistics.median(recs), 2) if recs else None,
            "recovery_max_s": max(recs) if recs else None,
            "recovery_cut": row["cut"],
        }
    return out


def document(
    *,
    seed: int,
    options: dict[str, Any],
    faults: list[Fault],
    events: list[Event],
    figures: dict[str, Any],
    checks: list[Check],
    notes: list[str],
) -> dict[str, Any]:
    recoveries = recovery_s(faults, events)
    return {
        "seed": seed,
        "options": options,
        "ok": all(c.ok for c in checks),
        "faults_by_kind": by_kind(faults, recoveries),
        "faults": [asdict(f) | {"recovery_s": r} for f, r in zip(faults, recoveries, strict=True)],
        "figures": figures,
        "checks": [
            {"name": c.name, "promise": c.promise, "ok": c.ok, "broken": c.broken} for c in checks
        ],
        "notes": notes,
    }


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def text(doc: dict[str, Any]) -> str:
    lines = [f"fault campaign: seed {doc['seed']}  ({_options(doc['options'])})", ""]
    lines.append(
        f"{'fault':<14}{'injected':>9}{'held s':>9}{'recovery median s':>19}{'max s':>8}{'cut':>5}"
    )
    for kind, row in doc["faults_by_kind"].items():
        lines.append(
            f"{kind:<14}{row['injected']:>9}{row['held_s']:>9g}"
            f"{_num(row['recovery_median_s']):>19}{_num(row['recovery_max_s']):>8}"
            f"{row['recovery_cut']:>5}"
        )
    lines.append("")
    fig = doc["figures"]
    lines.append(
        "orders {orders}  completed {completed}  dead {dead}  lost {lost}  stuck {stuck}  "
        "duplicated {duplicated} (beyond their ambiguous attempts: {duplicated_unexcused})".format(
            **fig
        )
    )
    lines.append(
        "POSTs {posts} (refused 429/503: {posts_refused})  ambiguous attempts "
        "{ambiguous_attempts}  events {events}  callbacks {callbacks_received} "
        "(redelivered {callbacks_redelivered})  worker deaths {worker_deaths}".format(**fig)
    )
    lines.append(f"slowest order: {fig['slowest_order_s']:g} s from enqueue to its final event")
    if fig["dead_reasons"]:
        lines.append(f"dead by reason: {fig['dead_reasons']}")
    lines.append("")
    for c in doc["checks"]:
        mark = "ok  " if c["ok"] else "FAIL"
        count = f" ({len(c['broken'])} broken)" if c["broken"] else ""
        lines.append(f"{mark} {c['name']:<10} {c['promise']}{count}")
        for who, what in list(c["broken"].items())[:SHOWN]:
            lines.append(f"       {who}: {what}")
        if len(c["broken"]) > SHOWN:
            lines.append(f"       ... and {len(c['broken']) - SHOWN} more (--json lists them all)")
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    lines.append("")
    lines.append("PASS" if doc["ok"] else "FAIL")
    return "\n".join(lines)


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in options.items())
