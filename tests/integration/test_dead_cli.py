"""`order-dispatch dead ...` against a real Redis: filters, show, purge, the bulk guard."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from producer.api import Dispatcher
from producer.cli import main
from tests.factories import make_order
from worker import outcomes


@pytest.fixture
def dead_orders(dispatcher: Dispatcher) -> list[str]:
    """Three dead letters: two rejected (422, 409), one exhausted."""
    report = dispatcher.enqueue_many([make_order(i) for i in range(4)])
    keys = [r.key for r in report.results if r.key]
    ledger = dispatcher.ledger
    for key, reason, status in zip(
        keys, ["rejected", "rejected", "exhausted"], [422, 409, None], strict=False
    ):
        (claim,) = ledger.claim([key], "w")
        ledger.begin(claim)
        outcome = outcomes.dead(
            claim,
            stage="submit",
            reason=reason,
            http_status=status,
            error=f"x {status}",
            history={"attempt": 1, "outcome": reason},
        )
        ledger.finish(claim, outcome)
    return keys[:3]


def run(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    return result.exit_code, result.output


def test_filters_show_and_purge(dead_orders: list[str], worker_env: dict[str, str]) -> None:
    """`dead list` filters by reason, `dead show` prints one letter, `dead purge` removes it."""
    code, output = run(worker_env, "dead", "list", "--json", "--reason", "rejected")
    assert code == 0
    rows = [json.loads(line) for line in output.splitlines()]
    assert sorted(r["key"] for r in rows) == sorted(dead_orders[:2])
    assert {r["http_status"] for r in rows} == {422, 409}

    code, output = run(worker_env, "dead", "list", "--json", "--stage", "callback")
    assert (code, output) == (0, "")
    code, output = run(worker_env, "dead", "list", "--json", "--since", "1h")
    assert code == 0 and len(output.splitlines()) == 3
    code, output = run(worker_env, "dead", "list", "--since", "yesterday-ish")
    assert code == 2 and "--since" in output

    code, output = run(worker_env, "dead", "show", dead_orders[0], "--json")
    letter = json.loads(output)
    assert letter["reason"] == "rejected" and letter["history"][0]["attempt"] == 1

    code, output = run(worker_env, "dead", "purge", "--all", "--reason", "exhausted", input="n\n")
    assert code == 1  # asked, and the answer was no
    code, output = run(
        worker_env, "dead", "purge", "--all", "--reason", "exhausted", "--yes", "--json"
    )
    assert code == 0 and json.loads(output)["key"] == dead_orders[2]
    code, output = run(worker_env, "dead", "list", "--json")
    assert len(output.splitlines()) == 2
    code, output = run(worker_env, "dead", "purge")
    assert code == 2  # neither keys nor --all
