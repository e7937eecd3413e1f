"""One real run seen from every side an operator watches (SPEC §7): Sentry, the exporter,
`stats`, `health` and the log lines, with a real worker subprocess, against what happened."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from producer.api import Dispatcher
from producer.cli import main
from sandbox.processes import free_port, kill, wait_until
from tests.conftest import API_KEY, Sandbox, WorkerFactory, make_settings
from tests.factories import make_order, wait_final
from tests.fakes import Ingest
from worker.obs.metrics import start_metrics_server

NAME = "Zyxwvuts"
EMAIL = "zq.candidate@example.org"
SECRET = "whsec_RElTVElOQ1RzZWNyZXRESVNUSU5DVHNlY3JldA=="  # distinctive, valid base64


def pii_order(i: int, prefix: str) -> dict[str, Any]:
    order = make_order(i, prefix=prefix)
    order["candidate"].update(
        first_name=NAME, last_name=NAME, emails=[{"type": "personal", "value": EMAIL}]
    )
    order["requester"]["email"] = EMAIL
    return order


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_run_seen_through_sentry_metrics_stats_health_and_logs(
    dispatcher: Dispatcher,
    sandbox: Sandbox,
    workers: WorkerFactory,
    worker_env: dict[str, str],
    tmp_path: Path,
    redis_url: str,
) -> None:
    """One run reads the same in Sentry, metrics, stats, health and logs, with no PII leaked."""
    ingest = Ingest()
    try:
        sandbox.control.faults(fail_status=503, fail_times=1)
        good = [
            r.key
            for r in dispatcher.enqueue_many([pii_order(i, "good") for i in range(5)]).results
            if r.key
        ]
        worker = workers(
            name="w1", concurrency=4, SENTRY_DSN=ingest.dsn, DISPATCH_CALLBACK_SECRET=SECRET
        )
        wait_final(dispatcher, good, statuses={"completed"})
        sandbox.control.faults(reject_status=422)
        bad = [
            r.key
            for r in dispatcher.enqueue_many([pii_order(i, "bad") for i in range(3)]).results
            if r.key
        ]
        assert {r.status for r in wait_final(dispatcher, bad)} == {"dead"}

        # Sentry: one event per dead order, grouped; none for the orders that retried.
        wait_until(lambda: len(ingest.events()) >= 3, timeout_s=20, what="three Sentry events")
        time.sleep(1.5)
        events = ingest.events()
        assert len(events) == 3
        assert {tuple(e["fingerprint"]) for e in events} == {
            ("order-dead", "submit", "http_422", "422")
        }
        assert sorted(e["contexts"]["order"]["key"] for e in events) == sorted(bad)
        assert {e["tags"]["stage"] for e in events} == {"submit"}
        raw = b"".join(ingest.bodies)
        for forbidden in (NAME, EMAIL, "assessments.sandbox", API_KEY, SECRET, "RElTVElOQ1Rz"):
            assert forbidden.encode() not in raw, forbidden

        # The exporter, from the shared counters.
        server = start_metrics_server("127.0.0.1", free_port(), make_settings(redis_url))
        try:
            m = scrape(server.port)
        finally:
            server.close()
        assert m[("order_dispatch_orders_total", (("outcome", "completed"),))] == 5
        assert m[("order_dispatch_orders_total", (("outcome", "dead"),))] == 3
        assert m[("order_dispatch_orders_total", (("outcome", "accepted"),))] == 8
        assert m[("order_dispatch_retries_total", (("class", "retry"),))] == 5
        assert m[("order_dispatch_dead_letters", (("stage", "submit"),))] == 3
        assert m[("order_dispatch_api_latency_seconds_count", ())] == 13  # 5 + 5 + 3 answers
        assert m[("order_dispatch_workers_alive", ())] == 1

        # stats --json: the same run.
        stats = json.loads(CliRunner().invoke(main, ["stats", "--json"], env=worker_env).output)
        flat = json.dumps(stats)
        assert stats["counters"]["orders_completed"] == 5
        assert stats["counters"]["orders_dead"] == 3
        assert stats["dead_submit"] == 3 and "w1@" in flat

        # Logs: JSON lines, each step with its order key, and no PII.
        log = (tmp_path / "w1.log").read_text()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        completed = {x["order_key"] for x in lines if x["event"] == "order.completed"}
        assert completed == set(good)
        assert {x["order_key"] for x in lines if x["event"] == "order.dead"} == set(bad)
        assert all("order_key" in x for x in lines if x["event"].startswith("order."))
        for forbidden in (NAME, EMAIL, "assessments.sandbox", API_KEY, SECRET):
            assert forbidden not in log, forbidden

        # Health: alive, then not once the worker is SIGKILLed.
        health = ["health", "--max-age-s", "3"]
        assert CliRunner().invoke(main, health, env=worker_env).exit_code == 0
        kill(worker)
        wait_until(
            lambda: CliRunner().invoke(main, health, env=worker_env).exit_code == 1,
            timeout_s=15,
            what="health to notice the dead worker",
        )
    finally:
        ingest.close()
