"""Redis clients, made one way everywhere: text replies, timeouts, and retries across a restart."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry


def connect(url: str, *, retries: int = 40, socket_timeout_s: float = 10.0) -> redis.Redis:
    """A client for `url`. With the default `retries` a command waits out a Redis restart of
    about half a minute (backoff capped at 1 s) before it raises.
    """
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        protocol=2,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=5.0,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
    )
