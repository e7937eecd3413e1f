"""Queue messages built for Lua (worker/tickets.py) and filled in by it (lua/_tickets.lua):
kombu and Celery read what the scripts publish as their own messages."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from kombu.transport.virtual import Message

from sandbox.processes import RedisServer
from worker.ledger import Ledger, LedgerConfig
from worker.ledger.steps import NewOrder
from worker.tickets import DISPATCH_TASK, KEYS, TID, batch_size, ticket_template

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
AWKWARD_KEYS = ["acc:1", 'acc:x/"y', "acc:\\n\u00e9\U0001f600"]
PUSH_TICKETS = """
push_tickets(KEYS[1], KEYS[2], ARGV[1], cjson.decode(ARGV[2]), cjson.decode(ARGV[3]), 1000)
"""


class RawChannel:
    """What kombu's Redis channel does with a body that has no `body_encoding`: nothing."""

    def decode_body(self, body: Any, encoding: str | None = None) -> Any:
        assert encoding is None
        return body


@pytest.fixture(scope="module")
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """Module-wide (hypothesis runs many examples in one test); each publish flushes first."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True, protocol=2)
    yield client
    client.close()


def enqueued(client: redis.Redis, keys: list[str], queue: str = "q") -> str:
    """The one message enqueue.lua publishes for new orders with `keys`."""
    client.flushall()
    config = LedgerConfig(queue=queue, batch_spread=1, batch_max=max(1, len(keys)))
    Ledger(client, config).enqueue([NewOrder(key, "acc", "o1", "{}") for key in keys])
    (raw,) = client.lrange(queue, 0, -1)
    return str(raw)


def pushed(client: redis.Redis, parts: list[str], nonce: str, keys: list[str]) -> str:
    """The message push_tickets (lua/_tickets.lua) makes of any template."""
    client.flushall()
    script = (resources.files("worker.ledger") / "lua" / "_tickets.lua").read_text() + PUSH_TICKETS
    client.eval(script, 2, "q", "seq", nonce, json.dumps(parts), json.dumps(keys))
    (raw,) = client.lrange("q", 0, -1)
    return str(raw)


def message(raw: str) -> tuple[dict[str, Any], Message]:
    payload = json.loads(raw)
    return payload, Message(payload, channel=RawChannel())


def test_template_has_both_markers_as_parts() -> None:
    """The message template has exactly the two places Lua fills in: the ticket id and the keys."""
    parts = ticket_template("q")
    assert TID in parts
    assert KEYS in parts
    assert all(TID not in p and KEYS not in p for p in parts if p not in (TID, KEYS))


@pytest.mark.integration
def test_lua_fills_in_the_markers_and_changes_nothing_else(client: redis.Redis) -> None:
    """enqueue.lua publishes the template with its markers filled in and nothing else changed."""
    raw = enqueued(client, AWKWARD_KEYS)
    pattern = "".join("(.+?)" if p in (TID, KEYS) else re.escape(p) for p in ticket_template("q"))
    match = re.fullmatch(pattern, raw)
    assert match is not None
    markers = [p for p in ticket_template("q") if p in (TID, KEYS)]
    filled: dict[str, set[str]] = {TID: set(), KEYS: set()}
    for marker, text in zip(markers, match.groups(), strict=True):
        filled[marker].add(text)
    (tid,), (keys_text,) = filled[TID], filled[KEYS]  # each marker filled the same everywhere
    assert re.fullmatch(r"[0-9a-f]{32}\.1", tid)
    assert json.loads(json.loads(f'"{keys_text}"')) == AWKWARD_KEYS
    assert "@@" not in raw


@pytest.mark.integration
def test_kombu_decodes_the_celery_protocol_2_body(client: redis.Redis) -> None:
    """kombu reads a published message as Celery's protocol 2 body naming the order keys."""
    _, msg = message(enqueued(client, AWKWARD_KEYS))
    assert msg.decode() == [[AWKWARD_KEYS], {}, EMBED]


@pytest.mark.integration
def test_headers_and_properties_name_the_task_and_the_ticket(client: redis.Redis) -> None:
    """Headers and properties name our task and the ticket id, as Celery expects."""
    payload, msg = message(enqueued(client, AWKWARD_KEYS))
    tid = msg.headers["id"]
    assert msg.headers["task"] == DISPATCH_TASK == "order_dispatch.dispatch"
    assert msg.headers["root_id"] == tid
    assert msg.properties["delivery_tag"] == msg.delivery_tag == tid
    assert msg.properties["correlation_id"] == tid
    assert msg.delivery_info["routing_key"] == "q"
    assert msg.content_type == "application/json"
    assert msg.content_encoding == "utf-8"
    assert "body_encoding" not in payload["properties"]
    assert json.loads(msg.headers["argsrepr"]) == [AWKWARD_KEYS]
    assert msg.headers["kwargsrepr"] == "{}"


@pytest.mark.integration
def test_other_task_name_and_queue(client: redis.Redis) -> None:
    """A template for another task and queue carries them through to the published message."""
    payload, _ = message(pushed(client, ticket_template("other", task="x.y"), "t", ["a:b"]))
    assert payload["headers"]["task"] == "x.y"
    assert payload["headers"]["id"] == "t.1"
    assert payload["properties"]["delivery_info"]["routing_key"] == "other"


@pytest.mark.integration
@given(
    keys=st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"])), min_size=1, max_size=20
    ),
)
def test_any_keys_survive_the_envelope(client: redis.Redis, keys: list[str]) -> None:
    """Whatever the order keys, enqueue.lua's message gives kombu exactly those keys (once each)."""
    _, msg = message(enqueued(client, keys))
    assert msg.decode() == [[list(dict.fromkeys(keys))], {}, EMBED]
    assert msg.headers["id"] == msg.delivery_tag


@given(
    nonce=st.text(
        alphabet=st.characters(categories=["L", "N"], include_characters=".-:"), min_size=1
    ),
    keys=st.lists(
        st.text(alphabet=st.characters(exclude_categories=["Cs"])), min_size=1, max_size=5
    ),
)
@pytest.mark.integration
def test_any_ticket_id_survives_the_envelope(
    client: redis.Redis, nonce: str, keys: list[str]
) -> None:
    """push_tickets' ids are `<nonce>.<n>`, whatever the nonce, in every field that carries one."""
    _, msg = message(pushed(client, ticket_template("q"), nonce, keys))
    assert msg.headers["id"] == msg.delivery_tag == msg.headers["root_id"] == f"{nonce}.1"
    assert msg.decode() == [[keys], {}, EMBED]


@pytest.mark.parametrize(
    ("n_orders", "spread", "batch_max", "expected"),
    [
        (0, 64, 16, 1),
        (-5, 64, 16, 1),
        (1, 64, 16, 1),
        (64, 64, 16, 1),
        (65, 64, 16, 2),
        (100, 64, 16, 2),
        (1024, 64, 16, 16),
        (10_000, 64, 16, 16),
        (10_000, 64, 500, 157),
        (10, 1, 16, 10),
    ],
)
def test_batch_size(n_orders: int, spread: int, batch_max: int, expected: int) -> None:
    """Messages are sized for the whole burst: spread widely enough, batch_max keys at most."""
    assert batch_size(n_orders, spread=spread, batch_max=batch_max) == expected


@given(
    n_orders=st.integers(min_value=-10, max_value=10**7),
    spread=st.integers(min_value=1, max_value=10_000),
    batch_max=st.integers(min_value=1, max_value=500),
)
def test_batch_size_stays_in_bounds(n_orders: int, spread: int, batch_max: int) -> None:
    """Any burst gives a batch size between 1 and batch_max."""
    size = batch_size(n_orders, spread=spread, batch_max=batch_max)
    assert 1 <= size <= batch_max
    if size > 1:
        # No bigger than needed to cover the burst with `spread` tickets...
        assert (size - 1) * spread < n_orders
    if size < batch_max:
        # ...and big enough to, unless batch_max stops it.
        assert size * spread >= n_orders
