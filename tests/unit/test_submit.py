"""One attempt at one order (worker/submit.py), against a real redis-server and a real HTTP
server on 127.0.0.1: what each answer of the API does to the order's record, its schedule and
the fleet's counters. The clock, the sleep and the jitter's rng are injected (`AttemptContext`).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import redis
from aiohttp import web
from pydantic import SecretStr

from tests.ledger_reads import LedgerReads
from worker.backoff import delay_s
from worker.capacity import Capacity, ShuttingDown
from worker.claims import Claim
from worker.errors import SubmitError
from worker.flow import RateLimit
from worker.http.stackone import StackOneClient
from worker.ledger.aio import AsyncLedger
from worker.ledger.connect import connect_async
from worker.ledger.keys import Keys
from worker.ledger.records import read_history, read_records
from worker.ledger.steps import Ledger, LedgerConfig, NewOrder
from worker.process.runtime import Held
from worker.settings import HttpPolicy, RetryPolicy
from worker.submit import AttemptContext, attempt_batch, attempt_order

K = Keys()
NOW = 1_800_000_000.0
SEED = 7
CONFIG = LedgerConfig(queue="q", lease_s=30.0, rate=RateLimit(10_000_000, 60_000))
RETRY = RetryPolicy(base_s=1.0, cap_s=60.0, max_attempts=5, deadline_s=86400.0)
TEST_URL = "https://tests.example/t/1"
Reply = Callable[[], web.StreamResponse]


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ok(**body: Any) -> Reply:
    return lambda: web.json_response({"id": "api-1", "remote_id": "rem-1", **body})


def status(code: int) -> Reply:
    return lambda: web.json_response({"statusCode": code, "message": "no"}, status=code)


@dataclass
class Env(LedgerReads):
    """One worker's view: a sync ledger to set up and read, and an attempt context."""

    ledger: Ledger
    ctx: AttemptContext
    replies: list[Reply]
    posts: list[dict[str, str]] = field(default_factory=list)
    dead: list[tuple[str, str]] = field(default_factory=list)
    slept: list[float] = field(default_factory=list)
    while_asleep: Callable[[], None] | None = None  # what happens during an injected sleep
    clock: Clock = field(default_factory=lambda: Clock())

    def enqueue(self, n: int = 1) -> list[str]:
        orders = [
            NewOrder(f"acc:o{i}", "acc", f"o{i}", json.dumps({"id": f"o{i}"})) for i in range(n)
        ]
        self.ledger.enqueue(orders)
        return [o.key for o in orders]

    async def claim(self, key: str = "acc:o0") -> Claim:
        [claim] = await self.ctx.ledger.claim([key], self.ctx.worker)
        return claim

    def make_due(self) -> None:
        """Let the retry's delay pass and run the pump, which queues the order again."""
        self.clock.t += RETRY.cap_s + 1
        assert self.ledger.pump().due == 1

    def waiting_score_s(self, key: str = "acc:o0") -> float | None:
        score = self.ledger.redis.zscore(K.waiting, key)
        return None if score is None else score / 1000


Scenario = Callable[[Env], Awaitable[None]]


@pytest.fixture
def run(redis_client: redis.Redis, redis_url: str) -> Iterator[Callable[..., None]]:
    """`run(scenario, replies, **ctx_overrides)`: the scenario on a fresh event loop, with an
    API server that answers each POST with the next of `replies`."""

    def go(
        scenario: Scenario, replies: list[Reply], config: LedgerConfig = CONFIG, **overrides: Any
    ) -> None:
        async def main() -> None:
            env_box: list[Env] = []

            async def handle(request: web.Request) -> web.StreamResponse:
                env = env_box[0]
                env.posts.append(dict(request.headers))
                return env.replies.pop(0)()

            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            clock = Clock()
            ledger = Ledger(redis_client, config, clock=clock)
            aredis = connect_async(redis_url, max_connections=4, sentinel_master="mymaster")
            aledger = AsyncLedger(ledger.ops, aredis)
            client = StackOneClient(
                HttpPolicy(api_url=url, timeout_s=5, connect_timeout_s=2), SecretStr("key")
            )

            async def no_sleep(seconds: float) -> None:
                env_box[0].slept.append(seconds)
                if env_box[0].while_asleep is not None:
                    env_box[0].while_asleep()

            def on_dead(claim: Claim, stage: str, reason: str, _: SubmitError | None) -> None:
                env_box[0].dead.append((claim.key, reason))

            ctx = AttemptContext(
                ledger=aledger,
                client=client,
                retry=RETRY,
                on_ambiguous="retry",
                worker="w-test",
                on_dead=on_dead,
                clock=clock,
                sleep=no_sleep,
                rng=random.Random(SEED),
            )
            env_box.append(Env(ledger, replace(ctx, **overrides), list(replies), clock=clock))
            try:
                await scenario(env_box[0])
            finally:
                await client.close()
                await aledger.close()
                await runner.cleanup()

        asyncio.run(main())

    yield go


def test_a_2xx_completes_the_order_and_records_its_test_url(run: Callable[..., None]) -> None:
    """A 2xx with a test URL completes the order, keeps the URL and counts one completion."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "completed"
        record = env.record()
        assert (record.status, record.test_url, record.remote_id) == (
            "completed",
            TEST_URL,
            "rem-1",
        )
        assert record.attempts == 1
        assert env.counters()["orders_completed"] == "1"
        assert env.posts[0]["Idempotency-Key"] == "acc:o0"
        assert env.waiting_score_s() is None
        assert env.dead == []

    run(scenario, [ok(test_url=TEST_URL)])


def test_a_503_schedules_a_retry_after_the_backoffs_delay(run: Callable[..., None]) -> None:
    """A 503 puts the order back to wait for the backoff's delay, with one attempt used."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "retry"
        expected = delay_s(1, retry_after_s=None, policy=RETRY, rng=random.Random(SEED))
        record = env.record()
        assert record.status == "retrying"
        assert record.attempts == 1
        assert record.ambiguous_attempts == 0
        assert env.waiting_score_s() == pytest.approx(NOW + expected, abs=0.001)
        assert env.counters()["retries_retry"] == "1"
        assert "orders_dead" not in env.counters()

    run(scenario, [status(503)])


def test_each_retry_uses_exactly_one_attempt_of_the_budget(run: Callable[..., None]) -> None:
    """Retries count one attempt each, and the order dies `exhausted` once they are used up."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        outcomes = []
        for _ in range(RETRY.max_attempts):
            outcomes.append(await attempt_order(env.ctx, await env.claim()))
            if outcomes[-1] == "retry":
                env.make_due()
        assert outcomes == ["retry"] * (RETRY.max_attempts - 1) + ["dead"]
        record = env.record()
        assert (record.status, record.dead_reason, record.attempts) == ("dead", "exhausted", 5)
        assert len(env.posts) == RETRY.max_attempts

    run(scenario, [status(503)] * RETRY.max_attempts)


def test_a_422_dead_letters_the_order_as_rejected(run: Callable[..., None]) -> None:
    """A 422 is a refusal for good: the order dies `rejected` at once, with its status."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "dead"
        record = env.record()
        assert (record.status, record.dead_reason, record.http_status) == ("dead", "rejected", 422)
        assert env.ledger.redis.zscore(K.dead, "acc:o0") is not None
        assert env.counters()["orders_dead"] == "1"
        assert env.dead == [("acc:o0", "rejected")]

    run(scenario, [status(422)])


def test_an_ambiguous_failure_is_counted_and_retried(run: Callable[..., None]) -> None:
    """A 500 (the API may have acted) counts an ambiguous attempt and, by default, retries."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "retry"
        record = env.record()
        assert (record.status, record.ambiguous_attempts) == ("retrying", 1)
        assert env.counters()["retries_ambiguous"] == "1"

    run(scenario, [status(500)])


def test_an_ambiguous_failure_with_hold_dead_letters_it_as_ambiguous(
    run: Callable[..., None],
) -> None:
    """With DISPATCH_ON_AMBIGUOUS=hold an ambiguous failure dies `ambiguous` for a person."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "dead"
        record = env.record()
        assert (record.status, record.dead_reason, record.ambiguous_attempts) == (
            "dead",
            "ambiguous",
            1,
        )
        assert env.waiting_score_s() is None
        assert env.dead == [("acc:o0", "ambiguous")]

    run(scenario, [status(500)], on_ambiguous="hold")


def test_a_409_after_an_ambiguous_attempt_is_a_conflict(run: Callable[..., None]) -> None:
    """A 409 once an earlier attempt was ambiguous dies `conflict` (probably placed already)."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "retry"
        env.make_due()
        claim = await env.claim()
        assert claim.ambiguous_attempts == 1
        assert await attempt_order(env.ctx, claim) == "dead"
        record = env.record()
        assert (record.dead_reason, record.http_status, record.attempts) == ("conflict", 409, 2)

    run(scenario, [status(500), status(409)])


def test_a_409_without_an_ambiguous_attempt_is_rejected(run: Callable[..., None]) -> None:
    """A 409 on a first attempt is a plain refusal (`rejected`), not a conflict."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        assert await attempt_order(env.ctx, await env.claim()) == "dead"
        assert env.record().dead_reason == "rejected"

    run(scenario, [status(409)])


def test_a_200_without_test_url_completes_and_is_not_retried(run: Callable[..., None]) -> None:
    """A 200 without a test URL completes (no second POST) and is reported once."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        messages = env.ledger.redis.llen("q")
        assert await attempt_order(env.ctx, await env.claim()) == "completed"
        record = env.record()
        assert (record.status, record.test_url) == ("completed", None)
        assert record.last_error == "the API answered without a test_url"
        assert env.waiting_score_s() is None
        assert env.ledger.redis.llen("q") == messages  # no new message: nothing to retry
        assert env.ledger.pump().moved == 0
        assert len(env.posts) == 1
        assert env.dead == [("acc:o0", "missing_test_url")]

    run(scenario, [ok()])


def test_a_shut_gate_postpones_without_using_an_attempt(run: Callable[..., None]) -> None:
    """While a 429 pause lasts the order waits it out: no POST, no attempt used."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        env.ledger.redis.set(CONFIG.flow.pause, "1", px=5000)
        assert await attempt_order(env.ctx, await env.claim()) == "postponed"
        record = env.record()
        assert (record.status, record.attempts, record.waiting_for) == ("queued", 0, "paused")
        score = env.waiting_score_s()
        assert score is not None and NOW < score <= NOW + 10
        assert env.posts == []

    run(scenario, [])


def test_a_gate_that_shuts_during_the_reserved_wait_gives_the_attempt_back(
    run: Callable[..., None],
) -> None:
    """Gates shut while waiting for the reserved start: postponed, the counted attempt returned."""
    paced = replace(CONFIG, rate=RateLimit(2, 1000, max_wait_s=5))  # one start per ~0.56 s

    async def scenario(env: Env) -> None:
        env.enqueue(2)
        [first] = env.ledger.claim(["acc:o1"], "w-other")
        assert env.ledger.begin(first).start_in_s == 0  # takes the next start slot
        env.while_asleep = lambda: env.ledger.redis.set(paced.flow.pause, "1", px=5000)
        assert await attempt_order(env.ctx, await env.claim()) == "postponed"
        [waited] = env.slept
        assert 0 < waited <= 0.6  # it had a reserved start to wait for
        record = env.record()
        assert (record.status, record.attempts, record.waiting_for) == ("queued", 0, "paused")
        assert env.posts == []

    run(scenario, [], config=paced)


def test_an_order_past_its_budget_dies_exhausted_without_a_post(run: Callable[..., None]) -> None:
    """An order whose attempts are used up dies `exhausted` before any POST."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        claim = replace(await env.claim(), attempts=RETRY.max_attempts)
        assert await attempt_order(env.ctx, claim) == "dead"
        assert env.record().dead_reason == "exhausted"
        assert env.posts == []

    run(scenario, [])


def test_a_lost_lease_skips_the_order_untouched(run: Callable[..., None]) -> None:
    """A worker whose lease was taken away makes no POST and writes nothing."""

    async def scenario(env: Env) -> None:
        env.enqueue()
        claim = replace(await env.claim(), token="not-ours")
        assert await attempt_order(env.ctx, claim) == "skipped"
        assert env.record().status == "submitting"
        assert env.posts == []

    run(scenario, [])


def test_a_batch_attempts_each_queued_order_once_and_releases_its_leases(
    run: Callable[..., None],
) -> None:
    """`attempt_batch` claims the named orders, attempts each once and lets go of every lease
    and every unit of capacity."""

    async def scenario(env: Env) -> None:
        keys = env.enqueue(3)
        held = Held()
        capacity = Capacity(2)
        results = await attempt_batch(env.ctx, [*keys, "acc:unknown"], held, capacity)
        assert sorted(results) == ["completed"] * 3
        assert [r.status for r in read_records(env.ledger.redis, K, keys) if r] == ["completed"] * 3
        assert held.pairs() == []
        assert await capacity.take(capacity.size) == capacity.size  # every unit given back
        assert len(read_history(env.ledger.redis, K, keys[0])) == 1

    run(scenario, [ok(test_url=TEST_URL)] * 3)


def test_a_batch_of_no_keys_claims_nothing(run: Callable[..., None]) -> None:
    """A message with no keys makes no attempt and takes no capacity."""

    async def scenario(env: Env) -> None:
        assert await attempt_batch(env.ctx, [], Held(), Capacity(1)) == []

    run(scenario, [])


def test_a_batch_waiting_for_room_claims_nothing_once_the_worker_shuts_down(
    run: Callable[..., None],
) -> None:
    """Closing capacity while a message waits for room raises ShuttingDown, nothing claimed."""

    async def scenario(env: Env) -> None:
        keys = env.enqueue(1)
        capacity = Capacity(1)
        capacity.close()
        with pytest.raises(ShuttingDown):
            await attempt_batch(env.ctx, keys, Held(), capacity)
        assert env.record().status == "queued"
        assert env.posts == []

    run(scenario, [])
