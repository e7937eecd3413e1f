"""Queue messages built for Lua (worker/tickets.py): kombu and Celery read them as their own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.transport.virtual import Message

from worker.tickets import DISPATCH_TASK, KEYS, TID, batch_size, fill_ticket, ticket_template

EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
AWKWARD_KEYS = ["acc:1", 'acc:x/"y']


class RawChannel:
    """What kombu's Redis channel does with a body that has no `body_encoding`: nothing."""

    def decode_body(self, body: Any, encoding: str | None = None) -> Any:
        assert encoding is None
        return body


def message(queue: str, tid: str, keys: list[str]) -> tuple[dict[str, Any], Message]:
    payload = json.loads(fill_ticket(ticket_template(queue), tid, keys))
    return payload, Message(payload, channel=RawChannel())


def test_template_has_both_markers_as_parts() -> None:
    parts = ticket_template("q")
    assert TID in parts
    assert KEYS in parts
    assert all(TID not in p and KEYS not in p for p in parts if p not in (TID, KEYS))


def test_filled_ticket_is_json() -> None:
    payload = json.loads(fill_ticket(ticket_template("q"), "tid.1", AWKWARD_KEYS))
    assert isinstance(payload, dict)
    assert "@@" not in json.dumps(payload)


def test_kombu_decodes_the_celery_protocol_2_body() -> None:
    _, msg = message("q", "tid.1", AWKWARD_KEYS)
    assert msg.decode() == [[AWKWARD_KEYS], {}, EMBED]


def test_headers_and_properties_name_the_task_and_the_ticket() -> None:
    payload, msg = message("q", "tid.1", AWKWARD_KEYS)
    assert msg.headers["task"] == DISPATCH_TASK == "order_dispatch.dispatch"
    assert msg.headers["id"] == msg.headers["root_id"] == "tid.1"
    assert msg.properties["delivery_tag"] == msg.delivery_tag == "tid.1"
    assert msg.properties["correlation_id"] == "tid.1"
    assert msg.delivery_info["routing_key"] == "q"
    assert msg.content_type == "application/json"
    assert msg.content_encoding == "utf-8"
    assert "body_encoding" not in payload["properties"]
    assert json.loads(msg.headers["argsrepr"]) == [AWKWARD_KEYS]
    assert msg.headers["kwargsrepr"] == "{}"


def test_other_task_name_and_queue() -> None:
    payload = json.loads(fill_ticket(ticket_template("other", task="x.y"), "t", ["a:b"]))
    assert payload["headers"]["task"] == "x.y"
    assert payload["properties"]["delivery_info"]["routing_key"] == "other"


@given(
    tid=st.text(
        alphabet=st.characters(categories=["L", "N"], include_characters=".-:"), min_size=1
    ),
    keys=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"])), max_size=20),
)
def test_any_keys_survive_the_envelope(tid: str, keys: list[str]) -> None:
    _, msg = message("q", tid, keys)
    assert msg.decode() == [[keys], {}, EMBED]
    assert msg.headers["id"] == msg.delivery_tag == tid


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
    assert batch_size(n_orders, spread=spread, batch_max=batch_max) == expected


@given(
    n_orders=st.integers(min_value=-10, max_value=10**7),
    spread=st.integers(min_value=1, max_value=10_000),
    batch_max=st.integers(min_value=1, max_value=500),
)
def test_batch_size_stays_in_bounds(n_orders: int, spread: int, batch_max: int) -> None:
    size = batch_size(n_orders, spread=spread, batch_max=batch_max)
    assert 1 <= size <= batch_max
    if size > 1:
        # No bigger than needed to cover the burst with `spread` tickets...
        assert (size - 1) * spread < n_orders
    if size < batch_max:
        # ...and big enough to, unless batch_max stops it.
        assert size * spread >= n_orders
