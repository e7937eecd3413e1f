"""What one worker process keeps going (worker/process/runtime.py), against a real redis-server:
the keeper renews the leases it holds, writes the heartbeat and runs the pump; the dispatch path
hands a message's keys to the event loop and stops claiming once the worker shuts down."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from tests.unit.conftest import TEST_URL, MakeRuntime, StubApi, new_orders
from worker.capacity import ShuttingDown
from worker.ledger.keys import Keys
from worker.ledger.records import read_records
from worker.obs import deaths
from worker.process.runtime import Held

K = Keys()
LEASE_S = 0.6  # the keeper then runs every 0.2 s


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll `check` until it holds; fail after `timeout_s` (a bound on waiting, not on speed)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def test_held_leases_are_renewed_past_their_lease_time(
    make_runtime: MakeRuntime, redis_client: redis.Redis
) -> None:
    """A lease the process holds outlives its lease time; one it let go of is taken back."""
    rt = make_runtime(lease_s=LEASE_S)
    kept, dropped = new_orders(rt, 2)
    claims = rt.ledger.claim([kept, dropped], rt.node)
    first_expiry = redis_client.zscore(K.leases, kept)
    assert first_expiry is not None
    rt.held_orders.add([(c.key, c.token) for c in claims if c.key == kept])
    rt.start()
    eventually(lambda: redis_client.zscore(K.leases, dropped) is None)  # the pump took it back
    time.sleep(3 * LEASE_S)
    expiry = redis_client.zscore(K.leases, kept)
    assert expiry is not None and expiry > first_expiry + 1000 * LEASE_S
    [record_kept, record_dropped] = read_records(redis_client, K, [kept, dropped])
    assert record_kept is not None and record_kept.status == "submitting"
    assert record_dropped is not None and record_dropped.status != "submitting"
    assert redis_client.zscore(K.queued, dropped) is not None  # queued again, for any worker


def test_the_keeper_writes_the_workers_heartbeat(
    make_runtime: MakeRuntime, redis_client: redis.Redis
) -> None:
    """A running keeper says the worker is alive, under its node name, with a recent time."""
    rt = make_runtime(lease_s=LEASE_S)
    before_ms = time.time() * 1000
    rt.start()
    eventually(lambda: redis_client.zscore(K.workers, rt.node) is not None)
    assert (redis_client.zscore(K.workers, rt.node) or 0) >= before_ms - 1000


def test_the_keeper_puts_due_retries_back_on_the_queue(
    make_runtime: MakeRuntime, redis_client: redis.Redis
) -> None:
    """An order whose retry is due is queued again by the keeper's pump, with a message."""
    rt = make_runtime(lease_s=LEASE_S)
    [key] = new_orders(rt, 1)
    redis_client.delete(rt.settings.queue)  # its first message was consumed
    redis_client.zrem(K.queued, key)
    redis_client.zadd(K.waiting, {key: 0})  # due since 1970
    redis_client.hset(K.record(key), "status", "retrying")
    rt.start()
    eventually(lambda: redis_client.llen(rt.settings.queue) == 1)
    assert redis_client.zscore(K.waiting, key) is None


def test_the_keeper_outlives_a_failing_step(
    make_runtime: MakeRuntime, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis error in one round (logged) does not stop the keeper: the next round runs."""
    rt = make_runtime(lease_s=LEASE_S)
    failures: list[int] = []
    renew = rt.ledger.renew

    def flaky(held: object, *, callbacks: bool = False) -> int:
        if not failures:
            failures.append(1)
            raise redis.ConnectionError("simulated outage")
        return renew(held, callbacks=callbacks)  # type: ignore[arg-type]

    monkeypatch.setattr(rt.ledger, "renew", flaky)
    rt.start()
    eventually(lambda: redis_client.zscore(K.workers, rt.node) is not None)
    assert failures == [1]


def test_an_order_lost_mid_post_under_hold_is_reported_once(
    make_runtime: MakeRuntime, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `hold`, an order whose worker vanished with a POST on the wire dies `ambiguous` and
    Sentry hears of it (kind `worker_lost`)."""
    reported: list[dict[str, object]] = []
    monkeypatch.setattr(deaths, "report_dead", lambda **kw: reported.append(kw))
    rt = make_runtime(lease_s=LEASE_S, on_ambiguous="hold")
    [key] = new_orders(rt, 1)
    [claim] = rt.ledger.claim([key], "a-worker-that-dies")
    assert rt.ledger.begin(claim).go  # the POST is "on the wire" when the worker dies
    rt.start()
    eventually(lambda: bool(reported))
    [record] = read_records(redis_client, K, [key])
    assert record is not None and (record.status, record.dead_reason) == ("dead", "ambiguous")
    assert [(r["key"], r["reason"], r["kind"]) for r in reported] == [
        (key, "ambiguous", "worker_lost")
    ]


def test_stop_ends_the_keeper(make_runtime: MakeRuntime) -> None:
    """After `stop` the keeper thread is gone (no more renewals on a worker's behalf)."""
    rt = make_runtime(lease_s=LEASE_S)
    rt.start()
    keeper = rt._keeper
    assert keeper is not None and keeper.is_alive()
    rt.stop()
    assert not keeper.is_alive()


def test_dispatch_attempts_the_named_orders_on_the_event_loop(
    make_runtime: MakeRuntime, redis_client: redis.Redis, stub_api: StubApi
) -> None:
    """`dispatch(keys)` from a pool thread places each order once and returns when all are done;
    no lease is left held."""
    rt = make_runtime()
    keys = new_orders(rt, 3)
    assert sorted(rt.dispatch(keys)) == ["completed"] * 3
    assert sorted(stub_api.seen) == sorted(keys)
    records = read_records(redis_client, K, keys)
    assert [(r.status, r.test_url) for r in records if r] == [("completed", TEST_URL)] * 3
    assert rt.held_orders.pairs() == []


def test_once_intake_is_closed_dispatch_claims_nothing(
    make_runtime: MakeRuntime, redis_client: redis.Redis, stub_api: StubApi
) -> None:
    """A worker shutting down raises ShuttingDown for a new message and leaves its orders
    queued for another worker, even before its first message."""
    rt = make_runtime()
    [key] = new_orders(rt, 1)
    rt.close_intake()
    with pytest.raises(ShuttingDown):
        rt.dispatch([key])
    [record] = read_records(redis_client, K, [key])
    assert record is not None and record.status == "queued"
    assert stub_api.seen == []


def test_held_keeps_only_the_current_token_of_each_key() -> None:
    """Letting go with an old token never drops the lease a newer claim holds."""
    held = Held()
    held.add([("k", "old")])
    held.add([("k", "new")])
    held.discard("k", "old")
    assert held.pairs() == [("k", "new")]
    held.discard("k", "new")
    assert held.pairs() == []
