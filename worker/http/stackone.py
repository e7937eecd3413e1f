"""The only module that talks HTTP to StackOne; it classifies every outcome of a POST.

A POST either returns an `OrderResult` or raises one of `RetryableError`, `AmbiguousError`,
`PermanentError` (see `errors.py`), `raise ... from` the client's error. The client is aiohttp
on the worker's event loop: measured on 2 cores with 256 POSTs in flight to a 100 ms API, it
kept up with the direct limit where one process of threads with httpx clients reached a
quarter of it (see docs/performance.md). aiohttp is imported here only.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Literal

import aiohttp
from pydantic import SecretStr, ValidationError

from worker import http
from worker.backoff import parse_retry_after
from worker.errors import AmbiguousError, PermanentError, RetryableError, SubmitError
from worker.identity import ORDERS_PATH, basic_auth
from worker.orders import OrderResult
from worker.settings import HttpPolicy

Outcome = Literal["ok", "retry", "ambiguous", "permanent"]

USER_AGENT = f"{http.USER_AGENT} aiohttp/{aiohttp.__version__}"

# Every aiohttp client error, by what it says about whether the request reached the API.
# Connection never established: nothing was sent -> retry.
# Failed while sending or reading: the API may have acted -> ambiguous.
# Our own request or configuration is wrong -> permanent.
TRANSPORT_OUTCOMES: dict[type[BaseException], tuple[Outcome, str]] = {
    aiohttp.ClientConnectorDNSError: ("retry", "dns_error"),
    aiohttp.ClientProxyConnectionError: ("retry", "proxy_error"),
    aiohttp.ClientSSLError: ("retry", "tls_error"),
    aiohttp.ClientConnectorError: ("retry", "connect_error"),
    aiohttp.ConnectionTimeoutError: ("retry", "connect_timeout"),
    aiohttp.SocketTimeoutError: ("ambiguous", "read_timeout"),
    aiohttp.ServerDisconnectedError: ("ambiguous", "server_disconnected"),
    aiohttp.ClientConnectionResetError: ("ambiguous", "connection_reset"),
    aiohttp.ClientPayloadError: ("ambiguous", "read_error"),
    aiohttp.ClientResponseError: ("ambiguous", "protocol_error"),
    aiohttp.ServerFingerprintMismatch: ("permanent", "fingerprint_mismatch"),
    aiohttp.InvalidURL: ("permanent", "invalid_url"),
    aiohttp.NonHttpUrlClientError: ("permanent", "invalid_url"),
    # The bases, for a subclass a future aiohttp may add: classified by its nearest known base.
    aiohttp.ServerTimeoutError: ("ambiguous", "timeout"),
    aiohttp.ClientOSError: ("ambiguous", "network_error"),
    aiohttp.ServerConnectionError: ("ambiguous", "connection_error"),
    aiohttp.ClientConnectionError: ("ambiguous", "connection_error"),
    aiohttp.ClientError: ("ambiguous", "client_error"),
    asyncio.TimeoutError: ("ambiguous", "timeout"),
    OSError: ("ambiguous", "network_error"),
}

_ERROR_CLASS: dict[Outcome, type[SubmitError]] = {
    "retry": RetryableError,
    "ambiguous": AmbiguousError,
    "permanent": PermanentError,
}
_EMAIL = re.compile(r"[^\s@\"']+@[^\s@\"']+")


def classify_status(status: int) -> Outcome:
    """What an HTTP status says about a POST (SPEC §4)."""
    if 200 <= status <= 299:
        return "ok"
    if status in (408, 425, 429, 503):
        return "retry"
    if status in (501, 505):
        return "permanent"
    if 500 <= status <= 599:
        # 500, 502, 504 and the rest: a server took the request and its effect is unknown.
        return "ambiguous"
    # 1xx as a final answer, 3xx (redirects are not followed for a POST), every other 4xx.
    return "permanent"


def classify_transport_error(exc: BaseException) -> SubmitError:
    for cls in type(exc).__mro__:
        if cls in TRANSPORT_OUTCOMES:
            outcome, kind = TRANSPORT_OUTCOMES[cls]
            break
    else:  # pragma: no cover - every exception the client catches has a base in the table
        outcome, kind = "ambiguous", "transport_error"
    return _ERROR_CLASS[outcome](kind=kind, detail=type(exc).__name__)


def scrub_error_body(text: str | bytes, limit: int = 300) -> str:
    """Keep what helps a person decide (status and message), never what echoes the order."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        kept = {k: data[k] for k in ("statusCode", "message") if k in data}
        text = json.dumps(kept) if kept else ""
    return _EMAIL.sub("[email]", text)[:limit]


def classify_response(status: int, content: bytes, retry_after: str | None) -> OrderResult:
    """The result of a POST that got an answer, or the classified error it stands for."""
    outcome = classify_status(status)
    if outcome == "ok":
        try:
            return OrderResult.model_validate_json(content)
        except ValidationError as exc:
            raise PermanentError(
                kind="unparseable_body",
                http_status=status,
                body=scrub_error_body(content),
                detail=f"{exc.error_count()} problem(s) reading the reply",
            ) from exc
    raise _ERROR_CLASS[outcome](
        kind=f"http_{status}",
        http_status=status,
        retry_after_s=parse_retry_after(retry_after, now_s=time.time()),
        body=scrub_error_body(content),
    )


class StackOneClient:
    """POSTs assessment orders from the worker's event loop (make it inside the running loop).

    `max_connections` caps the connections kept to the API; the caller caps the POSTs in flight.
    """

    def __init__(
        self,
        policy: HttpPolicy,
        api_key: SecretStr,
        *,
        max_connections: int = 64,
    ) -> None:
        self._url = policy.api_url.rstrip("/") + ORDERS_PATH
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=policy.timeout_s,  # a free connection, and connecting
                sock_connect=policy.connect_timeout_s,
                sock_read=policy.timeout_s,
            ),
            headers={
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Authorization": basic_auth(api_key.get_secret_value()),
            },
        )

    async def submit(self, *, body: str, account_id: str, idempotency_key: str) -> OrderResult:
        """POST one order; return its result or raise a classified `SubmitError`."""
        try:
            async with self._session.post(
                self._url,
                data=body.encode(),
                headers={"x-account-id": account_id, "Idempotency-Key": idempotency_key},
                allow_redirects=False,
            ) as response:
                content = await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise classify_transport_error(exc) from exc
        return classify_response(status, content, retry_after)

    async def close(self) -> None:
        await self._session.close()
