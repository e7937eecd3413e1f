"""One clock (issue 13): the ledger keeps Redis's time, whatever the host's clock says."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import redis

from worker import outcomes
from worker.claims import NewOrder
from worker.flow import CircuitPolicy, RateLimit
from worker.ledger import Keys, Ledger, LedgerConfig
from worker.ledger.callbacks import CallbackLedger
from worker.timefmt import iso

K = Keys()
CONFIG = LedgerConfig(
    queue="q",
    lease_s=5,
    rate=RateLimit(10_000_000, 60_000),
    circuit=CircuitPolicy(threshold=1, cooldown_s=30),
)
SKEW_S = 120.0


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def parse_ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


@pytest.mark.parametrize(
    "ms",
    [0, 951_782_400_000, 951_868_799_999, 1_800_000_000_123, 4_107_542_400_000, 4_102_444_799_999],
    ids=["epoch", "2000-02-29", "2000-02-29-end", "2027", "2100-03-01", "2099-12-31-end"],
)
def test_lua_writes_times_as_timefmt_does(redis_client: redis.Redis, ms: int) -> None:
    """Lua writes ISO times exactly as worker/timefmt.py does, leap days and centuries included."""
    from worker.ledger.scripts import source

    lua = source("trim").split("local DEAD")[0] + "return iso(tonumber(ARGV[1]))"
    assert redis_client.eval(lua, 0, ms) == iso(ms / 1000)


def test_a_host_clock_ahead_moves_no_time_the_ledger_keeps(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the host's clock 120 s ahead, every ledger time follows Redis's clock."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + SKEW_S)
    ledger = Ledger(redis_client, CONFIG)
    order = NewOrder("acc:o1", "acc", "o1", json.dumps({"id": "o1"}), "https://cb.example/x")
    ledger.enqueue([order])
    t0 = redis_ms(redis_client)
    record = redis_client.hgetall(K.record("acc:o1"))
    assert abs(parse_ms(record["created_at"]) - t0) < 1000
    assert abs(int(record["created_ms"]) - t0) < 1000

    (claim,) = ledger.claim(["acc:o1"], "w1")
    assert abs(redis_client.zscore(K.leases, "acc:o1") - (t0 + 5000)) < 1000  # type: ignore[operator]
    # The budget is weighed on the host's clock: its deadline moved onto it.
    assert abs(claim.deadline_ms - (time.time() + CONFIG.deadline_s) * 1000) < 1000
    assert ledger.renew([(claim.key, claim.token)]) == 1
    assert abs(redis_client.zscore(K.leases, "acc:o1") - (t0 + 5000)) < 1000  # type: ignore[operator]
    assert ledger.pump().lost == 0  # a skewed pump sees no lapsed lease

    assert ledger.begin(claim).go
    ledger.finish(claim, outcomes.retrying(delay_s=10, error="x", flow="fail"))
    t1 = redis_ms(redis_client)
    assert abs(redis_client.zscore(K.waiting, "acc:o1") - (t1 + 10_000)) < 1000  # type: ignore[operator]
    record = redis_client.hgetall(K.record("acc:o1"))
    assert abs(parse_ms(record["next_attempt_at"]) - (t1 + 10_000)) < 1000
    assert abs(parse_ms(record["updated_at"]) - t1) < 1000
    open_until = int(redis_client.hget(CONFIG.flow.circuit, "open_until_ms"))  # type: ignore[arg-type]
    assert abs(open_until - (t1 + 30_000)) < 1000
    assert ledger.gates_shut()
    assert ledger.pump().due == 0  # not due for 10 s on Redis's clock, whatever the host says


def test_callback_times_are_redis_time(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callback schedules and leases are on Redis's clock."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + SKEW_S)
    ledger = Ledger(redis_client, CONFIG)
    ledger.enqueue([NewOrder("acc:o1", "acc", "o1", "{}", "https://cb.example/x")])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    done = outcomes.completed(claim, api_id="a", remote_id="r", test_url="u", with_callback=True)
    ledger.finish(claim, done)
    t0 = redis_ms(redis_client)
    record = redis_client.hgetall(K.record("acc:o1"))
    assert abs(parse_ms(record["completed_at"]) - t0) < 1000
    assert abs(parse_ms(json.loads(record["cb_event"])["timestamp"]) - t0) < 1000
    ((_, fields),) = redis_client.xrange(K.events)  # type: ignore[misc]
    assert abs(parse_ms(fields["timestamp"]) - t0) < 1000
    ledger.pump()
    callbacks = CallbackLedger(ledger)
    (cb,) = callbacks.claim(["acc:o1"])
    assert abs(redis_client.zscore(K.cb_leases, "acc:o1") - (t0 + 5000)) < 1000  # type: ignore[operator]
    assert callbacks.failed(cb, retry_in_s=20, error="x", http_status=500)
    assert abs(redis_client.zscore(K.cb_waiting, "acc:o1") - (t0 + 20_000)) < 1000  # type: ignore[operator]
