"""The walking skeleton end to end: producer -> Redis -> Celery worker -> sandbox -> records."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from producer.api import Dispatcher
from sandbox.app import TEST_URL_BASE
from tests.conftest import ACCOUNT, Sandbox, WorkerFactory, make_settings
from tests.factories import make_order, wait_final
from worker.ledger.records import read_events


def test_orders_flow_to_the_api_once_each_and_come_back_with_test_urls(
    dispatcher: Dispatcher, sandbox: Sandbox, workers: WorkerFactory, redis_url: str
) -> None:
    """Enqueued orders reach the API once each and come back completed with their test URLs."""
    orders = [make_order(i) for i in range(100)]
    report = dispatcher.enqueue_many(orders)
    assert report.accepted == 100
    workers(concurrency=16)
    keys = [r.key for r in report.results if r.key]
    records = wait_final(dispatcher, keys)

    assert {r.status for r in records} == {"completed"}
    assert all(r.test_url == f"{TEST_URL_BASE}{r.order_id}" for r in records)
    assert all(r.remote_id and r.attempts == 1 for r in records)
    stats = sandbox.control.stats()
    assert stats["posts"] == {o["id"]: 1 for o in orders}
    assert stats["creates"] == {o["id"]: 1 for o in orders}
    assert stats["idempotency_keys"] == {o["id"]: [f"{ACCOUNT}:{o['id']}"] for o in orders}
    events = dispatcher.events()
    assert sorted(e.data["key"] for e in events if e.type == "order.completed") == sorted(keys)

    # The same orders again, from four producers at once: all duplicates, nothing new sent.
    def produce(_: int) -> list[str]:
        d = Dispatcher(make_settings(redis_url))
        return [r.outcome for r in d.enqueue_many(orders).results]

    with ThreadPoolExecutor(4) as pool:
        outcomes = [o for run in pool.map(produce, range(4)) for o in run]
    assert set(outcomes) == {"duplicate"}
    assert sandbox.control.stats()["posts"] == {o["id"]: 1 for o in orders}
    assert len(read_events(dispatcher.redis, dispatcher.keys)) == 100


def test_a_mixed_file_enqueues_the_valid_part_and_names_each_invalid_line(
    dispatcher: Dispatcher,
    sandbox: Sandbox,
    workers: WorkerFactory,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """A mixed file enqueues its valid orders and names each invalid line with its field."""
    too_big = make_order(7, passthrough={"blob": "x" * 300_000})
    missing_email = make_order(3)
    missing_email["candidate"].pop("emails")
    bad_enum = make_order(4)
    bad_enum["application"]["application_status"]["value"] = "hired!"
    misspelt = make_order(5)
    misspelt["candidate"]["emial"] = misspelt["candidate"].pop("emails")
    lines = [
        json.dumps(make_order(1)),  # 1 valid
        '{"id": "broken", "package": ',  # 2 broken JSON
        json.dumps(missing_email),  # 3 no email
        json.dumps(bad_enum),  # 4 unknown enum value
        json.dumps(misspelt),  # 5 misspelt field
        json.dumps(make_order(6)),  # 6 valid
        json.dumps(too_big),  # 7 oversize
        "[1, 2, 3]",  # 8 not an object
        json.dumps(make_order(9)),  # 9 valid
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "producer", "enqueue", str(path), "--json"],
        env={**worker_env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 65, proc.stderr
    rows = {row["line"]: row for row in map(json.loads, proc.stdout.splitlines())}
    assert {n: rows[n]["outcome"] for n in rows} == {
        1: "accepted",
        2: "invalid",
        3: "invalid",
        4: "invalid",
        5: "invalid",
        6: "accepted",
        7: "invalid",
        8: "invalid",
        9: "accepted",
    }
    locs = {n: [e["loc"] for e in rows[n].get("errors", [])] for n in rows}
    assert locs[2] == ["(order)"] and "JSON" in rows[2]["errors"][0]["msg"]
    assert locs[3] == ["candidate.emails"]
    assert locs[4] == ["application.application_status.value"]
    assert "candidate.emial" in locs[5] and "unknown field 'emial'" in str(rows[5]["errors"])
    assert locs[7] == ["(order)"] and "bytes" in rows[7]["errors"][0]["msg"]
    assert locs[8] == ["(order)"]

    workers(concurrency=4)
    accepted = [rows[n]["key"] for n in (1, 6, 9)]
    assert {r.status for r in wait_final(dispatcher, accepted)} == {"completed"}
    assert sorted(sandbox.control.stats()["posts"]) == ["ord-00001", "ord-00006", "ord-00009"]
