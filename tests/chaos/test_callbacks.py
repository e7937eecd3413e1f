"""Results delivery (SPEC §5): signed callbacks with their own retries and dead letters, per-order
callback URLs behind the SSRF guard, and the results stream followed live and by consumer groups.

Receivers verify every signature with the `standardwebhooks` library, an implementation
independent of ours.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from producer.api import Dispatcher
from sandbox.processes import ThreadServer, free_port, wait_until
from tests.conftest import Sandbox, WorkerFactory
from tests.factories import make_order, run_cli, wait_final
from worker import outcomes
from worker.signing import new_secret

pytestmark = pytest.mark.chaos
SECRET = new_secret()


class Receiver:
    """A callback receiver on 127.0.0.1 that verifies signatures and can fail on purpose."""

    def __init__(self, secret: str = SECRET) -> None:
        self.webhook = Webhook(secret)
        self.fail_first = 0
        self.down = False
        self.lock = threading.Lock()
        self.attempts: defaultdict[str, int] = defaultdict(int)
        self.delivered: dict[str, dict[str, Any]] = {}  # webhook-id -> event
        self.rejected = 0

        async def hook(request: Request) -> Response:
            body = await request.body()
            try:
                event = self.webhook.verify(body, dict(request.headers))
            except WebhookVerificationError:
                self.rejected += 1
                return Response(status_code=401)
            msg_id = request.headers["webhook-id"]
            with self.lock:
                self.attempts[msg_id] += 1
                if self.down or self.attempts[msg_id] <= self.fail_first:
                    return Response(status_code=503)
                self.delivered[msg_id] = event
            return Response(status_code=204)

        self.app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def keys(self) -> list[str]:
        return sorted(e["data"]["key"] for e in self.delivered.values())


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    r = Receiver()
    port = free_port()
    with ThreadServer(r.app, port):
        yield r, f"http://127.0.0.1:{port}/hook"


def callback_env(url: str, schedule: str) -> dict[str, str]:
    return {
        "DISPATCH_CALLBACK_URL": url,
        "DISPATCH_CALLBACK_SECRET": SECRET,
        "DISPATCH_CALLBACK_SCHEDULE_S": schedule,
    }


def enqueue(dispatcher: Dispatcher, n: int, **kwargs: Any) -> list[str]:
    report = dispatcher.enqueue_many([make_order(i) for i in range(n)], **kwargs)
    assert report.accepted == n, report.results
    return [r.key for r in report.results if r.key]


def test_callbacks_retry_with_a_stable_webhook_id_until_delivered(
    dispatcher: Dispatcher,
    sandbox: Sandbox,
    workers: WorkerFactory,
    receiver: tuple[Receiver, str],
) -> None:
    r, url = receiver
    r.fail_first = 2
    keys = enqueue(dispatcher, 10)
    workers(concurrency=8, **callback_env(url, "0,0.2,0.2,0.2"))
    records = wait_final(dispatcher, keys, statuses={"delivered"})

    assert {(x.callback, x.callback_attempts) for x in records} == {("delivered", 2)}
    assert r.keys() == sorted(keys)
    assert set(r.attempts.values()) == {3}  # the same webhook-id on each of the 3 attempts
    assert len(r.attempts) == 10
    for event in r.delivered.values():
        assert event["type"] == "order.completed"
        assert event["data"]["test_url"].endswith(event["data"]["order_id"])
        assert set(event["data"]) >= {
            "key",
            "account_id",
            "order_id",
            "id",
            "remote_id",
            "test_url",
        }
    assert set(sandbox.control.stats()["creates"].values()) == {1}
    assert set(sandbox.control.stats()["posts"].values()) == {1}


def test_a_receiver_down_past_the_schedule_leaves_a_dead_letter_to_replay(
    dispatcher: Dispatcher,
    sandbox: Sandbox,
    workers: WorkerFactory,
    receiver: tuple[Receiver, str],
    worker_env: dict[str, str],
) -> None:
    r, url = receiver
    r.down = True
    keys = enqueue(dispatcher, 4)
    env = callback_env(url, "0,0.2,0.2")
    workers(concurrency=4, **env)
    wait_until(
        lambda: all(x and x.callback == "failed" for x in dispatcher.records(keys)),
        timeout_s=30,
        what="the callbacks to be given up",
    )
    records = dispatcher.records(keys)
    assert {(x.status, x.callback_attempts) for x in records if x} == {("completed", 3)}
    listed = run_cli({**worker_env, **env}, "dead", "list", "--stage", "callback", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(row["key"] for row in rows) == sorted(keys)
    assert {(row["stage"], row["reason"], row["http_status"]) for row in rows} == {
        ("callback", "exhausted", 503)
    }

    r.down = False
    replay = run_cli(
        {**worker_env, **env}, "dead", "replay", "--all", "--stage", "callback", "--yes"
    )
    assert replay.returncode == 0, replay.stderr
    wait_final(dispatcher, keys, statuses={"delivered"})
    assert r.keys() == sorted(keys)
    assert set(sandbox.control.stats()["posts"].values()) == {1}  # the order was placed once
    assert run_cli({**worker_env, **env}, "dead", "list", "--json").stdout == ""


def test_a_failed_order_is_called_back_too(
    dispatcher: Dispatcher,
    sandbox: Sandbox,
    workers: WorkerFactory,
    receiver: tuple[Receiver, str],
) -> None:
    r, url = receiver
    sandbox.control.faults(reject_status=422)
    keys = enqueue(dispatcher, 2)
    workers(concurrency=2, **callback_env(url, "0,0.2"))
    wait_until(lambda: len(r.delivered) == 2, timeout_s=30, what="two callbacks")
    assert {
        (e["type"], e["data"]["reason"], e["data"]["http_status"]) for e in r.delivered.values()
    } == {("order.failed", "rejected", 422)}
    wait_until(
        lambda: {x.callback for x in dispatcher.records(keys) if x} == {"delivered"},
        timeout_s=10,
        what="the deliveries to be recorded",
    )
    assert {x.status for x in dispatcher.records(keys) if x} == {"dead"}


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_per_order_callback_to_a_private_address_needs_explicit_consent(
    redis_url: str,
    sandbox: Sandbox,
    workers: WorkerFactory,
    receiver: tuple[Receiver, str],
    allow_private: bool,
) -> None:
    from tests.conftest import make_settings

    r, url = receiver
    per_order = url.replace("127.0.0.1", "localhost")
    dispatcher = Dispatcher(make_settings(redis_url, callback_allowed_hosts=["localhost"]))
    with pytest.raises(Exception, match="not in DISPATCH_CALLBACK_ALLOWED_HOSTS"):
        dispatcher.enqueue_many([make_order(99)], callback_url="http://evil.example/hook")
    keys = enqueue(dispatcher, 2, callback_url=per_order)
    workers(
        concurrency=2,
        DISPATCH_CALLBACK_SECRET=SECRET,
        DISPATCH_CALLBACK_SCHEDULE_S="0,0.2",
        DISPATCH_CALLBACK_ALLOW_PRIVATE=str(allow_private).lower(),
    )
    if allow_private:
        wait_final(dispatcher, keys, statuses={"delivered"})
        assert r.keys() == sorted(keys)
        return
    wait_until(
        lambda: all(x and x.callback == "failed" for x in dispatcher.records(keys)),
        timeout_s=30,
        what="the callbacks to be refused",
    )
    records = [x for x in dispatcher.records(keys) if x]
    assert all("unsafe_destination" in (x.callback_error or "") for x in records)
    assert "loopback" in (records[0].callback_error or "")
    assert r.attempts == {}  # nothing was sent
    assert {x.status for x in records} == {"completed"}


def test_results_follow_prints_an_event_that_happens_after_it_started(
    dispatcher: Dispatcher, worker_env: dict[str, str]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "results", "--follow", "--json"],
        env=worker_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # it has started and is waiting
        (key,) = enqueue(dispatcher, 1)
        ledger = dispatcher.ledger
        (claim,) = ledger.claim([key], "w")
        ledger.finish(
            claim,
            outcomes.completed(claim, api_id="a", remote_id="r", test_url="https://t/x"),
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        event = json.loads(line)
        assert (event["type"], event["data"]["key"]) == ("order.completed", key)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_consumers_in_a_group_share_the_stream_and_lose_nothing_when_one_dies(
    dispatcher: Dispatcher,
) -> None:
    keys = enqueue(dispatcher, 30)
    ledger = dispatcher.ledger
    for claim in ledger.claim(keys, "w"):
        ledger.finish(
            claim,
            outcomes.completed(claim, api_id="a", remote_id="r", test_url="https://t/x"),
        )
    doomed = dispatcher.group("billing", "doomed", claim_idle_ms=300)
    taken = doomed.read(count=7)  # ... and dies before acknowledging them
    assert len(taken) == 7
    survivor = dispatcher.group("billing", "survivor", claim_idle_ms=300)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 10
    while len(seen) < 30 and time.monotonic() < deadline:
        for event in survivor.read(count=10, block_ms=200):
            seen[event.data["key"]] += 1
            survivor.ack(event.id)
    assert sorted(seen) == sorted(keys)  # the dead consumer's 7 were taken over
    assert set(seen.values()) == {1}
    pending: Any = dispatcher.redis.xpending(dispatcher.keys.events, "billing")
    assert pending["pending"] == 0
