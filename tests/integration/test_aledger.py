"""The ledger's steps on the event loop (worker/ledger/aio.py) against a real redis-server: steps of
one loop turn share a pipeline, each still gets its own reply, and scripts Redis forgot (a
restart, SCRIPT FLUSH) are loaded again."""

from __future__ import annotations

import asyncio
import json

import redis

from worker import outcomes
from worker.claims import Claim, Gate
from worker.flow import RateLimit
from worker.ledger.aio import AsyncLedger
from worker.ledger.connect import connect_async
from worker.ledger.keys import Keys
from worker.ledger.ops import LedgerOps
from worker.ledger.scripts import register_scripts
from worker.ledger.steps import Ledger, LedgerConfig, NewOrder

K = Keys()
CONFIG = LedgerConfig(queue="q", rate=RateLimit(10_000_000, 60_000))  # no pacing here


def orders(n: int) -> list[NewOrder]:
    return [NewOrder(f"acc:o{i}", "acc", f"o{i}", json.dumps({"id": f"o{i}"})) for i in range(n)]


def run_ledger(redis_url: str, steps: object) -> object:
    async def main() -> object:
        client = connect_async(redis_url, max_connections=4, sentinel_master="mymaster")
        ledger = AsyncLedger(LedgerOps(CONFIG), client)
        try:
            return await steps(ledger)  # type: ignore[operator]
        finally:
            await ledger.close()

    return asyncio.run(main())


def test_many_steps_at_once_each_get_their_own_reply(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Many steps at once each get their own reply."""
    sync = Ledger(redis_client, CONFIG)
    sync.enqueue(orders(40))
    for script in register_scripts(redis_client).values():  # known: each turn is sent once
        redis_client.script_load(script.script)

    pipelines: list[object] = []

    async def steps(ledger: AsyncLedger) -> tuple[list[list[Claim]], list[Gate], list[bool]]:
        make_pipeline = ledger.redis.pipeline

        def counted(*args: object, **kwargs: object) -> object:
            pipelines.append(args)
            return make_pipeline(*args, **kwargs)

        ledger.redis.pipeline = counted
        claims = await asyncio.gather(
            *(ledger.claim([f"acc:o{i}", f"acc:o{i + 20}"], "w") for i in range(20))
        )
        flat = [c for pair in claims for c in pair]
        gates = await asyncio.gather(*(ledger.begin(c) for c in flat))
        finished = await asyncio.gather(
            *(
                ledger.finish(
                    c, outcomes.completed(c, api_id=c.order_id, remote_id="", test_url="u")
                )
                for c in flat
            )
        )
        return claims, gates, finished

    claims, gates, finished = run_ledger(redis_url, steps)  # type: ignore[misc]
    assert [[c.key for c in pair] for pair in claims] == [
        [f"acc:o{i}", f"acc:o{i + 20}"] for i in range(20)
    ]
    assert [g.verdict for g in gates] == ["go"] * 40
    assert all(finished)
    assert len(pipelines) == 3  # 100 steps asked for in three turns of the loop: 3 sends
    records = [redis_client.hgetall(K.record(f"acc:o{i}")) for i in range(40)]
    assert [(r["status"], r["api_id"]) for r in records] == [
        ("completed", f"o{i}") for i in range(40)
    ]


def test_scripts_redis_forgot_are_loaded_again(redis_url: str, redis_client: redis.Redis) -> None:
    """Scripts redis forgot are loaded again."""
    Ledger(redis_client, CONFIG).enqueue(orders(3))

    async def steps(ledger: AsyncLedger) -> list[list[Claim]]:
        first = await ledger.claim(["acc:o0"], "w")
        await ledger.redis.script_flush()
        rest = await asyncio.gather(ledger.claim(["acc:o1"], "w"), ledger.claim(["acc:o2"], "w"))
        return [first, *rest]

    claims = run_ledger(redis_url, steps)
    assert [[c.key for c in batch] for batch in claims] == [["acc:o0"], ["acc:o1"], ["acc:o2"]]  # type: ignore[attr-defined]


def test_a_failing_step_fails_only_its_own_caller(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A failing step fails only its own caller."""
    Ledger(redis_client, CONFIG).enqueue(orders(1))
    redis_client.set(K.leases, "not a sorted set")  # the claim script's ZADD meets a string

    async def steps(ledger: AsyncLedger) -> list[object]:
        return await asyncio.gather(
            ledger.claim(["acc:o0"], "w"), ledger.gates_shut(), return_exceptions=True
        )

    failed, shut = run_ledger(redis_url, steps)  # type: ignore[misc]
    assert isinstance(failed, redis.ResponseError)
    assert shut is False


def test_the_flow_state_hears_of_an_answer_even_when_its_record_step_fails(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """finish's two scripts share a round trip; report_flow runs first and on its own."""
    Ledger(redis_client, CONFIG).enqueue(orders(1))
    redis_client.set(K.events, "not a stream")  # finish's XADD meets a string

    async def steps(ledger: AsyncLedger) -> object:
        (claim,) = await ledger.claim(["acc:o0"], "w")
        await ledger.begin(claim)
        dead = outcomes.dead(
            claim, stage="submit", reason="http", http_status=500, error="x", flow="fail"
        )
        return await asyncio.gather(ledger.finish(claim, dead), return_exceptions=True)

    (failed,) = run_ledger(redis_url, steps)  # type: ignore[misc]
    assert isinstance(failed, redis.ResponseError)
    assert redis_client.hget(CONFIG.flow.circuit, "failures") == "1"
