"""The ledger's scripts against a real redis-server, with an injected clock; in every test here
each script may touch only the keys it names in KEYS (Redis's scripting contract)."""

from __future__ import annotations

import dataclasses
import itertools
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from worker import outcomes
from worker.claims import Claim, NewOrder
from worker.flow import CircuitPolicy, RateLimit
from worker.ledger import Keys, Ledger, LedgerConfig, scripts
from worker.ledger.callbacks import CallbackLedger
from worker.ledger.dead import DeadLetters
from worker.ledger.records import read_events, read_records

K = Keys()

# Put before every script in these tests: `redis.call` refuses a key the script was not given
# in KEYS (the first argument of each command used here is its key; DEL's are all keys).
ONLY_DECLARED_KEYS = """
local redis = (function(real)
  local declared = {}
  for _, key in ipairs(KEYS) do declared[key] = true end
  local function call(command, ...)
    local args, name = {...}, string.upper(command)
    local n = ({TIME = 0, DEL = #args})[name] or 1
    for i = 1, n do
      if not declared[args[i]] then
        error('undeclared key ' .. tostring(args[i]) .. ' in ' .. name)
      end
    end
    return real.call(command, ...)
  end
  return setmetatable({call = call}, {__index = real})
end)(redis)
"""


@pytest.fixture(autouse=True)
def only_declared_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    source = scripts.source
    monkeypatch.setattr(scripts, "source", lambda name: ONLY_DECLARED_KEYS + source(name))


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_ledger(client: redis.Redis, clock: Clock, **config: object) -> Ledger:
    return Ledger(client, LedgerConfig(queue="q", lease_s=3.0, **config), clock=clock)  # type: ignore[arg-type]


@pytest.fixture
def ledger(redis_client: redis.Redis, clock: Clock) -> Ledger:
    return make_ledger(redis_client, clock)


def done(claim: Claim) -> outcomes.Finish:
    return outcomes.completed(claim, api_id="a1", remote_id="r1", test_url="https://t/1")


def dead(claim: Claim, status: int) -> outcomes.Finish:
    return outcomes.dead(claim, stage="submit", reason="rejected", http_status=status, error="x")


def new(i: int, account: str = "acc") -> NewOrder:
    return NewOrder(f"{account}:o{i}", account, f"o{i}", json.dumps({"id": f"o{i}"}))


def queued_keys(client: redis.Redis) -> list[list[str]]:
    """The key lists of the messages on the queue, oldest first."""
    return [json.loads(json.loads(m)["body"])[0][0] for m in reversed(client.lrange("q", 0, -1))]


def test_enqueue_creates_record_and_message_once(ledger: Ledger, redis_client: redis.Redis) -> None:
    """Enqueue creates record and message once."""
    assert ledger.enqueue([new(1), new(2)]) == ["accepted", "accepted"]
    assert ledger.enqueue([new(1)]) == ["queued"]
    assert sorted(k for keys in queued_keys(redis_client) for k in keys) == ["acc:o1", "acc:o2"]
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.status, record.attempts, record.account_id, record.order_id) == (
        "queued",
        0,
        "acc",
        "o1",
    )


def test_a_key_twice_in_one_batch_is_a_duplicate(ledger: Ledger) -> None:
    """A key twice in one batch is a duplicate."""
    assert ledger.enqueue([new(1), new(1)]) == ["accepted", "queued"]


def test_a_script_touching_an_undeclared_key_fails_here(redis_client: redis.Redis) -> None:
    """A script touching an undeclared key fails here."""
    script = ONLY_DECLARED_KEYS + "redis.call('GET', KEYS[1]); return redis.call('GET', 'other')"
    with pytest.raises(redis.ResponseError, match="undeclared key other in GET"):
        redis_client.eval(script, 1, "declared")


def test_racing_producers_create_each_record_once(redis_client: redis.Redis, clock: Clock) -> None:
    """Racing producers create each record once."""
    orders = [new(i) for i in range(200)]

    def produce(_: int) -> list[str]:
        return make_ledger(redis_client, clock).enqueue(orders)

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(produce, range(4)))
    accepted = [sum(r[i] == "accepted" for r in replies) for i in range(200)]
    assert accepted == [1] * 200
    assert sum(len(keys) for keys in queued_keys(redis_client)) == 200


def test_only_one_worker_claims_an_order(ledger: Ledger) -> None:
    """Only one worker claims an order."""
    ledger.enqueue([new(1)])
    first = ledger.claim(["acc:o1"], "w1")
    second = ledger.claim(["acc:o1"], "w2")
    assert [c.key for c in first] == ["acc:o1"]
    assert second == []


def test_begin_counts_an_attempt_once_and_only_for_the_holder(ledger: Ledger) -> None:
    """Begin counts an attempt once and only for the holder."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    assert ledger.begin(claim).go and claim.attempts == 1
    assert ledger.begin(claim).go and claim.attempts == 1  # a repeated call (retried command)
    claim.token = "someone-else"
    assert ledger.begin(claim).verdict == "lost"


def test_complete_records_the_result_and_tells_the_stream(
    ledger: Ledger, redis_client: redis.Redis
) -> None:
    """Complete records the result and tells the stream."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    assert ledger.finish(claim, done(claim))
    # The same attempt told again (a resend) is answered as recorded, and adds nothing; another
    # attempt's ending is not recorded over a final one.
    assert ledger.finish(claim, done(claim))
    other = dataclasses.replace(claim, token="another")
    assert not ledger.finish(other, done(other))
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.status, record.test_url, record.remote_id) == ("completed", "https://t/1", "r1")
    (event,) = read_events(redis_client, K)
    assert event.type == "order.completed"
    assert event.data["test_url"] == "https://t/1" and event.data["key"] == "acc:o1"
    assert redis_client.zcard(K.leases) == 0
    # A stray second message for a completed order claims nothing: it is never POSTed again.
    redis_client.zadd(K.queued, {"acc:o1": 0})
    assert ledger.claim(["acc:o1"], "w2") == []


def test_retry_waits_in_the_ledger_until_due(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """Retry waits in the ledger until due."""
    ledger.enqueue([new(1)])
    redis_client.delete("q")
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    assert ledger.finish(claim, outcomes.retrying(delay_s=10, error="x"))
    assert redis_client.zscore(K.waiting, "acc:o1") == pytest.approx((clock.t + 10) * 1000)
    clock.t += 9
    assert ledger.pump().due == 0
    clock.t += 2
    assert ledger.pump().due == 1
    assert queued_keys(redis_client) == [["acc:o1"]]
    (again,) = ledger.claim(["acc:o1"], "w2")
    assert again.attempts == 1


def test_retry_by_a_worker_that_lost_its_lease_is_refused(ledger: Ledger) -> None:
    """Retry by a worker that lost its lease is refused."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    claim.token = "stale"
    assert not ledger.finish(claim, outcomes.retrying(delay_s=1, error="x"))
    assert not ledger.finish(claim, dead(claim, 422))


def test_expired_lease_after_sending_is_ambiguous_and_requeued(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """Expired lease after sending is ambiguous and requeued."""
    ledger.enqueue([new(1), new(2)])
    redis_client.delete("q")
    sent, _unsent = ledger.claim(["acc:o1", "acc:o2"], "w1")
    ledger.begin(sent)
    clock.t += 4  # past the 3 s lease
    report = ledger.pump()
    assert (report.lost, report.held) == (2, [])
    records = read_records(redis_client, K, ["acc:o1", "acc:o2"])
    assert [(r.ambiguous_attempts, r.attempts) for r in records if r] == [(1, 1), (0, 0)]
    assert sorted(k for keys in queued_keys(redis_client) for k in keys) == ["acc:o1", "acc:o2"]


def test_expired_lease_with_hold_dead_letters_the_ambiguous_order(
    redis_client: redis.Redis, clock: Clock
) -> None:
    """Expired lease with hold dead letters the ambiguous order."""
    ledger = make_ledger(redis_client, clock, hold_ambiguous=True)
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    clock.t += 4
    assert ledger.pump().held == ["acc:o1"]
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.status, record.dead_reason, record.ambiguous_attempts) == (
        "dead",
        "ambiguous",
        1,
    )
    assert [e.type for e in read_events(redis_client, K)] == ["order.failed"]


def test_renew_keeps_a_live_lease(ledger: Ledger, redis_client: redis.Redis, clock: Clock) -> None:
    """Renew keeps a live lease."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    clock.t += 2
    assert ledger.renew([(claim.key, claim.token)]) == 1
    assert ledger.renew([(claim.key, "not-mine")]) == 0
    clock.t += 2  # 4 s after the claim, 2 s after the renewal
    assert ledger.pump().lost == 0


def test_an_order_whose_message_was_lost_is_queued_again(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """An order whose message was lost is queued again."""
    ledger.enqueue([new(1)])
    redis_client.delete("q")  # the message vanished with a worker
    clock.t += 1
    assert ledger.pump().stale == 0  # too recent to tell
    clock.t += 3
    assert ledger.pump().stale == 1
    assert queued_keys(redis_client) == [["acc:o1"]]


def test_no_message_is_added_while_the_queue_still_holds_some(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """No message is added while the queue still holds some."""
    ledger.enqueue([new(1)])
    clock.t += 60  # a deep queue: old, but its message is still waiting
    assert ledger.pump().stale == 0
    assert redis_client.llen("q") == 1


def test_kill_dead_letters_and_tells_the_stream(ledger: Ledger, redis_client: redis.Redis) -> None:
    """Kill dead letters and tells the stream."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    assert ledger.finish(claim, dead(claim, 422))
    assert redis_client.zscore(K.dead, "acc:o1") is not None
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.status, record.dead_reason, record.http_status) == ("dead", "rejected", 422)
    (event,) = read_events(redis_client, K)
    assert (event.type, event.data["http_status"]) == ("order.failed", "422")


def test_a_429_pauses_every_worker_and_an_outage_opens_the_circuit(
    redis_client: redis.Redis, clock: Clock
) -> None:
    """A 429 pauses every worker and an outage opens the circuit."""
    ledger = make_ledger(redis_client, clock, circuit=CircuitPolicy(threshold=2, cooldown_s=5))
    ledger.enqueue([new(i) for i in range(6)])
    claims = ledger.claim([f"acc:o{i}" for i in range(6)], "w1")
    first, second, third, fourth, fifth, sixth = claims

    ledger.begin(first)
    ledger.finish(first, outcomes.retrying(delay_s=1, error="x", flow="429:2000"))
    gate = ledger.begin(second)
    assert gate.verdict == "paused" and 1.5 < gate.wait_s <= 2.0
    redis_client.delete(ledger.config.flow.pause)

    for claim in (second, third):  # two failures in a row: open
        assert ledger.begin(claim).go
        ledger.finish(claim, outcomes.retrying(delay_s=1, error="x", flow="fail"))
    gate = ledger.begin(fourth)
    assert gate.verdict == "open" and gate.wait_s == pytest.approx(5, abs=0.01)
    assert fourth.attempts == 0  # a shut gate uses no attempt

    clock.t += 5  # cooldown over: one probe, the others wait for it
    assert ledger.begin(fourth).verdict == "probe"
    assert ledger.begin(fifth).verdict == "probing"
    ledger.finish(fourth, done(fourth))
    assert ledger.begin(fifth).verdict == "go"
    assert redis_client.exists(ledger.config.flow.circuit) == 0
    assert sixth.attempts == 0


def test_starts_are_paced_by_reservation(redis_client: redis.Redis, clock: Clock) -> None:
    """Starts are paced by reservation."""
    ledger = make_ledger(redis_client, clock, rate=RateLimit(limit=10, window_ms=1000))
    ledger.enqueue([new(i) for i in range(30)])
    claims = ledger.claim([f"acc:o{i}" for i in range(30)], "w1")
    gates = [ledger.begin(c) for c in claims]
    went = [g for g in gates if g.go]
    # Each start is reserved about 1/10 s (over the headroom) after the one before, up to the
    # 1 s a thread may wait; the rest are told when to come back.
    starts = [g.start_in_s for g in went]
    assert starts == sorted(starts) and starts[0] < 0.01
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0.09 <= gap <= 0.12 for gap in gaps)
    assert starts[-1] <= 1.0
    assert all(g.verdict == "rate" and 0.9 < g.wait_s < 3.1 for g in gates if not g.go)


def test_the_pump_forgets_dead_letters_past_the_retention(
    redis_client: redis.Redis, clock: Clock
) -> None:
    """The pump forgets dead letters past the retention."""
    ledger = make_ledger(redis_client, clock, ttl_s=100)
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.finish(
        claim,
        outcomes.dead(claim, stage="submit", reason="rejected", http_status=422, error="x"),
    )
    redis_client.zadd(K.workers, {"gone@host": int((clock.t - 90_000) * 1000)})
    ledger.pump()
    assert redis_client.zcard(K.dead) == 1
    clock.t += 101
    ledger.pump()
    assert redis_client.zcard(K.dead) == 0
    assert redis_client.zcard(K.workers) == 0


def test_the_stream_is_trimmed_and_records_expire_with_the_retention(
    redis_client: redis.Redis, clock: Clock
) -> None:
    """The stream is trimmed and records expire with the retention."""
    ledger = make_ledger(redis_client, clock, stream_maxlen=10, ttl_s=3600)
    ledger.enqueue([new(i) for i in range(300)])
    for claim in ledger.claim([f"acc:o{i}" for i in range(300)], "w1"):
        ledger.finish(claim, done(claim))
    # Trimming is approximate (whole stream nodes of 100 entries): far fewer than 300 remain.
    assert redis_client.xlen(K.events) <= 10 + 100
    assert 0 < redis_client.ttl(K.record("acc:o1")) <= 3600


def test_postponing_gives_the_attempt_back_and_keeps_the_history(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """finish applies every change it is given: record fields, additions, history."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    attempt = {"attempt": 1, "outcome": "retry", "error": "é"}
    retry = outcomes.retrying(delay_s=1, error="é", ambiguous=True, history=attempt)
    assert ledger.finish(claim, retry)
    clock.t += 2
    ledger.pump()
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    ledger.finish(claim, outcomes.postponed(delay_s=1, reason="rate", counted=True))
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.attempts, record.ambiguous_attempts, record.last_error) == (1, 1, "é")
    assert (record.status, record.waiting_for) == ("queued", "rate")
    assert [json.loads(e) for e in redis_client.lrange(K.history("acc:o1"), 0, -1)] == [attempt]


def test_a_callback_is_handed_on_retried_and_taken_back_from_a_lost_worker(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """A callback is handed on retried and taken back from a lost worker."""
    callbacks = CallbackLedger(ledger)
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    ledger.finish(
        claim,
        outcomes.completed(claim, api_id="a", remote_id="r", test_url="u", with_callback=True),
    )
    assert ledger.pump().callbacks == 1
    (sent,) = callbacks.claim(["acc:o1"])
    assert callbacks.claim(["acc:o1"]) == []
    assert json.loads(sent.body)["type"] == "order.completed"
    assert callbacks.failed(sent, retry_in_s=5, error="http: 500", http_status=500)
    clock.t += 6
    assert ledger.pump().callbacks == 1
    (lost,) = callbacks.claim(["acc:o1"])
    clock.t += 4  # past the 3 s lease: its worker is presumed dead
    assert ledger.pump().callbacks == 1
    assert not callbacks.delivered(lost)
    (again,) = callbacks.claim(["acc:o1"])
    assert (again.attempts, callbacks.delivered(again)) == (1, True)
    record = read_records(redis_client, K, ["acc:o1"])[0]
    assert record is not None
    assert (record.status, record.callback) == ("delivered", "delivered")


def test_dead_letters_are_replayed_once_and_purged_for_good(
    ledger: Ledger, redis_client: redis.Redis
) -> None:
    """Dead letters are replayed once and purged for good."""
    letters = DeadLetters(ledger)
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.finish(claim, dead(claim, 422))
    assert letters.replay(["acc:o1"]) == ["acc:o1"]
    assert letters.replay(["acc:o1"]) == []
    (claim,) = ledger.claim(["acc:o1"], "w1")
    assert claim.attempts == 0
    ledger.finish(claim, dead(claim, 422))
    assert letters.purge(["acc:o1", "acc:unknown"]) == ["acc:o1"]
    assert read_records(redis_client, K, ["acc:o1"]) == [None]
    assert redis_client.zcard(K.dead) == 0


def test_scripts_redis_forgot_are_loaded_again_for_a_pipelined_step(
    ledger: Ledger, redis_client: redis.Redis, clock: Clock
) -> None:
    """After a restart (SCRIPT FLUSH here) the pump's and finish's scripts are loaded again."""
    ledger.enqueue([new(1)])
    (claim,) = ledger.claim(["acc:o1"], "w1")
    ledger.begin(claim)
    redis_client.script_flush()
    fail = outcomes.retrying(delay_s=1, error="x", flow="fail")
    assert ledger.finish(claim, fail)
    assert redis_client.hget(ledger.config.flow.circuit, "failures") == "1"
    redis_client.script_flush()
    clock.t += 2
    assert ledger.pump().due == 1
