"""The HTTP boundary (SPEC §3, §4): worker/http/stackone.py against a real HTTP server on 127.0.0.1.

The server is an aiohttp application on its own event loop thread; each test says how it
answers. Faults that no answer can express (a refused connection, a connection closed without
a reply, a reply that never comes, bytes that are not HTTP) are made by real sockets too.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import aiohttp
import aiohttp.client_exceptions
import pytest
from aiohttp import web
from pydantic import SecretStr

from sandbox.processes import free_port
from worker.errors import AmbiguousError, PermanentError, RetryableError, SubmitError
from worker.http.stackone import (
    TRANSPORT_OUTCOMES,
    StackOneClient,
    classify_status,
    classify_transport_error,
    scrub_error_body,
)
from worker.identity import ORDERS_PATH
from worker.orders import OrderResult
from worker.process.eventloop import LoopThread
from worker.settings import HttpPolicy

Handler = Callable[["Seen"], web.StreamResponse]
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


@dataclass
class Seen:
    """A request the server took."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Api:
    """A real HTTP server on 127.0.0.1 answering with `handler`, and clients pointed at it."""

    loop: LoopThread
    url: str
    handler: Handler | None = None
    seen: list[Seen] = field(default_factory=list)
    clients: list[StackOneClient] = field(default_factory=list)
    servers: list[asyncio.Server] = field(default_factory=list)

    def client(self, handler: Handler, *, url: str | None = None, timeout_s: float = 5) -> Client:
        self.handler = handler
        policy = HttpPolicy(api_url=url or self.url, timeout_s=timeout_s, connect_timeout_s=2)

        async def make() -> StackOneClient:
            return StackOneClient(policy, SecretStr("key"))

        made = self.loop.run(make())
        self.clients.append(made)
        return Client(made, self.loop)


@dataclass
class Client:
    stackone: StackOneClient
    loop: LoopThread

    def submit(self, body: str = BODY) -> OrderResult:
        return self.loop.run(
            self.stackone.submit(body=body, account_id="acct-1", idempotency_key="acct-1:o-1")
        )


@pytest.fixture
def api() -> Iterator[Api]:
    loop = LoopThread("test-api")
    state: list[Api] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path, dict(request.headers), await request.read())
        state[0].seen.append(seen)
        handler = state[0].handler
        assert handler is not None
        return handler(seen)

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop.run(start())
    port = runner.addresses[0][1]
    state.append(Api(loop, f"http://127.0.0.1:{port}"))
    yield state[0]
    for c in state[0].clients:
        loop.run(c.close())
    for server in state[0].servers:
        server.close()
        loop.run(server.wait_closed())
    loop.run(runner.cleanup())
    loop.stop()


def replying(status: int, *, json_body: object = None, **kwargs: object) -> Handler:
    def handler(_: Seen) -> web.StreamResponse:
        if json_body is not None:
            return web.json_response(json_body, status=status, **kwargs)  # type: ignore[arg-type]
        return web.Response(status=status, **kwargs)  # type: ignore[arg-type]

    return handler


# --- the request ----------------------------------------------------------------------------------


def test_200_returns_the_order_result(api: Api) -> None:
    """A 200 returns the order result the API sent."""
    result = api.client(replying(200, json_body=RESULT)).submit()
    assert result == OrderResult(**RESULT)


def test_the_request_is_what_stackone_documents(api: Api) -> None:
    """The POST is what StackOne documents: path, Basic auth, account, idempotency key, body."""
    api.client(replying(200, json_body=RESULT)).submit()
    [request] = api.seen
    assert request.method == "POST"
    assert request.path == "/unified/ats/assessments/orders" == ORDERS_PATH
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"key:").decode()
    assert request.headers["x-account-id"] == "acct-1"
    assert request.headers["Idempotency-Key"] == "acct-1:o-1"
    assert request.headers["User-Agent"].startswith("order-dispatch/")
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == BODY.encode()


def test_a_base_path_in_the_api_url_is_kept(api: Api) -> None:
    """A base path in the API URL is kept before the orders path."""
    api.client(replying(200, json_body=RESULT), url=api.url + "/v1/").submit()
    assert api.seen[0].path == "/v1" + ORDERS_PATH


@pytest.mark.parametrize(
    "reply",
    ["{}", '{"id": "r-1"}', '{"id": "r-1", "test_url": "https://t", "status": "new", "x": [1]}'],
    ids=["empty", "no test_url", "extra fields"],
)
def test_lenient_2xx_bodies(api: Api, reply: str) -> None:
    """A 2xx body with fields missing or unknown is still read."""
    result = api.client(replying(200, body=reply.encode())).submit()
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
    """Every HTTP status has a class, and only 2xx is success."""
    outcome = classify_status(status)
    assert outcome in ("ok", "retry", "ambiguous", "permanent")
    assert (outcome == "ok") == (200 <= status <= 299)
    if 400 <= status <= 499 and status not in (408, 425, 429):
        assert outcome == "permanent"


@pytest.mark.parametrize(("status", "outcome"), EXPLICIT)
def test_spec_status_classes(status: int, outcome: str) -> None:
    """Each status SPEC §4 names has the class it states."""
    assert classify_status(status) == outcome


@pytest.mark.parametrize(("status", "outcome"), [e for e in EXPLICIT if e[1] != "ok"])
def test_submit_raises_the_class_of_the_status(api: Api, status: int, outcome: str) -> None:
    """A failing status raises the error class of its status, carrying the status."""
    body = {"statusCode": status, "message": "nope", "timestamp": "2025-06-01T12:00:00Z"}
    with pytest.raises(SubmitError) as info:
        api.client(replying(status, json_body=body)).submit()
    error = info.value
    assert type(error) is OUTCOME_ERRORS[outcome]
    assert error.http_status == status
    assert error.kind == f"http_{status}"
    assert json.loads(error.body) == {"statusCode": status, "message": "nope"}


def test_429_carries_retry_after(api: Api) -> None:
    """A 429 carries its Retry-After for the backoff."""
    answer = replying(429, headers={"Retry-After": "7"}, json_body={"statusCode": 429})
    with pytest.raises(RetryableError) as info:
        api.client(answer).submit()
    assert info.value.retry_after_s == 7.0
    assert info.value.http_status == 429


def test_redirect_is_not_followed(api: Api) -> None:
    """A redirect is a permanent failure and never followed."""
    answer = replying(307, headers={"Location": api.url + "/elsewhere"})
    with pytest.raises(PermanentError) as info:
        api.client(answer).submit()
    assert info.value.http_status == 307
    assert len(api.seen) == 1


@pytest.mark.parametrize("reply", [b"<html>oops</html>", b"", b"[]", b'"ok"', b"{"])
def test_unparseable_2xx_body_is_permanent(api: Api, reply: bytes) -> None:
    """A 2xx whose body is not an order result is a permanent `unparseable_body`."""
    with pytest.raises(PermanentError) as info:
        api.client(replying(200, body=reply)).submit()
    assert info.value.kind == "unparseable_body"
    assert info.value.http_status == 200


# --- transport errors -----------------------------------------------------------------------------

CLIENT_ERRORS = sorted(
    {
        getattr(aiohttp.client_exceptions, name)
        for name in aiohttp.client_exceptions.__all__
        if issubclass(getattr(aiohttp.client_exceptions, name), aiohttp.ClientError)
    },
    key=lambda c: c.__name__,
)


def blank(exc_type: type[BaseException]) -> BaseException:
    """An instance without its constructor's arguments: classification reads only the type."""
    return exc_type.__new__(exc_type)


@pytest.mark.parametrize("exc_type", CLIENT_ERRORS, ids=lambda c: c.__name__)
def test_every_aiohttp_client_error_is_classified(exc_type: type[BaseException]) -> None:
    """Every aiohttp error class is classified by its nearest known base."""
    error = classify_transport_error(blank(exc_type))
    nearest = next(c for c in exc_type.__mro__ if c in TRANSPORT_OUTCOMES)
    outcome, kind = TRANSPORT_OUTCOMES[nearest]
    assert type(error) is OUTCOME_ERRORS[outcome]
    assert error.kind == kind
    assert error.http_status is None


@pytest.mark.parametrize("exc_type", CLIENT_ERRORS, ids=lambda c: c.__name__)
def test_only_errors_before_sending_are_retried_blindly(exc_type: type[BaseException]) -> None:
    """`retry` means: nothing reached the API. Every other failure may have placed the order."""
    error = classify_transport_error(blank(exc_type))
    before_sending = issubclass(
        exc_type, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
    )
    assert isinstance(error, RetryableError) == before_sending


def raw_server(api: Api, then: bytes | None) -> str:
    """Reads the request, then writes `then` and closes (None: closes at once)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if then is not None:
            writer.write(then)
            await writer.drain()
        writer.close()

    async def start() -> str:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        api.servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    return api.loop.run(start())


def test_a_refused_connection_is_retried(api: Api) -> None:
    """A refused connection (nothing sent) is retryable."""
    c = api.client(replying(200), url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryableError) as info:
        c.submit()
    assert info.value.kind == "connect_error"
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


def test_a_connection_closed_without_a_reply_is_ambiguous(api: Api) -> None:
    """A connection closed without a reply is ambiguous: the API may have acted."""
    c = api.client(replying(200), url=raw_server(api, None))
    with pytest.raises(AmbiguousError) as info:
        c.submit()
    assert info.value.kind == "server_disconnected"


def test_a_reply_that_is_not_http_is_ambiguous(api: Api) -> None:
    """A reply that is not HTTP is ambiguous."""
    c = api.client(replying(200), url=raw_server(api, b"garbage\r\n\r\n"))
    with pytest.raises(AmbiguousError) as info:
        c.submit()
    assert info.value.kind in ("protocol_error", "server_disconnected")


def test_a_reply_cut_short_is_ambiguous(api: Api) -> None:
    """A reply cut short is ambiguous."""
    cut = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id"'
    c = api.client(replying(200), url=raw_server(api, cut))
    with pytest.raises(AmbiguousError) as info:
        c.submit()
    assert info.value.kind == "read_error"


def test_a_reply_that_does_not_come_is_an_ambiguous_read_timeout(api: Api) -> None:
    """A reply that does not come in time is an ambiguous read timeout."""
    c = api.client(_blocking(3.0), timeout_s=0.3)
    with pytest.raises(AmbiguousError) as info:
        c.submit()
    assert info.value.kind == "read_timeout"


def _blocking(seconds: float) -> Handler:
    """A handler that holds the reply back (the server answers on its own loop: a stream that
    waits before its first byte)."""

    class Slow(web.StreamResponse):
        async def prepare(self, request: web.BaseRequest) -> object:
            await asyncio.sleep(seconds)
            return await super().prepare(request)

    def handler(_: Seen) -> web.StreamResponse:
        return Slow(status=200)

    return handler


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
    """Scrubbing keeps an error body's status and message and masks emails."""
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
    """Other bodies keep nothing personal: emails masked, objects without status emptied."""
    assert scrub_error_body(text) == expected


def test_scrub_cuts_long_bodies() -> None:
    """A long error body is cut to the limit."""
    assert len(scrub_error_body("x" * 5000)) == 300
    assert len(scrub_error_body("x" * 5000, limit=20)) == 20


def test_error_body_from_the_api_is_scrubbed(api: Api) -> None:
    """An error body from the API reaches the error scrubbed of personal data."""
    with pytest.raises(PermanentError) as info:
        api.client(replying(422, body=ECHOING_BODY.encode())).submit()
    assert "@" not in info.value.body
    assert "sestier" not in info.value.body
    assert "sestier" not in str(info.value)
