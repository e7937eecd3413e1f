"""Callback delivery (SPEC §5): worker/http/webhooks.py against httpx.MockTransport."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from worker.errors import ConfigurationError
from worker.http.webhooks import (
    ERROR_KINDS,
    MAX_REPLY_BYTES,
    CallbackClient,
    Delivery,
    classify_error,
)
from worker.signing import new_secret

Handler = Callable[[httpx.Request], httpx.Response]
SECRET = new_secret()
URL = "https://hooks.example/order-dispatch"
EVENT = {
    "type": "order.completed",
    "timestamp": "2026-01-02T03:04:05Z",
    "data": {"key": "acct:o-1", "test_url": "https://tests.example/t/\u00e9"},
}
# Exactly these bytes must arrive: the signature covers them.
BODY = json.dumps(EVENT, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def no_lookups(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
    raise AssertionError("an unguarded URL must not be resolved")


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def client(seen: list[httpx.Request]) -> Iterator[Callable[[Handler], CallbackClient]]:
    made: list[CallbackClient] = []

    def make(handler: Handler) -> CallbackClient:
        def recording(request: httpx.Request) -> httpx.Response:
            request.read()
            seen.append(request)
            return handler(request)

        made.append(CallbackClient(transport=httpx.MockTransport(recording), resolver=no_lookups))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture
def transport_for() -> Iterator[Callable[[Handler], CallbackClient]]:
    """Clients whose guarded sends resolve to a public address."""
    made: list[CallbackClient] = []

    def public(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))]

    def make(handler: Handler) -> CallbackClient:
        made.append(CallbackClient(transport=httpx.MockTransport(handler), resolver=public))
        return made[-1]

    yield make
    for c in made:
        c.close()


def replying(status: int, **kwargs: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handler


def raising(exc_type: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return handler


def send(c: CallbackClient, url: str = URL, **kwargs: Any) -> Delivery:
    kwargs = {"msg_id": "evt_1", "secret": SECRET, "guarded": False, **kwargs}
    return c.send(url, BODY, **kwargs)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(client: Callable[[Handler], CallbackClient], status: int) -> None:
    """Any 2xx from the receiver is a delivery."""
    assert send(client(replying(status))) == Delivery(True, status, "delivered")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_never_followed(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request], status: int
) -> None:
    """A redirect is a failed delivery, never followed (it could point inside our network)."""
    location = "http://169.254.169.254/latest/meta-data/"
    delivery = send(client(replying(status, headers={"Location": location})))
    assert (delivery.delivered, delivery.http_status, delivery.kind) == (False, status, "redirect")
    assert location in delivery.detail
    assert [str(r.url) for r in seen] == [URL]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 429, 500, 502, 503])
def test_other_statuses_are_failures_with_their_status(
    client: Callable[[Handler], CallbackClient], status: int
) -> None:
    """Every other status is a failed delivery that keeps its status."""
    assert send(client(replying(status))) == Delivery(False, status, f"http_{status}")


@pytest.mark.parametrize(
    ("exc_type", "kind"),
    [
        (httpx.ConnectError, "connect_error"),
        (httpx.ConnectTimeout, "timeout"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.WriteTimeout, "timeout"),
        (httpx.PoolTimeout, "timeout"),
        (httpx.ReadError, "network_error"),
        (httpx.RemoteProtocolError, "protocol_error"),
        (httpx.ProxyError, "proxy_error"),
    ],
)
def test_transport_errors_become_failed_deliveries(
    client: Callable[[Handler], CallbackClient], exc_type: type[httpx.TransportError], kind: str
) -> None:
    """A transport error is a failed delivery with its kind, never an exception."""
    assert send(client(raising(exc_type))) == Delivery(False, None, kind, exc_type.__name__)


def all_subclasses(cls: type[httpx.HTTPError]) -> set[type[httpx.HTTPError]]:
    found: set[type[httpx.HTTPError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *all_subclasses(sub)}
    return found


HTTPX_ERRORS: list[type[httpx.HTTPError]] = sorted(
    {httpx.HTTPError, *all_subclasses(httpx.HTTPError)}, key=lambda c: c.__name__
)


@pytest.mark.parametrize("exc_type", HTTPX_ERRORS)
def test_every_httpx_error_has_a_kind(exc_type: type[httpx.HTTPError]) -> None:
    """Every httpx error, present and future subclass, maps to a known kind."""
    exc: httpx.HTTPError
    if exc_type is httpx.HTTPStatusError:
        request = httpx.Request("POST", URL)
        exc = exc_type("simulated", request=request, response=httpx.Response(500, request=request))
    else:
        exc = exc_type("simulated")
    delivery = classify_error(exc)
    assert (delivery.delivered, delivery.http_status) == (False, None)
    assert delivery.kind in ERROR_KINDS.values()
    if issubclass(exc_type, httpx.TransportError) and exc_type is not httpx.TransportError:
        assert delivery.kind != "transport_error", f"httpx.{exc_type.__name__} has no own kind"


def test_the_event_is_signed_and_sent_byte_for_byte(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request]
) -> None:
    """The event is sent byte for byte, signed so a Standard Webhooks receiver verifies it."""
    assert send(client(replying(204)), msg_id="evt_42").delivered
    (request,) = seen
    assert request.method == "POST"
    assert request.content == BODY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("order-dispatch/")
    assert request.headers["webhook-id"] == "evt_42"
    assert Webhook(SECRET).verify(request.content, dict(request.headers)) == EVENT


def test_the_timestamp_is_the_given_now_in_whole_seconds(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request]
) -> None:
    """The signed timestamp is the given time in whole seconds."""
    send(client(replying(204)), now_s=1_700_000_000.9)
    assert seen[0].headers["webhook-timestamp"] == "1700000000"


def test_an_unguarded_url_is_sent_as_configured(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request]
) -> None:
    # `no_lookups` fails the test if the client resolves anything.
    """The operator's URL is sent to as configured, without a lookup or address check."""
    assert send(client(replying(204)), "http://127.0.0.1:9000/cb").delivered
    assert str(seen[0].url) == "http://127.0.0.1:9000/cb"


def test_the_client_is_reused_across_sends(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request]
) -> None:
    """One client sends many events, each with its own webhook-id."""
    c = client(replying(204))
    assert [send(c, msg_id=f"evt_{i}").delivered for i in range(3)] == [True] * 3
    assert [r.headers["webhook-id"] for r in seen] == ["evt_0", "evt_1", "evt_2"]


class Endless(httpx.SyncByteStream):
    """A reply body that never ends, counting what is read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        while True:
            self.read_bytes += 1024
            yield b"x" * 1024


def test_an_endless_reply_is_read_only_so_far(client: Callable[[Handler], CallbackClient]) -> None:
    """An endless reply is read only up to the limit: a receiver cannot hold a worker."""
    reply = Endless()
    assert send(client(replying(200, stream=reply))).delivered
    assert MAX_REPLY_BYTES < reply.read_bytes <= MAX_REPLY_BYTES + 1024


def test_a_pinned_reply_is_not_read(transport_for: Callable[[Handler], CallbackClient]) -> None:
    """The reply on a pinned (guarded) connection is not read at all."""
    reply = Endless()
    assert send(transport_for(replying(200, stream=reply)), guarded=True).delivered
    assert reply.read_bytes == 0


def test_a_reply_that_fails_after_its_status_is_still_delivered(
    client: Callable[[Handler], CallbackClient],
) -> None:
    """A reply that breaks after its 2xx status still counts as delivered."""

    class Failing(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield b"ok"
            raise httpx.ReadTimeout("simulated")

    assert send(client(replying(204, stream=Failing()))) == Delivery(True, 204, "delivered")


def test_an_unsafe_destination_is_not_contacted(seen: list[httpx.Request]) -> None:
    """A guarded URL that resolves to an unsafe address is never contacted."""

    def loopback(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    transport = httpx.MockTransport(record)
    with CallbackClient(transport=transport, resolver=loopback) as c:
        delivery = send(c, guarded=True)
    assert (delivery.delivered, delivery.http_status) == (False, None)
    assert delivery.kind == "unsafe_destination"
    assert "'hooks.example' resolves to" in delivery.detail
    assert "loopback" in delivery.detail
    assert seen == []


def test_a_failed_lookup_is_a_failed_delivery() -> None:
    """A name that cannot be looked up is a failed delivery (`dns_error`)."""

    def failing(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with CallbackClient(transport=httpx.MockTransport(replying(204)), resolver=failing) as c:
        delivery = send(c, guarded=True)
    assert (delivery.delivered, delivery.kind) == (False, "dns_error")
    assert "not known" in delivery.detail


@pytest.mark.parametrize(
    ("url", "guarded", "kind"),
    [
        ("ftp://hooks.example/cb", True, "invalid_url"),
        ("/relative/cb", True, "invalid_url"),
        ("/relative/cb", False, "invalid_url"),
        ("ftp://hooks.example/cb", False, "invalid_url"),
        ("https:///cb", False, "invalid_url"),
        ("http://[::1/cb", False, "invalid_url"),
        ("http://[::1/cb", True, "invalid_url"),
    ],
)
def test_urls_that_cannot_be_sent_to(
    client: Callable[[Handler], CallbackClient],
    seen: list[httpx.Request],
    url: str,
    guarded: bool,
    kind: str,
) -> None:
    """URLs that cannot be sent to fail with their kind, and nothing is sent."""
    delivery = send(client(replying(204)), url, guarded=guarded)
    assert (delivery.delivered, delivery.http_status, delivery.kind) == (False, None, kind)
    assert seen == []


def test_a_malformed_secret_is_a_configuration_error(
    client: Callable[[Handler], CallbackClient], seen: list[httpx.Request]
) -> None:
    """A malformed secret is a configuration error that never echoes the secret."""
    with pytest.raises(ConfigurationError, match="DISPATCH_CALLBACK_SECRET") as info:
        send(client(replying(204)), secret="whsec_not base64!")
    assert "not base64!" not in str(info.value)
    assert seen == []


def test_the_default_client_builds_and_closes_without_a_network() -> None:
    """The default client is made and closed without touching the network."""
    CallbackClient(timeout_s=1.0).close()
