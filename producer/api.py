"""The Python API the ATS sync job imports: validate and enqueue orders, read their records.

    from producer import Dispatcher
    dispatcher = Dispatcher.from_env()
    report = dispatcher.enqueue_many(orders, account_id="acc-1")
    report.accepted, report.duplicate, report.invalid

Enqueueing is idempotent per order key (`<account>:<order id>`): a key already known reports
`duplicate` with its current status, however many producers race on it. Valid orders go through
even when others in the same batch are invalid.

Orders go to Redis in chunks, each written whole or not at all (one script). When Redis stops
taking them part-way (out of memory, or gone), `EnqueueStopped` carries the report of every
order before the chunk that failed, and the line from which nothing is known to be enqueued:
enqueueing the same input again is safe (what went through reports `duplicate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from producer.report import EnqueueReport, EnqueueResult, EnqueueStopped, line_of, stopped
from worker.errors import ConfigurationError, FieldError, InvalidOrder, ServiceUnavailable
from worker.http.ssrf import check_callback_url
from worker.identity import check_account_id, order_key
from worker.ledger.connect import connect
from worker.ledger.keys import Keys
from worker.ledger.records import Event, Record, follow_events, read_events, read_records
from worker.ledger.results import ResultsGroup
from worker.ledger.steps import Ledger, LedgerConfig, NewOrder
from worker.orders import Order
from worker.settings import Settings
from worker.validation import checked_body, parse_order

__all__ = ["Dispatcher", "EnqueueReport", "EnqueueResult", "EnqueueStopped", "Line"]
RawOrder = Order | dict[str, Any] | str | bytes
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Line:
    """One order as read from input: its line number (or position) and its text or object."""

    number: int
    raw: RawOrder


class Dispatcher:
    """Enqueue orders and read what became of them. Safe to share between threads."""

    def __init__(self, settings: Settings, *, client: redis.Redis | None = None) -> None:
        self.settings = settings
        self.redis = client or connect(
            settings.redis_url, retries=3, sentinel_master=settings.redis_sentinel_master
        )
        self.keys = Keys()
        self.ledger = Ledger(self.redis, LedgerConfig.from_settings(settings), keys=self.keys)

    @classmethod
    def from_env(cls) -> Dispatcher:
        return cls(Settings())

    def ping(self) -> None:
        """Raise `ServiceUnavailable` unless Redis answers."""
        with redis_unavailable(self.settings.redis_url):
            self.redis.ping()

    # --- enqueue --------------------------------------------------------------------------------

    def enqueue(
        self, order: RawOrder, *, account_id: str | None = None, callback_url: str | None = None
    ) -> EnqueueResult:
        return self.enqueue_many([order], account_id=account_id, callback_url=callback_url).results[
            0
        ]

    def enqueue_many(
        self,
        orders: Iterable[RawOrder | Line],
        *,
        account_id: str | None = None,
        callback_url: str | None = None,
        dry_run: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> EnqueueReport:
        """Validate every order, enqueue the valid ones in batches; one result per order."""
        account = self._account(account_id)
        if callback_url is not None:
            try:
                callback_url = check_callback_url(
                    callback_url, self.settings.callback_allowed_hosts
                )
            except ValueError as exc:
                raise InvalidOrder([FieldError("callback_url", str(exc))]) from None
        report = EnqueueReport()
        pending: list[tuple[int, NewOrder]] = []
        for item in _numbered(orders):
            try:
                order, body = _validate(item.raw, self.settings.max_order_bytes)
            except InvalidOrder as exc:
                report.results.append(EnqueueResult(item.number, None, "invalid", None, exc.errors))
                continue
            key = order_key(account, order.id)
            pending.append(
                (item.number, NewOrder(key, account, order.id, body, callback_url or ""))
            )
            if len(pending) >= CHUNK:
                self._flush_into(report, pending, dry_run, burst=len(report.results) + CHUNK)
                pending = []
                if on_progress:
                    on_progress(len(report.results))
        self._flush_into(report, pending, dry_run, burst=len(report.results) + len(pending))
        if on_progress:
            on_progress(len(report.results))
        report.results.sort(key=line_of)
        return report

    def _flush_into(
        self,
        report: EnqueueReport,
        pending: list[tuple[int, NewOrder]],
        dry_run: bool,
        *,
        burst: int,
    ) -> None:
        try:
            report.results += self._flush(pending, dry_run, burst=burst)
        except redis.RedisError as exc:
            where = f"Redis at {_safe_url(self.settings.redis_url)}"
            raise stopped(exc, where, report, (pending[0][0], pending[-1][0])) from exc

    def _flush(
        self, pending: list[tuple[int, NewOrder]], dry_run: bool, *, burst: int
    ) -> list[EnqueueResult]:
        if not pending:
            return []
        if dry_run:
            return [EnqueueResult(n, o.key, "accepted", None) for n, o in pending]
        statuses = self.ledger.enqueue([o for _, o in pending], burst=burst)
        # The script answers `accepted`, or the status of a key known before (also earlier in
        # this same batch).
        return [
            EnqueueResult(n, o.key, "accepted", "queued")
            if status == "accepted"
            else EnqueueResult(n, o.key, "duplicate", status)
            for (n, o), status in zip(pending, statuses, strict=True)
        ]

    def _account(self, account_id: str | None) -> str:
        account = account_id or self.settings.account_id
        if not account:
            raise ConfigurationError("no account: pass --account or set DISPATCH_ACCOUNT_ID")
        try:
            return check_account_id(account)
        except ValueError as exc:
            raise ConfigurationError(f"account {account!r}: {exc}") from None

    # --- read -----------------------------------------------------------------------------------

    def resolve(self, key_or_id: str, account_id: str | None = None) -> str:
        """An order key from a key, or from a bare order id and the account."""
        if ":" in key_or_id:
            return key_or_id
        return order_key(self._account(account_id), key_or_id)

    def records(self, keys: list[str]) -> list[Record | None]:
        with redis_unavailable(self.settings.redis_url):
            return read_records(self.redis, self.keys, keys)

    def record(self, key: str) -> Record | None:
        return self.records([key])[0]

    def events(self, since: str = "0", count: int = 1000) -> list[Event]:
        with redis_unavailable(self.settings.redis_url):
            return read_events(self.redis, self.keys, since=since, count=count)

    def group(
        self, group: str, consumer: str, *, start: str = "0", claim_idle_ms: int = 30_000
    ) -> ResultsGroup:
        """Follow the results as `consumer` of consumer group `group` (`worker.ledger.results`)."""
        with redis_unavailable(self.settings.redis_url):
            client = connect(
                self.settings.redis_url,
                socket_timeout_s=30.0,
                sentinel_master=self.settings.redis_sentinel_master,
            )
            return ResultsGroup(
                client, self.keys, group, consumer, start=start, claim_idle_ms=claim_idle_ms
            )

    def follow(self, since: str = "$") -> Iterator[Event]:
        with redis_unavailable(self.settings.redis_url):
            follower = connect(
                self.settings.redis_url,
                socket_timeout_s=30.0,
                sentinel_master=self.settings.redis_sentinel_master,
            )
            yield from follow_events(follower, self.keys, since=since)


@contextmanager
def redis_unavailable(url: str | None = None) -> Iterator[None]:
    """Redis's errors as `ServiceUnavailable`, naming the server (never its password).

    The one translation: callers handle one exception whichever Redis command failed.
    """
    try:
        yield
    except redis.RedisError as exc:
        where = f"Redis at {_safe_url(url)}" if url else "Redis"
        raise ServiceUnavailable(f"{where}: {exc}") from exc


def _numbered(orders: Iterable[RawOrder | Line]) -> Iterator[Line]:
    for position, item in enumerate(orders, start=1):
        yield item if isinstance(item, Line) else Line(position, item)


def _validate(raw: RawOrder, max_bytes: int) -> tuple[Order, str]:
    if isinstance(raw, Order):
        return raw, checked_body(raw, max_bytes=max_bytes)
    return parse_order(raw, max_bytes=max_bytes)


def _safe_url(url: str) -> str:
    """The Redis URL without its password, for messages."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
