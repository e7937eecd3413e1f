"""The only module that talks HTTP to callback receivers: it signs an event and POSTs it once.

Every outcome comes back as a `Delivery`, never as an httpx exception: 2xx is delivered; a 3xx
is a failure (redirects are never followed), as is every other status and every transport
error. The worker imports `httpx` here only (the StackOne client is aiohttp).

A per-order callback URL (`guarded=True`) is pinned: its host is resolved once by
`ssrf.resolve_checked`, and the request goes to exactly that address, through
`PinningTransport`, with the original `Host` header and, for https, the original name as the
TLS SNI and certificate name (httpcore's `sni_hostname` request extension). A name that
resolves to a public address for the check and to 127.0.0.1 for the connect (DNS rebinding)
therefore cannot reach 127.0.0.1. The operator's own DISPATCH_CALLBACK_URL is trusted as
configured and sent without a check.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from types import TracebackType

import httpx

from worker import signing
from worker.errors import ConfigurationError
from worker.http import USER_AGENT as _BASE_AGENT
from worker.http import ssrf

USER_AGENT = f"{_BASE_AGENT} httpx/{httpx.__version__}"

# Request extension naming the address a pinned request must connect to.
PIN_EXTENSION = "order_dispatch.connect_ip"
DEFAULT_PORTS = {"http": 80, "https": 443}
# Read past the status only this much of a reply, to keep its connection for the next one.
MAX_REPLY_BYTES = 16 * 1024

# Every httpx error, by the `kind` it becomes; looked up along the exception's MRO, so a subclass
# a future httpx may add gets its nearest known base's kind.
ERROR_KINDS: dict[type[Exception], str] = {
    httpx.ConnectError: "connect_error",
    httpx.TimeoutException: "timeout",
    httpx.ProxyError: "proxy_error",
    httpx.UnsupportedProtocol: "unsupported_protocol",
    httpx.NetworkError: "network_error",
    httpx.ProtocolError: "protocol_error",
    httpx.TransportError: "transport_error",
    httpx.InvalidURL: "invalid_url",
    httpx.HTTPError: "http_error",
}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one POST of a callback came to.

    `kind` is short and low-cardinality (`delivered`, `http_500`, `redirect`, `timeout`,
    `connect_error`, `dns_error`, `unsafe_destination`, ...), fit for a metric label or the
    record's `last_error`; `detail` says more, for a person.
    """

    delivered: bool
    http_status: int | None
    kind: str
    detail: str = ""


def classify_error(exc: Exception) -> Delivery:
    kind = next((ERROR_KINDS[c] for c in type(exc).__mro__ if c in ERROR_KINDS), "http_error")
    return Delivery(False, None, kind, detail=type(exc).__name__)


def classify_response(response: httpx.Response) -> Delivery:
    status = response.status_code
    if 200 <= status <= 299:
        return Delivery(True, status, "delivered")
    if 300 <= status <= 399:
        location = response.headers.get("location", "")[:200]
        return Delivery(False, status, "redirect", detail=f"not followed: {location}")
    return Delivery(False, status, f"http_{status}")


def pin(request: httpx.Request, ip: str) -> httpx.Request:
    """`request` addressed to `ip`, still naming its host in `Host` and, for https, in TLS.

    Its connection is closed after the reply: pools key connections by address, not by name,
    so a kept one could be reused for another name on the same address, unchecked by TLS.
    """
    extensions = {k: v for k, v in request.extensions.items() if k != PIN_EXTENSION}
    if request.url.scheme == "https":
        extensions["sni_hostname"] = request.url.raw_host.decode("ascii")
    headers = request.headers.copy()  # carries the original Host
    headers["Connection"] = "close"
    return httpx.Request(
        request.method,
        request.url.copy_with(host=ip),
        headers=headers,
        stream=request.stream,
        extensions=extensions,
    )


def drain(response: httpx.Response) -> None:
    """Read a short reply to its end so that its connection can serve the next delivery. A long
    or failing one is left: closing the response then drops the connection instead."""
    if response.is_stream_consumed:  # already read (a reply built in memory)
        return
    read = 0
    try:
        for chunk in response.iter_raw():
            read += len(chunk)
            if read > MAX_REPLY_BYTES:
                return
    except httpx.HTTPError:
        return  # the status is already in hand


class PinningTransport(httpx.BaseTransport):
    """Sends a request that carries `PIN_EXTENSION` to that address, others unchanged."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        ip = request.extensions.get(PIN_EXTENSION)
        return self._inner.handle_request(request if ip is None else pin(request, ip))

    def close(self) -> None:
        self._inner.close()


class CallbackClient:
    """Signs and POSTs callback events. Not shared between threads: make one per thread."""

    def __init__(
        self,
        *,
        timeout_s: float = 15.0,
        allow_private: bool = False,
        transport: httpx.BaseTransport | None = None,
        resolver: ssrf.Resolver = socket.getaddrinfo,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._client = httpx.Client(
            transport=PinningTransport(transport or httpx.HTTPTransport()),
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            follow_redirects=False,
            trust_env=False,  # no proxy or credentials from the environment for third parties
        )

    def send(
        self,
        url: str,
        body: bytes,
        *,
        msg_id: str,
        secret: str,
        guarded: bool,
        now_s: float | None = None,
    ) -> Delivery:
        """POST `body` to `url`, signed; what happened. Raises only for a malformed `secret`
        (`ConfigurationError`): no delivery can succeed until the operator fixes it."""
        timestamp_s = int(time.time() if now_s is None else now_s)
        try:
            headers = signing.signed_headers(secret, msg_id, timestamp_s, body)
        except ValueError as exc:
            raise ConfigurationError(f"DISPATCH_CALLBACK_SECRET: {exc}") from exc
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return classify_error(exc)
        if target.scheme not in DEFAULT_PORTS or not target.raw_host:
            return Delivery(False, None, "invalid_url", detail="not an absolute http(s) URL")
        try:
            extensions = {PIN_EXTENSION: self._resolve(target)} if guarded else {}
        except ssrf.UnsafeDestination as exc:
            return Delivery(False, None, "unsafe_destination", detail=str(exc))
        except (OSError, UnicodeError) as exc:  # the name could not be looked up
            return Delivery(False, None, "dns_error", detail=str(exc)[:200])
        try:
            # Streamed: only the status matters, and the reply may be endless.
            with self._client.stream(
                "POST", target, content=body, headers=headers, extensions=extensions
            ) as response:
                delivery = classify_response(response)
                if not guarded:  # a pinned connection is never kept: nothing to read for
                    drain(response)
                return delivery
        except httpx.HTTPError as exc:
            return classify_error(exc)

    def _resolve(self, url: httpx.URL) -> str:
        return ssrf.resolve_checked(
            url.raw_host.decode("ascii"),
            url.port or DEFAULT_PORTS[url.scheme],
            allow_private=self._allow_private,
            resolver=self._resolver,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> CallbackClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
