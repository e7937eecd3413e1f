"""The sample orders shipped with the package (`orders.jsonl`, one order per line).

The first line is StackOne's own example order; the others vary it. The demo enqueues them, the
bench and the tests build their orders from the example, and an operator can enqueue the file
itself (`order-dispatch enqueue .../producer/samples/orders.jsonl`).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from producer.api import Line


def sample_texts() -> list[str]:
    """Each sample order's JSON text, in file order."""
    text = (resources.files(__name__) / "orders.jsonl").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def sample_lines() -> list[Line]:
    """The samples as the producer reads a file: numbered lines."""
    return [Line(number, text) for number, text in enumerate(sample_texts(), start=1)]


def example_order() -> dict[str, Any]:
    """StackOne's example order, a fresh copy each call (callers change its ids)."""
    order: dict[str, Any] = json.loads(sample_texts()[0])
    return order
