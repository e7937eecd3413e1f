"""Reading orders from a file or stdin: JSON Lines, or one JSON array.

Each order keeps where it came from (its line number; in an array, its position) so that an
invalid one can be named. A line that is not JSON, or not an object, is still handed on: the
contract check turns it into a clear error for that line, and the others go through.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO

from producer.api import Line


def read_orders(stream: IO[str]) -> Iterator[Line]:
    first = ""
    buffered: list[str] = []
    for raw in stream:
        buffered.append(raw)
        if raw.strip():
            first = raw.lstrip()[:1]
            break
    if first == "[":
        text = "".join(buffered) + stream.read()
        yield from _array(text)
        return
    for number, line in enumerate(_chain(buffered, stream), start=1):
        if line.strip():
            yield Line(number, line)


def _chain(buffered: list[str], stream: IO[str]) -> Iterator[str]:
    yield from buffered
    yield from stream


def _array(text: str) -> Iterator[Line]:
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        # The whole array is unreadable: one invalid entry at the line where reading failed.
        yield Line(exc.lineno, text.splitlines()[exc.lineno - 1] if text else "")
        return
    for position, item in enumerate(items, start=1):
        yield Line(position, item if isinstance(item, dict) else json.dumps(item))
