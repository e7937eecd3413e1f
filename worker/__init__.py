"""order-dispatch's worker side: the order contract, the Redis ledger and the Celery worker.

`celery -A worker worker` finds the Celery app as `worker.app`; it is imported only then, so that
a producer importing the contract does not pay for Celery.

Module map. A flat core of plain modules (no I/O), and one package per edge, each the only
place its library is imported. Imports run one way: core <- edges <- process.

    core                 errors      the exception tree, split by what the worker must do
                         settings    every DISPATCH_* variable, and the policies built from it
                         orders      the order contract (pydantic): request and response bodies
                         validation  a producer's order checked, its problems by field path
                         identity    the order key, ORDERS_PATH, StackOne's Basic auth
                         claims      the values the ledger hands out (Claim, Gate, NewOrder...)
                         backoff     the delay before the next attempt (pure)
                         policy      retry / ambiguous / dead decisions, the callback schedule
                         flow        rate limit, 429 pause, circuit breaker: policy and parsing
                         outcomes    each attempt's result as a `Finish` value for the ledger
                         counters    the names of the fleet-wide counters
                         tickets     the queue message envelope (what Lua writes, kombu reads)
                         capacity    how much one process takes on; ShuttingDown
                         submit      one attempt at one order: budget, gates, POST (no Celery)
                         endings     how an attempt ends, recorded: postponed, retry, dead, refused
                         deliver     one attempt at one callback: sign, POST, record
                         signing     Standard Webhooks signatures (pure; receivers use it too)
                         logs        one log event per lifecycle step (`step`)
                         timefmt     ISO-8601 times as records and events write them
    worker.ledger        redis       keys, Lua scripts (lua/, one registry in `scripts`), the steps
                                     as ops (`ops`), sync and asyncio runners, records, results
                                     stream, dead letters, callback stage, connections
    worker.http          aiohttp,    the StackOne client and its error table, the webhook client,
                         httpx       the SSRF guard and callback URL rules
    worker.process       celery,     the app, the tasks, the guarded transport, the runtime (keeper
                         kombu       thread: leases, message notes, heartbeat, pump), what a
                                     process holds (`held`), the event loop
    worker.obs           sentry,     log formatting, Sentry, the fleet snapshot, the exporter
                         prometheus

Where things are:
- the circuit breaker, the rate limit and the 429 pause: policy in `flow`, state in Redis
  (`ledger.keys.FlowKeys`), checked in `ledger/lua/begin.lua`, updated by
  `ledger/lua/report_flow.lua` (sent with each finish).
- callbacks: `deliver` (one attempt) -> `http.webhooks` (signed POST, pinned by `http.ssrf`)
  -> `ledger.callbacks` (their claims, schedule and dead letters).
- retries and orphans: `ledger/lua/pump_*.lua`, run every second by each worker's keeper thread
  (`process.runtime`); no beat process.

A dispatch message's path:
    process.tasks.dispatch (a pool thread: the message names order keys)
      -> process.runtime.Runtime.dispatch (notes the keys as held: lua/reserve.lua, renewed by
         the keeper; hands them to the event loop, waits)
      -> submit.attempt_batch (waits for room in `capacity`, claims: ledger.aio / lua/claim.lua)
      -> submit.attempt_order, per order, concurrently:
           lua/begin.lua (gates, rate slot, attempt counted) -> http.stackone (POST)
           -> endings / outcomes (a Finish) -> lua/report_flow.lua (flow state, if the lease
           is still ours), then lua/finish.lua (record, schedule, callback hand-off, results
           stream), in one round trip -> logs.step / obs.sentry when it dies
      -> the task acks the message (late ack: a killed worker's message runs again).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from worker.identity import order_key
    from worker.orders import Order, OrderResult
    from worker.settings import Settings

# Where each public name lives. Imported on first use (PEP 562), so that importing one small
# module of the package (worker.errors, say) does not load the order models or the settings:
# the command line starts in a quarter of a second.
_PUBLIC = {
    "AmbiguousError": "worker.errors",
    "ConfigurationError": "worker.errors",
    "DispatchError": "worker.errors",
    "FieldError": "worker.errors",
    "InvalidOrder": "worker.errors",
    "PermanentError": "worker.errors",
    "RetryableError": "worker.errors",
    "ServiceUnavailable": "worker.errors",
    "SubmitError": "worker.errors",
    "Order": "worker.orders",
    "OrderResult": "worker.orders",
    "Settings": "worker.settings",
    "order_key": "worker.identity",
}

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
        from worker.process.app import entry_app

        return entry_app()
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'worker' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
