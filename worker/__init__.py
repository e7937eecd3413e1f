"""order-dispatch's worker side: the order contract, the Redis ledger and the Celery worker.

`celery -A worker worker` finds the Celery app as `worker.app`; it is imported only then, so that
a producer importing the contract does not pay for Celery.
"""

from __future__ import annotations

from typing import Any

from worker.errors import (
    AmbiguousError,
    ConfigurationError,
    DispatchError,
    FieldError,
    InvalidOrder,
    PermanentError,
    RetryableError,
    ServiceUnavailable,
    SubmitError,
)
from worker.orders import Order, OrderResult, order_key
from worker.settings import Settings

__all__ = [
    "AmbiguousError",
    "ConfigurationError",
    "DispatchError",
    "FieldError",
    "InvalidOrder",
    "Order",
    "OrderResult",
    "PermanentError",
    "RetryableError",
    "ServiceUnavailable",
    "Settings",
    "SubmitError",
    "app",
    "order_key",
]


def __getattr__(name: str) -> Any:
    if name == "app":
        from worker.celery_app import app

        return app
    raise AttributeError(f"module 'worker' has no attribute {name!r}")
