"""What a worker holds and no longer holds, against a real redis-server (SPEC §4, §10): orders
in a message that waits inside a live worker are never republished, those of a dead worker's
messages come back first in line within a lease whatever the backlog, and the outcomes of a
lease a worker lost change nothing shared."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import redis

from worker import outcomes
from worker.claims import NewOrder
from worker.flow import CircuitPolicy
from worker.ledger import Keys, Ledger, LedgerConfig
from worker.ledger.records import read_records

pytestmark = pytest.mark.integration

K = Keys()
LEASE_S = 0.3


def ledger_for(client: redis.Redis, **config: object) -> Ledger:
    return Ledger(client, LedgerConfig(queue="q", lease_s=LEASE_S, **config))  # type: ignore[arg-type]


def new(i: int) -> NewOrder:
    return NewOrder(f"acc:o{i}", "acc", f"o{i}", json.dumps({"id": f"o{i}"}))


def message_keys(raw: str) -> list[str]:
    keys: list[str] = json.loads(json.loads(raw)["body"])[0][0]
    return keys


def test_orders_waiting_inside_a_live_worker_are_not_republished(
    redis_client: redis.Redis,
) -> None:
    """The queue drained and the message older than a lease: while the worker renews its
    note, the pump adds no second message for its orders."""
    ledger = ledger_for(redis_client)
    ledger.enqueue([new(1), new(2)])
    taken = [redis_client.rpop("q") for _ in range(redis_client.llen("q"))]  # a worker took them
    held = [key for message in taken if message for key in message_keys(message)]
    assert sorted(held) == ["acc:o1", "acc:o2"]
    ledger.reserve(held)
    for _ in range(8):  # 2.4 s: eight leases
        time.sleep(LEASE_S / 3)
        ledger.reserve(held)  # the keeper's renewal
        report = ledger.pump()
        assert (report.stale, redis_client.llen("q")) == (0, 0)


def test_a_dead_workers_message_comes_back_first_in_line_within_a_lease(
    redis_client: redis.Redis,
) -> None:
    """A backlog that never drains: the orders of a message whose worker stopped renewing
    its note are published again where workers take the next message."""
    ledger = ledger_for(redis_client)
    ledger.enqueue([new(1)])
    taken = redis_client.rpop("q")
    assert taken is not None
    ledger.reserve(message_keys(taken))
    ledger.enqueue([new(i) for i in range(2, 40)])  # the backlog behind it
    time.sleep(LEASE_S * 1.5)
    report = ledger.pump()
    assert report.stale == 1
    head = redis_client.lindex("q", -1)  # the next message a worker takes (BRPOP's end)
    assert head is not None and message_keys(head) == ["acc:o1"]
    assert redis_client.zcard(K.reserved) == 0


def test_a_handed_back_message_leaves_no_note(redis_client: redis.Redis) -> None:
    """Unreserving forgets the note: nothing is republished for it later."""
    ledger = ledger_for(redis_client)
    ledger.enqueue([new(1)])
    ledger.reserve(["acc:o1"])
    ledger.unreserve(["acc:o1"])
    time.sleep(LEASE_S * 1.5)
    assert ledger.pump().stale == 0
    assert redis_client.zcard(K.reserved) == 0


def test_only_queued_orders_are_noted(redis_client: redis.Redis) -> None:
    """A note is kept only for orders still queued: a claimed one is not noted again."""
    ledger = ledger_for(redis_client)
    ledger.enqueue([new(1), new(2)])
    ledger.claim(["acc:o1"], "w1")
    assert ledger.reserve(["acc:o1", "acc:o2", "acc:nope"]) == 1


def test_a_lost_lease_outcome_changes_nothing_shared(redis_client: redis.Redis) -> None:
    """A worker paused past its lease reports failures late: the circuit, the counters and the
    record stay as the new holder left them."""
    ledger = ledger_for(redis_client, circuit=CircuitPolicy(threshold=1, cooldown_s=30))
    ledger.enqueue([new(1)])
    (zombie,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(zombie)
    time.sleep(LEASE_S * 1.5)
    assert ledger.pump().lost == 1  # the lease lapsed with the POST on the wire
    (holder,) = ledger.claim(["acc:o1"], "w2")
    counters_before = redis_client.hgetall(K.counters)
    late = outcomes.retrying(delay_s=1, error="timeout", flow="fail")
    assert not ledger.finish(zombie, late)
    assert not redis_client.exists(ledger.config.flow.circuit)
    assert redis_client.hgetall(K.counters) == counters_before
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None and record.status == "submitting"
    assert counters_before.get("retries_ambiguous") == "1"  # the pump counted the lost POST
    assert record.ambiguous_attempts == 1
    retry = outcomes.retrying(delay_s=1, error="x", flow="fail")
    assert ledger.finish(holder, retry)
    assert redis_client.hget(ledger.config.flow.circuit, "failures") == "1"


def test_a_circuit_with_nothing_to_probe_closes_by_itself(redis_client: redis.Redis) -> None:
    """Opened by orders that then died, the circuit's state lapses two cooldowns later."""
    ledger = ledger_for(redis_client, circuit=CircuitPolicy(threshold=1, cooldown_s=0.2))
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    died = outcomes.dead(claim, stage="submit", reason="ambiguous", http_status=500, error="x")
    assert ledger.finish(claim, dataclasses.replace(died, flow="fail"))
    assert ledger.gates_shut()
    time.sleep(0.5)
    assert not redis_client.exists(ledger.config.flow.circuit)
    assert not ledger.gates_shut()
