"""Sentry for the workers and the CLI (SPEC §7): what is sent, and what never is.

This module owns the SDK's configuration, the scrubber every event and breadcrumb passes
through, and the two events the service sends on purpose: `report_dead` (exactly one per order
that goes dead, grouped by stage, failure kind and HTTP status) and `report_missing_test_url`.
Unexpected exceptions in tasks reach Sentry through the Celery integration; log lines never
create events (they become breadcrumbs), so a dead order is not reported twice.

No PII and no secrets: the scrubber walks the whole event and (a) drops every key named in
`DROP_KEYS` at any depth, (b) in every string, blanks the values of such keys written as
`key: value` or `key=value`, the literal API key and callback secret, every http(s) URL except
the API's own, and every email address. Free text that merely contains a name cannot be
recognised: callers pass error texts that hold no names.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast
from urllib.parse import urlsplit

import sentry_sdk
from sentry_sdk.integrations import DidNotEnable, Integration
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber
from sentry_sdk.types import Breadcrumb, BreadcrumbHint, Event, Hint

from worker.settings import Settings

# Keys whose values are personal data, order content or secrets, wherever they appear.
DROP_KEYS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "emails",
        "passthrough",
        "test_url",
        "profile_url",
        "results_update_url",
        "payload",
        "body",
        "cb_event",
        "api_key",
        "callback_secret",
        "authorization",
    }
)
FILTERED, EMAIL, URL = "[Filtered]", "[email]", "[url]"
STACKONE_HOST = "api.stackone.com"

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Brackets end a URL, and so does trailing punctuation (`see https://x/t/1.`), kept outside.
_URL_RE = re.compile(r"https?://[^\s\"'<>\\()\[\]{}]+?(?=[.,;:!?]*(?:[\s\"'<>\\()\[\]{}]|$))", re.I)
# `"email": "a@b.c"`, `'first_name': 'Ada'`, `email=a%40b.c`, `"passthrough": {...}` (flat).
_PAIR_RE = re.compile(
    r"""(["']?)\b(?P<key>""" + "|".join(sorted(DROP_KEYS)) + r""")\1\s*[:=]\s*"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\{[^{}]*\}|\[Filtered\]|[^\s,;&}\]\[]+)""",
    re.IGNORECASE,
)


def _drop(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("-", "_") in DROP_KEYS


@dataclass(frozen=True, slots=True)
class Scrubber:
    """Removes PII and secrets from any JSON-like value. Pure, and idempotent."""

    secrets: tuple[str, ...] = ()  # literal values to blank, e.g. the API key
    keep_host: str | None = None  # URLs on this host are kept (the API's: no PII in them)

    @classmethod
    def from_settings(cls, settings: Settings) -> Scrubber:
        secrets = (settings.api_key.get_secret_value(), settings.callback_secret.get_secret_value())
        return cls(
            secrets=tuple(sorted({s for s in secrets if s}, key=len, reverse=True)),
            keep_host=urlsplit(settings.api_url).hostname,
        )

    def _url(self, match: re.Match[str]) -> str:
        try:
            host = urlsplit(match.group(0)).hostname
        except ValueError:
            host = None
        return match.group(0) if host is not None and host == self.keep_host else URL

    @staticmethod
    def _pair(match: re.Match[str]) -> str:
        value = match.group("value")
        blank = f'"{FILTERED}"' if value.startswith('"') else FILTERED
        return match.group(0)[: match.start("value") - match.start(0)] + blank

    def text(self, value: str) -> str:
        value = _PAIR_RE.sub(self._pair, value)
        for secret in self.secrets:
            value = value.replace(secret, FILTERED)
        value = _URL_RE.sub(self._url, value)
        return _EMAIL_RE.sub(EMAIL, value)

    def scrub(self, value: Any) -> Any:
        """A scrubbed copy of `value` (dicts, lists and tuples walked to any depth)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                self.text(k) if isinstance(k, str) else k: self.scrub(v)
                for k, v in value.items()
                if not _drop(k)
            }
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value

    def before_send(self, event: Event, hint: Hint) -> Event | None:
        return cast(Event, self.scrub(event))

    def before_breadcrumb(self, crumb: Breadcrumb, hint: BreadcrumbHint) -> Breadcrumb | None:
        return cast(Breadcrumb, self.scrub(crumb))


# Set by `init_sentry`: `report_dead` scrubs the error text with the settings' secrets.
_scrubber = Scrubber()


def _release() -> str | None:
    try:
        return f"order-dispatch@{version('order-dispatch')}"
    except PackageNotFoundError:
        return None


def propagation_targets(settings: Settings) -> list[str]:
    """Only our callback hosts get trace headers: never StackOne or the configured API."""
    hosts = set(settings.callback_allowed_hosts)
    if settings.callback_url:
        hosts.add(urlsplit(settings.callback_url).hostname or "")
    api_hosts = {STACKONE_HOST, urlsplit(settings.api_url).hostname or ""}
    own = sorted(h.lower().rstrip(".") for h in hosts if h)
    return [rf"^https?://{re.escape(h)}(?::\d+)?(?:/|$)" for h in own if h not in api_hosts]


TRANSPORT_QUEUE_SIZE = 10_000
SHUTDOWN_TIMEOUT_S = 10.0


def _celery() -> list[Integration]:
    """Celery's integration where Celery is installed: the CLI extra reports without it."""
    try:
        from sentry_sdk.integrations.celery import CeleryIntegration
    except DidNotEnable:
        return []
    return [CeleryIntegration(monitor_beat_tasks=False, propagate_traces=True)]


def init_sentry(settings: Settings, *, component: str) -> bool:
    """Start the SDK for this process (`component`: worker, cli...). False without a DSN."""
    global _scrubber
    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else ""
    if not dsn:
        return False
    scrubber = Scrubber.from_settings(settings)
    sentry_sdk.init(
        dsn=dsn,
        environment=settings.sentry_environment,
        release=settings.sentry_release or _release(),
        server_name=f"order-dispatch-{component}",  # not the host's name
        # No `send_default_pii`: unset means False on every SDK >= 2.59, and 2.75 warns
        # (DeprecationWarning) when it is passed at all, even False. Its replacement,
        # `data_collection`, is unknown to older SDKs and switches `event_scrubber` off.
        include_local_variables=False,
        max_request_body_size="never",
        # The SDK drops events silently beyond its send queue (100 by default): 500 orders dying
        # together gave 143 events with one worker. One event per dead order is the promise, so
        # the queue holds a burst of that size (bounded: about 2 KB an event), and the process
        # waits for it to drain when it stops.
        transport_queue_size=TRANSPORT_QUEUE_SIZE,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
        event_scrubber=EventScrubber(
            recursive=True, denylist=[*DEFAULT_DENYLIST, *sorted(DROP_KEYS)]
        ),
        before_send=scrubber.before_send,
        before_breadcrumb=scrubber.before_breadcrumb,
        trace_propagation_targets=propagation_targets(settings),
        integrations=[
            *_celery(),
            # Log lines are breadcrumbs, never events: a dead order is reported once, below.
            LoggingIntegration(level=logging.INFO, event_level=None),
        ],
    )
    sentry_sdk.get_global_scope().set_tag("component", component)
    _scrubber = scrubber
    return True


def report_dead(
    *,
    key: str,
    account_id: str | None,
    stage: str,
    reason: str,
    kind: str,
    http_status: int | None,
    error: str | None,
) -> None:
    """The one event for an order that went dead: grouped by stage, kind and HTTP status; the
    order key in the `order` context (never a tag: tags must stay low-cardinality)."""
    if not sentry_sdk.get_client().is_active():
        return
    sentry_sdk.capture_message(
        f"order dead: {stage}/{reason}",
        level="error",
        fingerprint=["order-dead", stage, kind, str(http_status)],
        tags={
            "stage": stage,
            "kind": kind,
            "http_status": str(http_status),
            "account": account_id or "none",
        },
        contexts={"order": {"key": key, "reason": reason, "error": _scrubber.scrub(error)}},
    )


def report_missing_test_url(*, key: str, account_id: str | None) -> None:
    """A 2xx reply without a test URL: the order completed, but no one can take the test."""
    if not sentry_sdk.get_client().is_active():
        return
    sentry_sdk.capture_message(
        "order completed without a test URL",
        level="warning",
        fingerprint=["order-missing-test-url"],
        tags={"account": account_id or "none"},
        contexts={"order": {"key": key}},
    )
