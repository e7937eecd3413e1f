"""The HTTP boundary (SPEC §3, §4): worker/stackone.py against httpx.MockTransport."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from pydantic import SecretStr

from worker.errors import AmbiguousError, PermanentError, RetryableError, SubmitError
from worker.orders import OrderResult
from worker.settings import HttpPolicy
from worker.stackone import (
    ORDERS_PATH,
    TRANSPORT_OUTCOMES,
    StackOneClient,
    classify_status,
    scrub_error_body,
)

Handler = Callable[[httpx.Request], httpx.Response]
BODY = (
    '{"id":"o-1","package":{"id":"p"},"application":{"id":"a"},'
    '"candidate":{"emails":[{"value":"sestier.romain123@gmail.com"}]}}'
)
RESULT = {"id": "r-1", "remote_id": "rr-1", "test_url": "https://tests.example/t/1"}
OUTCOME_ERRORS: dict[str, type[SubmitError]] = {
    "retry": RetryableError,
    "ambiguous": AmbiguousError,
    "permanent": PermanentError,
}


@pytest.fixture
def client() -> Iterator[Callable[[Handler], StackOneClient]]:
    made: list[StackOneClient] = []

    def make(handler: Handler) -> StackOneClient:
        c = StackOneClient(
            HttpPolicy(api_url="https://api.test", timeout_s=5),
            SecretStr("key"),
            transport=httpx.MockTransport(handler),
        )
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def submit(c: StackOneClient, body: str = BODY) -> OrderResult:
    return c.submit(body=body, account_id="acct-1", idempotency_key="acct-1:o-1")


def replying(status: int, **kwargs: object) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)  # type: ignore[arg-type]

    return handler


# --- the request ----------------------------------------------------------------------------------


def test_200_returns_the_order_result(client: Callable[[Handler], StackOneClient]) -> None:
    result = submit(client(replying(200, json=RESULT)))
    assert result == OrderResult(**RESULT)


def test_the_request_is_what_stackone_documents(
    client: Callable[[Handler], StackOneClient],
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RESULT)

    submit(client(handler))
    [request] = seen
    assert request.method == "POST"
    assert str(request.url) == "https://api.test" + ORDERS_PATH
    assert request.url.path == "/unified/ats/assessments/orders"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"key:").decode()
    assert request.headers["x-account-id"] == "acct-1"
    assert request.headers["idempotency-key"] == "acct-1:o-1"
    assert request.headers["user-agent"].startswith("order-dispatch/")
    assert request.headers["content-type"] == "application/json"
    assert request.content == BODY.encode()


@pytest.mark.parametrize(
    "reply",
    ["{}", '{"id": "r-1"}', '{"id": "r-1", "test_url": "https://t", "status": "new", "x": [1]}'],
    ids=["empty", "no test_url", "extra fields"],
)
def test_lenient_2xx_bodies(client: Callable[[Handler], StackOneClient], reply: str) -> None:
    result = submit(client(replying(200, content=reply.encode())))
    assert result.id == json.loads(reply).get("id")
    assert result.test_url == json.loads(reply).get("test_url")


# --- status codes ---------------------------------------------------------------------------------

SPEC_CLASSES = {
    "ok": [200, 201, 202, 299],
    "retry": [408, 425, 429, 503],
    "ambiguous": [500, 502, 504],
    "permanent": [400, 401, 403, 404, 409, 412, 422, 501, 402, 405, 410, 413, 415, 418, 451, 499],
}
EXPLICIT = [(status, outcome) for outcome, statuses in SPEC_CLASSES.items() for status in statuses]


@pytest.mark.parametrize("status", range(100, 600))
def test_every_status_is_classified(status: int) -> None:
    outcome = classify_status(status)
    assert outcome in ("ok", "retry", "ambiguous", "permanent")
    assert (outcome == "ok") == (200 <= status <= 299)
    if 400 <= status <= 499 and status not in (408, 425, 429):
        assert outcome == "permanent"


@pytest.mark.parametrize(("status", "outcome"), EXPLICIT)
def test_spec_status_classes(status: int, outcome: str) -> None:
    assert classify_status(status) == outcome


@pytest.mark.parametrize(("status", "outcome"), [e for e in EXPLICIT if e[1] != "ok"])
def test_submit_raises_the_class_of_the_status(
    client: Callable[[Handler], StackOneClient], status: int, outcome: str
) -> None:
    body = {"statusCode": status, "message": "nope", "timestamp": "2025-06-01T12:00:00Z"}
    with pytest.raises(SubmitError) as info:
        submit(client(replying(status, json=body)))
    error = info.value
    assert type(error) is OUTCOME_ERRORS[outcome]
    assert error.http_status == status
    assert error.kind == f"http_{status}"
    assert json.loads(error.body) == {"statusCode": status, "message": "nope"}


def test_429_carries_retry_after(client: Callable[[Handler], StackOneClient]) -> None:
    with pytest.raises(RetryableError) as info:
        submit(client(replying(429, headers={"Retry-After": "7"}, json={"statusCode": 429})))
    assert info.value.retry_after_s == 7.0
    assert info.value.http_status == 429


def test_redirect_is_not_followed(client: Callable[[Handler], StackOneClient]) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/orders"})

    with pytest.raises(PermanentError) as info:
        submit(client(handler))
    assert info.value.http_status == 307
    assert len(calls) == 1


@pytest.mark.parametrize("reply", [b"<html>oops</html>", b"", b"[]", b'"ok"', b"{"])
def test_unparseable_2xx_body_is_permanent(
    client: Callable[[Handler], StackOneClient], reply: bytes
) -> None:
    with pytest.raises(PermanentError) as info:
        submit(client(replying(200, content=reply)))
    assert info.value.kind == "unparseable_body"
    assert info.value.http_status == 200


# --- transport errors -----------------------------------------------------------------------------


def all_subclasses(cls: type) -> set[type]:
    found: set[type] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


TRANSPORT_ERRORS = sorted(
    {httpx.TransportError, *all_subclasses(httpx.TransportError)}, key=lambda c: c.__name__
)


@pytest.mark.parametrize("exc_type", TRANSPORT_ERRORS, ids=lambda c: c.__name__)
def test_every_httpx_transport_error_has_its_own_entry(exc_type: type) -> None:
    assert exc_type in TRANSPORT_OUTCOMES, f"httpx.{exc_type.__name__} is not classified"
    outcome, kind = TRANSPORT_OUTCOMES[exc_type]
    assert outcome in OUTCOME_ERRORS
    assert kind


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


@pytest.mark.parametrize(
    ("exc_type", "expected"),
    [
        (httpx.ConnectError, RetryableError),
        (httpx.ConnectTimeout, RetryableError),
        (httpx.PoolTimeout, RetryableError),
        (httpx.ReadTimeout, AmbiguousError),
        (httpx.RemoteProtocolError, AmbiguousError),
        (httpx.ReadError, AmbiguousError),
    ],
    ids=lambda v: v.__name__,
)
def test_transport_errors_in_the_spec(
    client: Callable[[Handler], StackOneClient],
    exc_type: type[httpx.TransportError],
    expected: type[SubmitError],
) -> None:
    with pytest.raises(SubmitError) as info:
        submit(client(raising(exc_type)))
    assert type(info.value) is expected
    assert type(info.value.__cause__) is exc_type
    assert info.value.http_status is None


@pytest.mark.parametrize("exc_type", TRANSPORT_ERRORS, ids=lambda c: c.__name__)
def test_submit_raises_what_the_table_says(
    client: Callable[[Handler], StackOneClient], exc_type: type[httpx.TransportError]
) -> None:
    outcome, kind = TRANSPORT_OUTCOMES[exc_type]
    with pytest.raises(SubmitError) as info:
        submit(client(raising(exc_type)))
    assert type(info.value) is OUTCOME_ERRORS[outcome]
    assert info.value.kind == kind
    assert type(info.value.__cause__) is exc_type


# --- error bodies ---------------------------------------------------------------------------------

ECHOING_BODY = json.dumps(
    {
        "statusCode": 422,
        "message": "candidate.emails[0] sestier.romain123@gmail.com is already assessed",
        "timestamp": "2025-06-01T12:00:00.000Z",
        "provider_errors": [
            {"raw": {"candidate": {"first_name": "Romain", "email": "sestier.romain123@gmail.com"}}}
        ],
    }
)


def test_scrub_keeps_status_and_message_and_masks_emails() -> None:
    scrubbed = scrub_error_body(ECHOING_BODY)
    assert json.loads(scrubbed) == {
        "statusCode": 422,
        "message": "candidate.emails[0] [email] is already assessed",
    }
    assert "@" not in scrubbed
    assert "Romain" not in scrubbed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("bad gateway for john.doe@gmail.com", "bad gateway for [email]"),
        ('{"provider_errors": [{"email": "a@b.example"}]}', ""),
        ("[1, 2]", "[1, 2]"),
        ("", ""),
    ],
)
def test_scrub_other_bodies(text: str, expected: str) -> None:
    assert scrub_error_body(text) == expected


def test_scrub_cuts_long_bodies() -> None:
    assert len(scrub_error_body("x" * 5000)) == 300
    assert len(scrub_error_body("x" * 5000, limit=20)) == 20


def test_error_body_from_the_api_is_scrubbed(client: Callable[[Handler], StackOneClient]) -> None:
    with pytest.raises(PermanentError) as info:
        submit(client(replying(422, content=ECHOING_BODY.encode())))
    assert "@" not in info.value.body
    assert "sestier" not in info.value.body
    assert "sestier" not in str(info.value)
