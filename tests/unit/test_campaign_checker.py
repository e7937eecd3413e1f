"""The campaign's checker finds each broken promise in a history, and names the orders."""

from __future__ import annotations

from typing import Any

from sandbox.campaign.checker import History, check, figures
from sandbox.campaign.cluster import Death, Delivery
from sandbox.campaign.nemesis import Fault
from sandbox.campaign.report import recovery_s
from worker.ledger.records import Event, Record

KEYS = ["acct-0:o1", "acct-0:o2"]


def record(key: str, status: str = "delivered", **fields: Any) -> Record:
    account, order = key.split(":")
    values: dict[str, Any] = {"callback": "delivered", "attempts": 1}
    values |= fields
    return Record(
        key=key,
        account_id=account,
        order_id=order,
        status=status,  # type: ignore[arg-type]
        created_at="2026-12-01T00:00:00Z",
        updated_at="2026-12-01T00:00:01Z",
        **values,
    )


def history(**changes: Any) -> History:
    base: dict[str, Any] = {
        "keys": list(KEYS),
        "records": {k: record(k) for k in KEYS},
        "events": [
            Event(f"{1000 + i}-0", "order.completed", {"key": k}) for i, k in enumerate(KEYS)
        ],
        "stats": {
            "posts": {"o1": 1, "o2": 2},
            "creates": {"o1": 1, "o2": 1},
            "log": [[0, "o1", 200], [0, "o2", 503], [0, "o2", 200]],
        },
        "deliveries": [Delivery(f"msg_{k}", "order.completed", k, 0.0) for k in KEYS],
        "deaths": [],
    }
    return History(**(base | changes))


def broken(h: History) -> dict[str, dict[str, str]]:
    return {c.name: c.broken for c in check(h) if not c.ok}


def test_a_clean_history_passes_and_a_refused_post_is_no_duplicate() -> None:
    assert broken(history()) == {}
    assert figures(history())["posts_refused"] == 1


def test_a_second_create_without_an_ambiguous_attempt_breaks_creates_and_posts() -> None:
    stats = {"posts": {"o1": 2, "o2": 1}, "creates": {"o1": 2, "o2": 1}}
    stats["log"] = [[0, "o1", 200], [0, "o1", 200], [0, "o2", 200]]  # type: ignore[assignment]
    assert set(broken(history(stats=stats))) == {"creates", "posts"}
    assert set(broken(history(stats=stats))["creates"]) == {"acct-0:o1"}

    excused = {k: record(k, ambiguous_attempts=1) for k in KEYS}
    assert broken(history(stats=stats, records=excused)) == {}


def test_open_orders_lost_orders_events_callbacks_and_deaths_are_each_named() -> None:
    h = history(
        records={KEYS[0]: record(KEYS[0]), KEYS[1]: record(KEYS[1], "retrying")},
        missing=["acct-0:o3"],
        events=[Event("1-0", "order.completed", {"key": KEYS[0]})] * 2,
        deliveries=[
            Delivery("msg_a", "order.completed", KEYS[0], 0.0),
            Delivery("msg_b", "order.completed", KEYS[0], 0.0),
        ],
        deaths=[Death("w2", 1, 0.0, "AttributeError")],
    )
    assert broken(h) == {
        "final": {"acct-0:o3": "accepted, but the ledger has no record",
                  KEYS[1]: "status retrying, callback delivered"},
        "events": {KEYS[0]: "status delivered, events ['order.completed', 'order.completed']"},
        "callbacks": {KEYS[0]: "callback delivered, 2 webhook-ids, types ['order.completed']"},
        "workers": {"w2": "exited 1: AttributeError"},
    }  # fmt: skip


def test_recovery_is_the_time_from_a_heal_to_the_next_completed_order() -> None:
    events = [Event("10500-0", "order.completed", {}), Event("12000-0", "order.completed", {})]
    faults = [Fault("kill", 9.0, 10.0), Fault("stop", 11.0, 11.5), Fault("freeze", 12.0, 13.0)]
    assert recovery_s(faults, events) == [0.5, 0.5, None]


def test_a_recovery_that_the_next_fault_interrupts_is_not_measured() -> None:
    events = [Event("20000-0", "order.completed", {})]
    faults = [Fault("kill", 9.0, 10.0), Fault("freeze", 12.0, 19.0)]
    assert recovery_s(faults, events) == [None, 1.0]
