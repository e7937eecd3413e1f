"""The guarded transport's message check (worker/process/transport.py) as a table: messages the
worker must read pass, and everything that would stop kombu's event loop is named and dropped,
counted in `poison_messages`."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
import redis

from tests.unit.conftest import MakeRuntime
from worker.ledger.keys import Keys
from worker.process.transport import Transport, _well_formed, transport_for
from worker.tickets import DELIVER_TASK, ticket_template

K = Keys()


def ticket(task: str = "order_dispatch.dispatch", keys: tuple[str, ...] = ("acc:o1",)) -> Any:
    """A message of the template the ledger's scripts fill in (test_tickets.py proves the Lua
    fills it in the same way), read back as kombu reads it."""
    escaped = json.dumps(json.dumps(list(keys)))[1:-1]
    parts = ticket_template("q", task)
    filled = {"@@TID@@": "tid-1", "@@KEYS@@": escaped}
    return json.loads("".join(filled.get(part, part) for part in parts))


def changed(path: str, value: Any, *, delete: bool = False) -> Any:
    """A good ticket with one field (`a.b.c`) set to `value`, or deleted."""
    message = ticket()
    *parents, last = path.split(".")
    node = message
    for name in parents:
        node = node[name]
    if delete:
        del node[last]
    else:
        node[last] = value
    return message


GOOD = {
    "a dispatch ticket": ticket(),
    "a deliver ticket": ticket(DELIVER_TASK),
    "a ticket naming many keys": ticket(keys=tuple(f"acc:o{i}" for i in range(16))),
    "a control message (no task header)": changed("headers.task", None),
    "a message without headers": changed("headers", None, delete=True),
    "no delivery info": changed("properties.delivery_info", None, delete=True),
}

BAD = {
    "a JSON list": ([1, 2], "a JSON list, not a message"),
    "a JSON string": ("hello", "a JSON str, not a message"),
    "a JSON number": (42, "a JSON int, not a message"),
    "null": (None, "a JSON NoneType, not a message"),
    "no properties": (changed("properties", None, delete=True), "no properties or delivery tag"),
    "properties not an object": (changed("properties", "x"), "no properties or delivery tag"),
    "no delivery tag": (
        changed("properties.delivery_tag", None, delete=True),
        "no properties or delivery tag",
    ),
    "a numeric delivery tag": (
        changed("properties.delivery_tag", 7),
        "no properties or delivery tag",
    ),
    "delivery info not an object": (
        changed("properties.delivery_info", []),
        "malformed delivery info or headers",
    ),
    "headers not an object": (changed("headers", ["task"]), "malformed delivery info or headers"),
    "an unknown task": (changed("headers.task", "other.app.task"), "unknown task 'other.app.task'"),
    "pickle content": (
        changed("content-type", "application/x-python-serialize"),
        "content type 'application/x-python-serialize', not plain JSON",
    ),
    "a base64 body": (
        changed("properties.body_encoding", "base64"),
        "content type 'application/json', not plain JSON",
    ),
    "a body that is not JSON": (changed("body", "[[ nope"), "body is not JSON"),
    "no body": (changed("body", None, delete=True), "body is not JSON"),
    "a body that is an object": (changed("body", '{"a": 1}'), "body is not [args, kwargs, embed]"),
    "a body of two parts": (changed("body", '[["k"], {}]'), "body is not [args, kwargs, embed]"),
    "args that are not a list": (
        changed("body", '["k", {}, {}]'),
        "body is not [args, kwargs, embed]",
    ),
}


@pytest.mark.parametrize("message", GOOD.values(), ids=GOOD.keys())
def test_messages_the_worker_reads_pass(message: Any) -> None:
    """Our tickets and kombu's control messages are let through untouched."""
    assert _well_formed(message) is None


@pytest.mark.parametrize(("message", "problem"), BAD.values(), ids=BAD.keys())
def test_malformed_messages_are_named(message: Any, problem: str) -> None:
    """Each kind of garbage is stopped with a reason a person can act on."""
    assert _well_formed(message) == problem


def test_an_unknown_task_name_is_cut_short_in_the_reason() -> None:
    """A huge task name does not make a huge log line."""
    problem = _well_formed(changed("headers.task", "x" * 10_000))
    assert problem is not None and len(problem) < 100


def test_a_malformed_message_is_dropped_logged_and_counted(
    make_runtime: MakeRuntime, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """The transport hands a malformed message to nobody, logs `message.poison` and adds one to
    the fleet's `poison_messages` counter."""
    make_runtime()
    transport = Transport.__new__(Transport)  # the check runs before any connection is used
    with caplog.at_level(logging.ERROR, logger="order_dispatch"):
        assert transport._deliver([1, 2], "q") is None
        assert transport._deliver(changed("headers.task", "evil"), "q") is None
    assert [r.getMessage() for r in caplog.records] == ["message.poison"] * 2
    assert redis_client.hget(K.counters, "poison_messages") == "2"


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("redis://localhost:6379/0", "worker.process.transport:Transport"),
        ("rediss://host:6380/0", "worker.process.transport:Transport"),
        ("sentinel://a:26379;sentinel://b:26379", "worker.process.transport:SentinelTransport"),
    ],
)
def test_each_broker_url_gets_its_guarded_transport(url: str, transport: str) -> None:
    """Sentinel URLs get the guarded Sentinel transport; every other URL the guarded plain one."""
    assert transport_for(url) == transport
