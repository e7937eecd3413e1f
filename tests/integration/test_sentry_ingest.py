"""What really leaves the process for Sentry: a fake ingest on 127.0.0.1 keeps every envelope.

The SDK is started with `init_sentry` as a worker would; the scope and the error texts are
stuffed with distinctive PII and secrets, and not one byte of them may reach the ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sentry_sdk

from tests.fakes import Ingest
from worker.obs.sentry import init_sentry, report_dead, report_missing_test_url
from worker.settings import Settings

API_KEY = "sk-live-DISTINCT-9f8e"
SECRET = "whsec_DISTINCTsecret"
EMAIL = "zq.candidate@example.org"
NAME = "Zyxwvuts"
TEST_URL = "https://assessments.example/t/secret-test-123"
FORBIDDEN = [API_KEY, SECRET, EMAIL, NAME, TEST_URL, "secret-test-123", "DISTINCT"]
ORDER_KEYS = ["acct-1:ord-1", "acct-1:ord-2", "acct-1:ord-3"]
ERROR = (
    f'422 Unprocessable: {{"candidate": {{"first_name": "{NAME}", "email": "{EMAIL}"}}}} '
    f"test_url={TEST_URL} via key {API_KEY}, signed with {SECRET}"
)


@pytest.fixture
def ingest() -> Iterator[Ingest]:
    fake = Ingest()
    settings = Settings(
        _env_file=None,
        api_key=API_KEY,
        callback_secret=SECRET,
        SENTRY_DSN=fake.dsn,
        SENTRY_ENVIRONMENT="test",
        SENTRY_RELEASE="order-dispatch@test",
    )
    assert init_sentry(settings, component="worker")
    try:
        with sentry_sdk.isolation_scope():  # nothing set on the scope outlives the test
            yield fake
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
        sentry_sdk.get_global_scope().remove_tag("component")
        fake.close()


def dirty_the_scope() -> None:
    """What careless code might leave on the scope of a task, plus a log line."""
    sentry_sdk.set_user({"id": "u-1", "email": EMAIL})
    sentry_sdk.set_extra("order", {"candidate": {"first_name": NAME, "email": EMAIL}})
    sentry_sdk.set_extra("passthrough", {"note": NAME})
    sentry_sdk.set_context("delivery", {"url": TEST_URL, "callback_secret": SECRET, "try": 2})
    sentry_sdk.add_breadcrumb(
        category="http", message=f"POST {TEST_URL}", data={"email": EMAIL, "body": {"n": NAME}}
    )
    logging.getLogger("order_dispatch.test").warning(
        "delivered %s to %s with %s", TEST_URL, EMAIL, API_KEY, extra={"last_name": NAME}
    )


def dead(key: str, kind: str, http_status: int | None) -> None:
    report_dead(
        key=key,
        account_id="acct-1",
        stage="submit",
        reason="rejected",
        kind=kind,
        http_status=http_status,
        error=ERROR,
    )


def test_one_grouped_event_per_dead_order_and_no_pii(ingest: Ingest) -> None:
    """Each dead order sends one event, grouped by reason and status, with no personal data."""
    dirty_the_scope()
    dead(ORDER_KEYS[0], "rejected", 422)
    dead(ORDER_KEYS[1], "rejected", 422)
    dead(ORDER_KEYS[2], "conflict", 409)
    logging.getLogger("order_dispatch.test").error("order.dead %s", EMAIL)  # no event
    sentry_sdk.flush(timeout=10)

    events = ingest.events()
    assert len(events) == 3
    assert set(ingest.paths) == {"/api/1/envelope/"}
    prints = [tuple(e["fingerprint"]) for e in events]
    assert prints.count(("order-dead", "submit", "rejected", "422")) == 2
    assert prints.count(("order-dead", "submit", "conflict", "409")) == 1
    for event, key in zip(events, ORDER_KEYS, strict=True):
        assert event["level"] == "error"
        assert event["message"] == "order dead: submit/rejected"
        assert event["tags"] == {
            "stage": "submit",
            "kind": event["fingerprint"][2],
            "http_status": event["fingerprint"][3],
            "account": "acct-1",
            "component": "worker",
        }
        order = event["contexts"]["order"]
        assert (order["key"], order["reason"]) == (key, "rejected")
        assert order["error"].startswith('422 Unprocessable: {"candidate": {"first_name": "[')
        assert event["server_name"] == "order-dispatch-worker"
        assert event["environment"] == "test"
        assert event["contexts"]["delivery"] == {"url": "[url]", "try": 2}
        assert event["extra"]["order"] == {"candidate": {}}
        crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
        assert "POST [url]" in crumbs and "delivered [url] to [email] with [Filtered]" in crumbs
    for body in ingest.bodies:
        for value in FORBIDDEN:
            assert value.encode() not in body, value


def test_logged_errors_create_no_event(ingest: Ingest) -> None:
    """Logged errors (ours or Celery's) send no Sentry event: only dead orders do."""
    logging.getLogger("order_dispatch").error("order.dead")
    logging.getLogger("celery.app.trace").error("Task failed", exc_info=ValueError("x"))
    sentry_sdk.flush(timeout=10)
    assert ingest.events() == []


def fail(message: str) -> None:
    raise ValueError(message)


def test_unexpected_exceptions_are_captured_scrubbed(ingest: Ingest) -> None:
    """An unexpected exception and a missing test URL are reported with secrets scrubbed."""
    try:
        fail(ERROR)
    except ValueError:
        sentry_sdk.capture_exception()
    report_missing_test_url(key=ORDER_KEYS[0], account_id="acct-1")
    sentry_sdk.flush(timeout=10)

    crash, missing = ingest.events()
    (value,) = crash["exception"]["values"]
    assert value["type"] == "ValueError" and "[Filtered]" in value["value"]
    assert all("vars" not in frame for frame in value["stacktrace"]["frames"])
    assert missing["level"] == "warning"
    assert missing["fingerprint"] == ["order-missing-test-url"]
    assert missing["contexts"]["order"] == {"key": ORDER_KEYS[0]}
    for body in ingest.bodies:
        for secret in FORBIDDEN:
            assert secret.encode() not in body, secret


def test_the_sdk_is_configured_to_collect_nothing_personal(ingest: Ingest) -> None:
    """The SDK is set to collect nothing personal: no PII, locals, bodies or propagation."""
    client = sentry_sdk.get_client()
    assert client.is_active() and not client.should_send_default_pii()
    options = client.options
    assert options["include_local_variables"] is False
    assert options["max_request_body_size"] == "never"
    assert options["trace_propagation_targets"] == []  # no callback hosts configured
    assert options["server_name"] == "order-dispatch-worker"
