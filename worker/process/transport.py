"""kombu's Redis transport, made to survive what should not be on the queue, and a broker that
goes away.

kombu reads each message with `json.loads` and builds it with `payload['properties']` inside the
worker's event loop: one line of garbage pushed onto the list (by a bug, a person, another app)
raises there and stops the whole worker ("Unrecoverable error"), and every order behind it
waits. This channel drops such a message with one error log line and counts it; Celery's own
guards then handle the rest (unknown task, undecodable or disallowed content).

A Redis restart with late-acked messages in the prefetch window kills a stock kombu 5.7 worker
("Unrecoverable error: AttributeError: 'NoneType' object has no attribute 'hostname'"). On
connection loss Celery collects the connection, then closes it. Closing the task channel drains
its pending BRPOP, whose ConnectionError aborts that close; the transport then drops its
`client` (None) while the channel still points at it; the later close restores unacked messages
through a new pool built from `transport.client.hostname`. An AttributeError is not a
connection error, so Celery treats it as fatal and the process exits. `_BrokerGone` turns that
into what it is, a connection error, which Celery recovers from by reconnecting; the ledger,
not kombu's unacked hash, is what gets the orders placed (the pump). The same AttributeError
from `_connparams` was reported upstream as celery/kombu#582 (closing a channel after the
connection went) and the restore path as celery/kombu#970; both were closed, and kombu 5.7.0
still crashes this way (measured: 6 of 6 with a stock Celery app). The test
`tests/chaos/test_broker_faults.py::test_a_worker_at_full_prefetch_survives_a_redis_restart`
fails without this guard.
"""

from __future__ import annotations

import contextlib
import json
from queue import Empty
from typing import Any

import redis
from kombu.exceptions import ContentDisallowed, DecodeError
from kombu.transport import redis as kombu_redis

from worker.logs import step
from worker.tickets import DELIVER_TASK, DISPATCH_TASK

OUR_TASKS = frozenset({DISPATCH_TASK, DELIVER_TASK})

# KeyError is not here: kombu counts it among connection errors. A message without the keys
# kombu reads is stopped by `_well_formed` before kombu reads them.
UNREADABLE = (ValueError, TypeError, AttributeError, IndexError, DecodeError, ContentDisallowed)


def _poison(exc_name: str, detail: str) -> None:
    step("message.poison", level=40, outcome="dropped", error=exc_name, detail=detail[:200])
    from worker.process.runtime import (
        get_runtime,  # here: the transport is loaded before the runtime
    )

    runtime = get_runtime()
    # The count is for the metrics; the message is dropped either way.
    with contextlib.suppress(redis.RedisError):
        runtime.redis.hincrby(runtime.ledger.keys.counters, "poison_messages", 1)


def _well_formed(payload: Any) -> str | None:
    """What is wrong with a message, or None: kombu's envelope (a dict with properties and a
    delivery tag) and, for a task message, one of our tasks with a JSON body of Celery's shape.
    Control messages (no task header) pass through untouched.
    """
    if not isinstance(payload, dict):
        return f"a JSON {type(payload).__name__}, not a message"
    props, headers = payload.get("properties"), payload.get("headers") or {}
    if not isinstance(props, dict) or not isinstance(props.get("delivery_tag"), str):
        return "no properties or delivery tag"
    if not isinstance(props.get("delivery_info", {}), dict) or not isinstance(headers, dict):
        return "malformed delivery info or headers"
    task = headers.get("task")
    if task is None:
        return None
    if task not in OUR_TASKS:
        return f"unknown task {str(task)[:60]!r}"
    if payload.get("content-type") != "application/json" or props.get("body_encoding"):
        return f"content type {payload.get('content-type')!r}, not plain JSON"
    try:
        body = json.loads(payload.get("body") or "")
    except (TypeError, ValueError):
        return "body is not JSON"
    if not (isinstance(body, list) and len(body) == 3 and isinstance(body[0], list)):
        return "body is not [args, kwargs, embed]"
    return None


class _Guarded:
    connection_errors: tuple[type[BaseException], ...]

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except self.connection_errors:
            raise
        except UNREADABLE as exc:
            _poison(type(exc).__name__, str(exc))
            raise Empty() from None

    def _get(self, queue: str) -> Any:
        try:
            return super()._get(queue)  # type: ignore[misc]
        except self.connection_errors:
            raise
        except UNREADABLE as exc:
            _poison(type(exc).__name__, str(exc))
            raise Empty() from None


class _BrokerGone:
    """A channel whose transport let go of its connection says so with a connection error."""

    connection: Any
    connection_errors: tuple[type[BaseException], ...]
    _closing: bool

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was released (Redis went away)")
        return super()._connparams(asynchronous)  # type: ignore[misc]

    def _brpop_read(self, **options: Any) -> Any:
        try:
            return super()._brpop_read(**options)  # type: ignore[misc]
        except self.connection_errors:
            if getattr(self, "_closing", False):
                # close() drains the pending BRPOP and catches only Empty: a dead socket here
                # must not abort the close and leave the channel half torn down.
                raise Empty() from None
            raise


class Channel(_BrokerGone, _Guarded, kombu_redis.Channel):  # type: ignore[misc]
    pass


class _GuardedTransport:
    def _deliver(self, message: Any, queue: str) -> Any:
        problem = _well_formed(message)
        if problem:
            _poison("MalformedMessage", problem)
            return None
        return super()._deliver(message, queue)  # type: ignore[misc]


class Transport(_GuardedTransport, kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(_BrokerGone, _Guarded, kombu_redis.SentinelChannel):  # type: ignore[misc]
    pass


class SentinelTransport(_GuardedTransport, kombu_redis.SentinelTransport):
    Channel = SentinelChannel


def transport_for(url: str) -> str:
    """The transport class for a broker URL (Sentinel has its own)."""
    if url.startswith("sentinel://"):
        return "worker.process.transport:SentinelTransport"
    return "worker.process.transport:Transport"
