"""The thin Celery tasks (worker/process/tasks.py), called as plain functions with a runtime set
by `set_runtime`, against a real redis-server: a message naming keys places those orders (or
sends their callbacks), a message naming none is dropped with one error line, and a worker
shutting down hands the message back to the queue."""

from __future__ import annotations

import json
import logging

import pytest
import redis
from celery.exceptions import Reject

from tests.unit.conftest import MakeRuntime, StubApi, new_orders
from worker.ledger.keys import Keys
from worker.ledger.records import read_records
from worker.process.tasks import deliver, dispatch
from worker.signing import new_secret

K = Keys()


def test_a_message_naming_keys_places_those_orders(
    make_runtime: MakeRuntime, redis_client: redis.Redis, stub_api: StubApi
) -> None:
    """`dispatch([key, ...])` makes one attempt at each named order, and returns when done."""
    rt = make_runtime()
    keys = new_orders(rt, 2)
    dispatch(keys)
    assert sorted(stub_api.seen) == keys
    assert [r.status for r in read_records(redis_client, K, keys) if r] == ["completed"] * 2


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        (([],), {}),
        (("acc:o0",), {}),
        (([1, 2],), {}),
        ((["acc:o0"], ["acc:o1"]), {}),
        ((["acc:o0"],), {"extra": 1}),
        ((), {"keys": ["acc:o0"]}),
    ],
    ids=[
        "nothing",
        "empty list",
        "a bare string",
        "not strings",
        "two lists",
        "kwargs",
        "only kwargs",
    ],
)
def test_a_message_naming_no_keys_is_dropped_with_one_error_line(
    make_runtime: MakeRuntime,
    redis_client: redis.Redis,
    stub_api: StubApi,
    caplog: pytest.LogCaptureFixture,
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> None:
    """A malformed message claims nothing, POSTs nothing and logs `message.malformed` once."""
    rt = make_runtime()
    [key] = new_orders(rt, 1)
    with caplog.at_level(logging.ERROR, logger="order_dispatch"):
        dispatch(*args, **kwargs)
        deliver(*args, **kwargs)
    assert [r.getMessage() for r in caplog.records] == ["message.malformed"] * 2
    assert stub_api.seen == []
    [record] = read_records(redis_client, K, [key])
    assert record is not None and record.status == "queued"


def test_a_worker_shutting_down_hands_the_message_back(
    make_runtime: MakeRuntime, redis_client: redis.Redis, stub_api: StubApi
) -> None:
    """Once intake is closed, `dispatch` rejects the message with requeue and claims nothing."""
    rt = make_runtime()
    [key] = new_orders(rt, 1)
    rt.close_intake()
    with pytest.raises(Reject) as rejected:
        dispatch([key])
    assert rejected.value.requeue is True
    assert stub_api.seen == []
    [record] = read_records(redis_client, K, [key])
    assert record is not None and record.status == "queued"


def test_a_deliver_message_sends_the_pending_callbacks_it_names(
    make_runtime: MakeRuntime, redis_client: redis.Redis, stub_api: StubApi
) -> None:
    """`deliver([key, ...])` sends each named pending callback once and lets go of its lease."""
    rt = make_runtime(callback_url=stub_api.hook_url, callback_secret=new_secret())
    keys = new_orders(rt, 2)
    dispatch(keys)
    assert rt.ledger.pump().callbacks == 2  # the first attempt is due at once
    deliver(keys)
    assert sorted(json.loads(body)["data"]["key"] for body in stub_api.hooks) == keys
    records = read_records(redis_client, K, keys)
    assert [(r.status, r.callback) for r in records if r] == [("delivered", "delivered")] * 2
    assert rt.held_callbacks.pairs() == []


def test_a_deliver_message_for_callbacks_not_pending_sends_nothing(
    make_runtime: MakeRuntime, stub_api: StubApi
) -> None:
    """A deliver message naming orders without a pending callback sends nothing."""
    rt = make_runtime(callback_url=stub_api.hook_url, callback_secret=new_secret())
    keys = new_orders(rt, 1)
    deliver(keys)
    assert stub_api.hooks == []
