"""What the ATS sync job imports: validate and enqueue orders, and read what became of them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from producer.api import Dispatcher, EnqueueReport, EnqueueResult, EnqueueStopped, Line

# Imported on first use (PEP 562): the command line, a subpackage, loads only what its command
# needs.
_PUBLIC = {
    name: "producer.api"
    for name in ("Dispatcher", "EnqueueReport", "EnqueueResult", "EnqueueStopped", "Line")
}

__all__ = ["Dispatcher", "EnqueueReport", "EnqueueResult", "EnqueueStopped", "Line"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'producer' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
