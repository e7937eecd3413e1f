"""Redis clients, made one way everywhere: text replies, timeouts, and retries across a restart."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel


def connect(
    url: str,
    *,
    retries: int = 40,
    socket_timeout_s: float = 10.0,
    sentinel_master: str,
    single_connection: bool = False,
) -> redis.Redis:
    """A client for `url` (`redis://`, `rediss://`, `unix://`, or `sentinel://` hosts joined by
    `;`, as Celery takes them). With the default `retries` a command waits out a Redis restart
    of about half a minute (backoff capped at 1 s) before it raises. `single_connection`: the
    client keeps one connection of its own, for a client only one thread uses (today the pool
    threads that send callbacks): no pool lock, no pool checks per command. Measured in the
    earlier design, where every pool thread attempted orders, the shared pool took a fifth of a
    busy worker's time at 256 threads.
    `sentinel_master` is DISPATCH_REDIS_SENTINEL_MASTER, required so that no caller can fall
    back to another name.
    """
    options = _options(socket_timeout_s) | {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
    }
    if url.startswith("sentinel://"):
        hosts, db, password = sentinel_hosts(url)
        sentinel = Sentinel(hosts, socket_timeout=socket_timeout_s)  # type: ignore[no-untyped-call]
        # master_for passes its keyword arguments on to the connections: a client option such
        # as single_connection_client there raises TypeError, so it goes on the client below.
        master: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            sentinel_master, db=db, password=password, **options
        )
        if not single_connection:
            return master
        return redis.Redis(connection_pool=master.connection_pool, single_connection_client=True)
    return redis.Redis.from_url(url, single_connection_client=single_connection, **options)


def connect_async(
    url: str,
    *,
    max_connections: int,
    retries: int = 40,
    socket_timeout_s: float = 10.0,
    sentinel_master: str,
) -> redis.asyncio.Redis:
    """The asyncio twin of `connect`, for the worker's event loop: the same options, and a
    pool of up to `max_connections` that callers wait on when all are busy."""
    options = _options(socket_timeout_s) | {
        "retry": AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), retries),
    }
    if url.startswith("sentinel://"):
        from redis.asyncio.sentinel import Sentinel as AsyncSentinel

        hosts, db, password = sentinel_hosts(url)
        sentinel = AsyncSentinel(hosts, socket_timeout=socket_timeout_s)  # type: ignore[no-untyped-call]
        master: redis.asyncio.Redis = sentinel.master_for(
            sentinel_master, db=db, password=password, **options
        )
        return master
    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=None, **options
    )
    return redis.asyncio.Redis.from_pool(pool)  # closing the client closes the pool


def _options(socket_timeout_s: float) -> dict[str, Any]:
    return {
        "decode_responses": True,
        "protocol": 2,
        "socket_timeout": socket_timeout_s,
        "socket_connect_timeout": 5.0,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "health_check_interval": 30,
    }


def sentinel_hosts(url: str) -> tuple[list[tuple[str, int]], int, str | None]:
    """The sentinels, database and password of `sentinel://[:pw@]host:port[/db];sentinel://...`."""
    hosts: list[tuple[str, int]] = []
    db, password = 0, None
    for part in url.split(";"):
        parsed = urlsplit(part.strip())
        hosts.append((parsed.hostname or "localhost", parsed.port or 26379))
        password = parsed.password or password
        if parsed.path.strip("/"):
            db = int(parsed.path.strip("/"))
    return hosts, db, password
