"""Queue messages ("tickets") that name orders, written by Lua in the same step as the ledger.

A ticket is an ordinary Celery (protocol 2) message for the `dispatch` task whose one argument
is a list of order keys. The producer and the scheduler write tickets from inside the Lua script
that changes the orders' state, so an order is never `queued` without a message naming it, nor a
message published for an order the ledger does not know (both or neither, also across a Redis
crash, since a script's effects reach the AOF together).

Lua cannot call kombu, so we render the message once with two markers and Lua fills them in:
`@@TID@@` (a unique id) and `@@KEYS@@` (the JSON list of keys, escaped as it stands inside the
envelope's JSON strings). The body is left unencoded (no `body_encoding`), which kombu reads as is.
"""

from __future__ import annotations

import json
import math
import re

DISPATCH_TASK = "order_dispatch.dispatch"
DELIVER_TASK = "order_dispatch.deliver"
TID = "@@TID@@"
KEYS = "@@KEYS@@"
_MARKERS = re.compile(f"({re.escape(TID)}|{re.escape(KEYS)})")


def ticket_template(queue: str, task: str = DISPATCH_TASK) -> list[str]:
    """The message as parts: literal text, and the markers TID and KEYS where Lua fills in."""
    embed = json.dumps({"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    body = f"[[{KEYS}], {{}}, {embed}]"
    headers = {
        "lang": "py",
        "task": task,
        "id": TID,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": TID,
        "parent_id": None,
        "argsrepr": f"[{KEYS}]",
        "kwargsrepr": "{}",
        "origin": "order-dispatch",
        "ignore_result": True,
    }
    envelope = {
        "body": body,
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": TID,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "delivery_tag": TID,
        },
    }
    return [part for part in _MARKERS.split(json.dumps(envelope)) if part]


def batch_size(n_orders: int, *, spread: int, batch_max: int) -> int:
    """Orders per ticket for a burst of `n_orders`: big enough to spare Celery's per-message cost,
    small enough that the burst is spread over at least `spread` tickets (so that every worker
    process gets a share: each of its pool threads takes one ticket at a time).
    """
    if n_orders <= 0:
        return 1
    return max(1, min(batch_max, math.ceil(n_orders / spread)))
