"""One attempt at one callback (worker/deliver.py), with a real redis-server for the callback
stage and httpx.MockTransport for the receiver: what each ending does to the order's record,
the callback's schedule, its dead letters and the counters."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis
from standardwebhooks.webhooks import Webhook

from tests.ledger_reads import LedgerReads
from worker import outcomes
from worker.claims import CallbackClaim
from worker.deliver import DeliverContext, deliver_callback
from worker.http.webhooks import CallbackClient
from worker.ledger.callbacks import CallbackLedger
from worker.ledger.keys import Keys
from worker.ledger.steps import Ledger, LedgerConfig, NewOrder
from worker.signing import new_secret

K = Keys()
NOW = 1_800_000_000.0
SECRET = new_secret()
DEFAULT_URL = "http://127.0.0.1:9/operator-hook"
OWN_URL = "https://hooks.example/own"
SCHEDULE = (0.0, 10.0, 60.0)
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@dataclass
class Stage(LedgerReads):
    """A completed order whose callback is pending, and the ways to attempt it."""

    ledger: Ledger
    callbacks: CallbackLedger
    clock: Clock
    seen: list[httpx.Request] = field(default_factory=list)
    dead: list[tuple[str, str, int | None]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    clients: list[CallbackClient] = field(default_factory=list)

    def complete(self, key: str = "acc:o0", callback_url: str = "") -> None:
        order = NewOrder(key, "acc", key.partition(":")[2], json.dumps({"id": key}), callback_url)
        self.ledger.enqueue([order])
        [claim] = self.ledger.claim([key], "w")
        self.ledger.begin(claim)
        finish = outcomes.completed(
            claim, api_id="a", remote_id="r", test_url="https://t/1", with_callback=True
        )
        assert self.ledger.finish(claim, finish)
        assert self.ledger.pump().callbacks == 1  # due at once: on the callback queue

    def make_due(self) -> None:
        """Let the callback's wait pass and run the pump, which queues it again."""
        self.clock.t += max(SCHEDULE) + 1
        assert self.ledger.pump().callbacks == 1

    def claim(self, key: str = "acc:o0") -> CallbackClaim:
        [claim] = self.callbacks.claim([key])
        return claim

    def context(self, handler: Handler, **overrides: Any) -> DeliverContext:
        stage = self

        def recording(request: httpx.Request) -> httpx.Response:
            request.read()
            stage.seen.append(request)
            return handler(request)

        def public(host: str, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
            stage.lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]

        client = CallbackClient(transport=httpx.MockTransport(recording), resolver=public)
        self.clients.append(client)
        values: dict[str, Any] = {
            "callbacks": self.callbacks,
            "client": client,
            "secret": SECRET,
            "default_url": DEFAULT_URL,
            "schedule_s": SCHEDULE,
            "on_dead": lambda c, error, status: stage.dead.append((c.key, error, status)),
            **overrides,
        }
        return DeliverContext(**values)


@pytest.fixture
def stage(redis_client: redis.Redis) -> Iterator[Stage]:
    clock = Clock()
    ledger = Ledger(redis_client, LedgerConfig(queue="q"), clock=clock)
    made = Stage(ledger, CallbackLedger(ledger), clock)
    yield made
    for client in made.clients:
        client.close()


def replying(status: int) -> Handler:
    return lambda request: httpx.Response(status)


def test_a_2xx_delivers_the_callback_and_the_order_becomes_delivered(stage: Stage) -> None:
    """A 2xx from the receiver makes the order `delivered` and counts one delivery."""
    stage.complete()
    assert deliver_callback(stage.context(replying(204)), stage.claim()) == "delivered"
    record = stage.record()
    assert (record.status, record.callback, record.callback_attempts) == (
        "delivered",
        "delivered",
        0,
    )
    assert record.callback_delivered_at is not None
    assert stage.counters()["callbacks_delivered"] == "1"
    assert stage.dead == []


def test_the_event_sent_is_the_orders_signed_result(stage: Stage) -> None:
    """The receiver gets the order's completion event, signed with the operator's secret."""
    stage.complete()
    claim = stage.claim()
    deliver_callback(stage.context(replying(200)), claim)
    [request] = stage.seen
    assert str(request.url) == DEFAULT_URL
    assert request.headers["webhook-id"] == claim.msg_id
    event = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert event["type"] == "order.completed"
    assert event["data"]["key"] == "acc:o0"
    assert event["data"]["test_url"] == "https://t/1"


def test_an_orders_own_url_is_used_and_checked(stage: Stage) -> None:
    """An order's own callback URL wins over the operator's and is resolved and checked first."""
    stage.complete(callback_url=OWN_URL)
    assert deliver_callback(stage.context(replying(204)), stage.claim()) == "delivered"
    assert stage.lookups == ["hooks.example"]
    assert stage.seen[0].headers["host"] == "hooks.example"  # pinned to the checked address


def test_a_failed_attempt_is_retried_after_the_schedules_next_wait(stage: Stage) -> None:
    """A 500 schedules the next attempt after the schedule's next entry; the order stays placed."""
    stage.complete()
    assert deliver_callback(stage.context(replying(500)), stage.claim()) == "retry"
    record = stage.record()
    assert (record.status, record.callback) == ("completed", "pending")
    assert (record.callback_attempts, record.callback_http_status) == (1, 500)
    assert stage.ledger.redis.zscore(K.cb_waiting, "acc:o0") == (NOW + SCHEDULE[1]) * 1000
    assert stage.counters()["callbacks_failed"] == "1"
    assert stage.dead == []


def test_the_last_failed_attempt_dead_letters_the_callback_only(stage: Stage) -> None:
    """Once the schedule is used up the callback dies (stage `callback`, reported once) and the
    order's placement is untouched."""
    stage.complete()
    ctx = stage.context(replying(503))
    results = []
    for _ in SCHEDULE:
        results.append(deliver_callback(ctx, stage.claim()))
        if results[-1] == "retry":
            stage.make_due()
    assert results == ["retry", "retry", "dead"]
    record = stage.record()
    assert (record.status, record.test_url, record.callback) == (
        "completed",
        "https://t/1",
        "failed",
    )
    assert record.callback_attempts == len(SCHEDULE)
    assert stage.ledger.redis.zscore(K.dead_callback, "acc:o0") is not None
    assert stage.ledger.redis.zscore(K.dead, "acc:o0") is None
    assert stage.counters()["callbacks_dead"] == "1"
    assert [(key, status) for key, _, status in stage.dead] == [("acc:o0", 503)]


def test_without_any_callback_url_nothing_is_sent_and_the_attempt_fails(stage: Stage) -> None:
    """With no URL of its own and no DISPATCH_CALLBACK_URL, the attempt fails unsent."""
    stage.complete()
    ctx = stage.context(replying(204), default_url=None)
    assert deliver_callback(ctx, stage.claim()) == "retry"
    assert stage.seen == []
    assert "DISPATCH_CALLBACK_URL" in (stage.record().callback_error or "")


def test_without_a_secret_nothing_is_sent_and_the_attempt_fails(stage: Stage) -> None:
    """An unset DISPATCH_CALLBACK_SECRET sends nothing unsigned: the attempt fails."""
    stage.complete()
    assert deliver_callback(stage.context(replying(204), secret=""), stage.claim()) == "retry"
    assert stage.seen == []
    assert "DISPATCH_CALLBACK_SECRET" in (stage.record().callback_error or "")


def test_an_unreachable_receiver_is_a_failed_attempt_with_its_kind(stage: Stage) -> None:
    """A connection error is recorded as a failed attempt, with no HTTP status."""
    stage.complete()

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert deliver_callback(stage.context(refused), stage.claim()) == "retry"
    record = stage.record()
    assert record.callback_http_status is None
    assert (record.callback_error or "").startswith("connect_error")
