"""One structured log line per lifecycle step of an order: the event and its fields.

Lines carry the order key, the attempt and the outcome, never the order's content: no names,
emails, passthrough or test URLs. How the lines are written (JSON or console, off the event
loop) is `worker.obs.logformat`'s job; entry points call its `configure`.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("order_dispatch")


def step(event: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Log one lifecycle step, e.g. `step("order.completed", order_key=k, attempt=1)`."""
    logger.log(level, event, extra=fields)
