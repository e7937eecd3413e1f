"""The Sentry scrubber: no PII or secret survives anywhere in an event; the rest does."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sentry_sdk

from producer.samples import example_order
from worker.obs.sentry import (
    Scrubber,
    init_sentry,
    propagation_targets,
    report_dead,
    report_missing_test_url,
)
from worker.settings import Settings

API_KEY = "sk-live-DISTINCT-9f8e"
SECRET = "whsec_DISTINCTsecret"
EMAIL = "zq.candidate@example.org"
NAME = "Zyxwvuts"
TEST_URL = "https://assessments.example/t/secret-test-123"
API_URL = "https://api.stackone.com/unified/ats/assessments/orders"
ORDER_KEY = "acct-test:ord-00001"

# Every value that must not survive (the example order brings its own names and emails).
FORBIDDEN = [
    API_KEY,
    SECRET,
    EMAIL,
    NAME,
    TEST_URL,
    "secret-test-123",
    "Romain",
    "Sestier",
    "sestier.romain123@gmail.com",
    "john.doe@gmail.com",
    "John Doe",
    "exmaple.com",
]


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"api_key": API_KEY, "callback_secret": SECRET, **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture
def scrubber() -> Scrubber:
    return Scrubber.from_settings(settings())


def realistic_event() -> dict[str, Any]:
    order = example_order()
    order["candidate"]["first_name"] = NAME
    error = (
        f'422 from {API_URL}: {{"candidate": {{"first_name": "{NAME}", "email": "{EMAIL}"}}}} '
        f"api_key={API_KEY}"
    )
    return {
        "event_id": "0123456789abcdef0123456789abcdef",
        "level": "error",
        "message": f"order dead: submit/rejected for {EMAIL} ({TEST_URL})",
        "logentry": {"message": "delivered %s", "params": [TEST_URL, SECRET]},
        "tags": {"stage": "submit", "kind": "rejected", "http_status": "422"},
        "user": {"email": EMAIL, "id": "u1"},
        "extra": {
            "order": order,
            "sys.argv": ["order-dispatch", "enqueue", "--callback-url", TEST_URL],
            "nested": {"deeper": [{"cb_event": {"test_url": TEST_URL}}, f"Bearer {API_KEY}"]},
        },
        "contexts": {
            "order": {"key": ORDER_KEY, "reason": "rejected", "error": error},
            "callback": {"callback_secret": SECRET, "url": TEST_URL, "attempt": 3},
        },
        "breadcrumbs": {
            "values": [
                {
                    "category": "httplib",
                    "data": {"url": API_URL, "method": "POST", "status_code": 422},
                },
                {
                    "category": "order_dispatch",
                    "message": f"order.completed {TEST_URL}",
                    "data": {"order_key": ORDER_KEY, "attempt": 1, "test_url": TEST_URL},
                },
                {"category": "httplib", "data": {"url": TEST_URL, "method": "POST"}},
            ]
        },
        "exception": {
            "values": [
                {
                    "type": "PermanentError",
                    "value": f"rejected: {error} secret={SECRET}",
                    "stacktrace": {"frames": [{"function": "submit", "lineno": 12}]},
                }
            ]
        },
        "request": {
            "url": TEST_URL,
            "method": "POST",
            "headers": {"Authorization": f"Bearer {API_KEY}", "X-Order-Key": ORDER_KEY},
            "data": {"payload": json.dumps(order), "body": order, "note": EMAIL},
        },
    }


def test_nothing_listed_survives_anywhere(scrubber: Scrubber) -> None:
    """No personal value or secret survives anywhere in an event, however deeply nested."""
    event = scrubber.before_send(realistic_event(), {})  # type: ignore[arg-type]
    text = json.dumps(event)
    for value in FORBIDDEN:
        assert value not in text, value
    assert event is not None
    assert not {"first_name", "last_name", "emails", "passthrough", "test_url"} & set(
        _all_keys(event)
    )
    assert event["request"]["headers"] == {"X-Order-Key": ORDER_KEY}


def test_what_is_not_personal_is_kept(scrubber: Scrubber) -> None:
    """What helps a person and is not personal (ids, tags, order key, API URL) is kept."""
    event: Any = scrubber.scrub(realistic_event())
    assert event["event_id"] == "0123456789abcdef0123456789abcdef"
    assert event["tags"] == {"stage": "submit", "kind": "rejected", "http_status": "422"}
    assert event["contexts"]["order"]["key"] == ORDER_KEY
    assert event["contexts"]["callback"] == {"url": "[url]", "attempt": 3}
    assert event["breadcrumbs"]["values"][0]["data"]["url"] == API_URL  # the API's URL is kept
    assert event["breadcrumbs"]["values"][1]["data"] == {"order_key": ORDER_KEY, "attempt": 1}
    assert event["exception"]["values"][0]["type"] == "PermanentError"
    assert event["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] == 12
    assert event["extra"]["order"]["job"]["title"] == "Software Engineer"
    assert event["extra"]["order"]["candidate"]["id"] == example_order()["candidate"]["id"]
    assert event["message"] == "order dead: submit/rejected for [email] ([url])"
    assert event["contexts"]["order"]["error"].startswith(f"422 from {API_URL}: ")


def test_scrubbing_is_idempotent(scrubber: Scrubber) -> None:
    """Scrubbing a scrubbed event changes nothing."""
    once = scrubber.scrub(realistic_event())
    assert scrubber.scrub(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"mail {EMAIL}, now", "mail [email], now"),
        (f"see {TEST_URL}.", "see [url]."),
        (f"POST {API_URL} 503", f"POST {API_URL} 503"),
        (f"key {API_KEY} and {SECRET}", "key [Filtered] and [Filtered]"),
        (f'{{"first_name": "{NAME}", "id": 7}}', '{"first_name": "[Filtered]", "id": 7}'),
        (f"{{'last_name': '{NAME}'}}", "{'last_name': [Filtered]}"),
        ("?email=zq%40example.org&x=1", "?email=[Filtered]&x=1"),
        ('"passthrough": {"other": "x"}, "id": 1', '"passthrough": [Filtered], "id": 1'),
        ("worker w1@host is fine", "worker w1@host is fine"),
    ],
)
def test_text(scrubber: Scrubber, text: str, expected: str) -> None:
    """Secrets, names, emails and passthrough are filtered out of free text; the rest stays."""
    assert scrubber.text(text) == expected
    assert scrubber.text(expected) == expected


def test_breadcrumbs_are_scrubbed_before_they_are_kept(scrubber: Scrubber) -> None:
    """Breadcrumbs are scrubbed before the SDK keeps them."""
    crumb = {"message": f"delivered to {TEST_URL}", "data": {"email": EMAIL, "attempt": 2}}
    assert scrubber.before_breadcrumb(crumb, {}) == {
        "message": "delivered to [url]",
        "data": {"attempt": 2},
    }


def test_empty_secrets_are_not_replaced() -> None:
    """Unset (empty) secrets are not treated as secrets to replace."""
    scrubber = Scrubber.from_settings(settings(api_key="", callback_secret=""))
    assert scrubber.secrets == ()
    assert scrubber.text("plain text") == "plain text"


def test_trace_headers_go_only_to_our_callback_hosts() -> None:
    """Trace headers go only to the configured callback hosts, never to others."""
    assert propagation_targets(settings()) == []
    targets = propagation_targets(
        settings(
            callback_url="https://hooks.example.com/od",
            callback_allowed_hosts="ats.example.net,api.stackone.com",
        )
    )
    assert targets == [
        r"^https?://ats\.example\.net(?::\d+)?(?:/|$)",
        r"^https?://hooks\.example\.com(?::\d+)?(?:/|$)",
    ]


def test_without_a_dsn_nothing_starts_and_reports_are_no_ops() -> None:
    """Without a DSN Sentry never starts, and reporting a dead order does nothing."""
    assert not sentry_sdk.get_client().is_active()
    assert init_sentry(settings(), component="test") is False
    assert not sentry_sdk.get_client().is_active()
    report_dead(
        key=ORDER_KEY,
        account_id="acct",
        stage="submit",
        reason="rejected",
        kind="rejected",
        http_status=422,
        error="x",
    )
    report_missing_test_url(key=ORDER_KEY, account_id="acct")


def _all_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value, *(key for v in value.values() for key in _all_keys(v))]
    if isinstance(value, list):
        return [k for v in value for k in _all_keys(v)]
    return []
