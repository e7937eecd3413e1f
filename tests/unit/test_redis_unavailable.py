"""Every `Dispatcher` method meets a Redis that is down with one error: `ServiceUnavailable`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from producer.api import Dispatcher, redis_unavailable
from sandbox.processes import free_port
from tests.factories import make_order
from worker.errors import ServiceUnavailable
from worker.settings import Settings


@pytest.fixture
def down(monkeypatch: pytest.MonkeyPatch) -> Dispatcher:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there

    def connect(url: str, **_: object) -> redis.Redis:
        # group/follow's own clients wait out a Redis restart (~37 s); here they fail at once.
        return redis.Redis.from_url(url, socket_connect_timeout=1)

    monkeypatch.setattr("producer.api.connect", connect)
    settings = Settings(_env_file=None, redis_url=url, account_id="acc-1")  # type: ignore[call-arg]
    return Dispatcher(settings, client=redis.Redis.from_url(url, socket_connect_timeout=1))


CALLS: dict[str, Callable[[Dispatcher], Any]] = {
    "ping": lambda d: d.ping(),
    "enqueue": lambda d: d.enqueue(make_order(1)),
    "records": lambda d: d.records(["acc-1:ord-1"]),
    "events": lambda d: d.events(),
    "group": lambda d: d.group("billing", "c1"),
    "follow": lambda d: next(d.follow()),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_each_method_reports_redis_down_as_service_unavailable(down: Dispatcher, call: str) -> None:
    """The sync job catches one exception; the message names the server, never its password."""
    with pytest.raises(ServiceUnavailable) as raised:
        CALLS[call](down)
    assert "127.0.0.1" in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_without_a_url_the_message_says_redis() -> None:
    """The CLI's boundary translates raw Redis errors the same way."""
    with pytest.raises(ServiceUnavailable, match=r"^Redis: boom$"), redis_unavailable():
        raise redis.ConnectionError("boom")
