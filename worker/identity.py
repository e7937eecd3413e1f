"""Who and where: StackOne's endpoint and its Basic auth, and the order key that names an
order everywhere (`<account_id>:<order id>`: the record, the queue, the Idempotency-Key)."""

from __future__ import annotations

import base64

# StackOne's endpoint for placing an order: the worker POSTs to it, the sandbox serves it.
ORDERS_PATH = "/unified/ats/assessments/orders"


def basic_auth(api_key: str) -> str:
    """StackOne's Basic auth header: the API key as the user name, no password."""
    return "Basic " + base64.b64encode(f"{api_key}:".encode()).decode()


def order_key(account_id: str, order_id: str) -> str:
    """`<account_id>:<order id>`: the identity of an order, its idempotency key."""
    return f"{account_id}:{order_id}"


def split_key(key: str) -> tuple[str, str]:
    """The inverse of `order_key` (an account id never holds a colon; an order id may)."""
    account_id, sep, order_id = key.partition(":")
    if not sep or not account_id or not order_id:
        raise ValueError(f"not an order key (account:order id): {key!r}")
    return account_id, order_id


def check_account_id(account_id: str) -> str:
    if not account_id or ":" in account_id or any(c.isspace() for c in account_id):
        raise ValueError("an account id is non-empty and holds no colon or white space")
    return account_id
