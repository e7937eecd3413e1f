"""Reading an order a producer hands over: validate it against the strict contract, name each
problem by its field path, and give the body to POST (nulls left out, size checked)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from worker.errors import FieldError, InvalidOrder
from worker.orders import Order


def order_body(order: Order) -> str:
    """The JSON POSTed: the order field for field, nulls left out (passthrough kept verbatim)."""
    return order.model_dump_json(exclude_none=True)


def field_errors(exc: ValidationError) -> list[FieldError]:
    """pydantic's errors as `loc`/`msg` pairs that name the field path, e.g. `candidate.emails`."""
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(order)"
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {err['loc'][-1]!r}"
        elif err["type"] == "missing":
            msg = "required field is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        out.append(FieldError(loc=loc, msg=msg))
    return out


def parse_order(raw: str | bytes | dict[str, Any], *, max_bytes: int) -> tuple[Order, str]:
    """Validate one order and return it with the body to send; raise `InvalidOrder`."""
    try:
        if isinstance(raw, dict):
            order = Order.model_validate(raw)
        else:
            order = Order.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidOrder(field_errors(exc)) from None
    return order, checked_body(order, max_bytes=max_bytes)


def checked_body(order: Order, *, max_bytes: int) -> str:
    """The body to send, or `InvalidOrder` when it is larger than `max_bytes`."""
    body = order_body(order)
    size = len(body.encode())
    if size > max_bytes:
        raise InvalidOrder(
            [
                FieldError(
                    loc="(order)", msg=f"order is {size} bytes, more than the {max_bytes} allowed"
                )
            ]
        )
    return body
