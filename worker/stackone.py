"""The only module that talks HTTP to StackOne; it classifies every outcome of a POST.

A POST either returns an `OrderResult` or raises one of `RetryableError`, `AmbiguousError`,
`PermanentError` (see `errors.py`), `raise ... from` the httpx error. `httpx` is imported here
(and in `callbacks.py`) only, so that a switch to a maintained fork is one line.
"""

from __future__ import annotations

import json
import re
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import httpx
from pydantic import SecretStr, ValidationError

from worker.backoff import parse_retry_after
from worker.errors import AmbiguousError, PermanentError, RetryableError, SubmitError
from worker.orders import OrderResult
from worker.settings import HttpPolicy

ORDERS_PATH = "/unified/ats/assessments/orders"
Outcome = Literal["ok", "retry", "ambiguous", "permanent"]

try:
    VERSION = version("order-dispatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"
USER_AGENT = f"order-dispatch/{VERSION} httpx/{httpx.__version__}"

# Every httpx transport error, by what it says about whether the request reached the API.
# Connection never established or no connection had: nothing was sent -> retry.
# Failed while sending or reading: the API may have acted -> ambiguous.
# Our own request or configuration is wrong -> permanent.
TRANSPORT_OUTCOMES: dict[type[httpx.TransportError], tuple[Outcome, str]] = {
    httpx.ConnectError: ("retry", "connect_error"),
    httpx.ConnectTimeout: ("retry", "connect_timeout"),
    httpx.PoolTimeout: ("retry", "pool_timeout"),
    httpx.ProxyError: ("retry", "proxy_error"),
    httpx.ReadTimeout: ("ambiguous", "read_timeout"),
    httpx.WriteTimeout: ("ambiguous", "write_timeout"),
    httpx.ReadError: ("ambiguous", "read_error"),
    httpx.WriteError: ("ambiguous", "write_error"),
    httpx.CloseError: ("ambiguous", "close_error"),
    httpx.RemoteProtocolError: ("ambiguous", "remote_protocol_error"),
    httpx.LocalProtocolError: ("permanent", "local_protocol_error"),
    httpx.UnsupportedProtocol: ("permanent", "unsupported_protocol"),
    # The bases, for a subclass a future httpx may add: classified by its nearest known base.
    httpx.TimeoutException: ("ambiguous", "timeout"),
    httpx.NetworkError: ("ambiguous", "network_error"),
    httpx.ProtocolError: ("ambiguous", "protocol_error"),
    httpx.TransportError: ("ambiguous", "transport_error"),
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


def classify_transport_error(exc: httpx.TransportError) -> SubmitError:
    for cls in type(exc).__mro__:
        if cls in TRANSPORT_OUTCOMES:
            outcome, kind = TRANSPORT_OUTCOMES[cls]
            break
    else:  # pragma: no cover - TransportError itself is in the table
        outcome, kind = "ambiguous", "transport_error"
    return _ERROR_CLASS[outcome](kind=kind, detail=type(exc).__name__)


def scrub_error_body(text: str, limit: int = 300) -> str:
    """Keep what helps a person decide (status and message), never what echoes the order."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        kept = {k: data[k] for k in ("statusCode", "message") if k in data}
        text = json.dumps(kept) if kept else ""
    return _EMAIL.sub("[email]", text)[:limit]


def classify_response(response: httpx.Response) -> OrderResult:
    outcome = classify_status(response.status_code)
    if outcome == "ok":
        try:
            return OrderResult.model_validate_json(response.content)
        except ValidationError as exc:
            raise PermanentError(
                kind="unparseable_body",
                http_status=response.status_code,
                body=scrub_error_body(response.text),
                detail=f"{exc.error_count()} problem(s) reading the reply",
            ) from exc
    retry_after = parse_retry_after(response.headers.get("retry-after"), now_s=time.time())
    raise _ERROR_CLASS[outcome](
        kind=f"http_{response.status_code}",
        http_status=response.status_code,
        retry_after_s=retry_after,
        body=scrub_error_body(response.text),
    )


class StackOneClient:
    """POSTs assessment orders. Not shared between threads: make one per thread."""

    def __init__(
        self,
        policy: HttpPolicy,
        api_key: SecretStr,
        *,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 4,
    ) -> None:
        self._client = httpx.Client(
            base_url=policy.api_url,
            auth=httpx.BasicAuth(api_key.get_secret_value(), ""),
            timeout=httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            follow_redirects=False,
            transport=transport,
        )

    def submit(self, *, body: str, account_id: str, idempotency_key: str) -> OrderResult:
        """POST one order; return its result or raise a classified `SubmitError`."""
        try:
            response = self._client.post(
                ORDERS_PATH,
                content=body.encode(),
                headers={"x-account-id": account_id, "Idempotency-Key": idempotency_key},
            )
        except httpx.TransportError as exc:
            raise classify_transport_error(exc) from exc
        return classify_response(response)

    def close(self) -> None:
        self._client.close()
