"""The sandbox server: `POST /unified/ats/assessments/orders` as StackOne documents it.

Checks Basic auth and `x-account-id`, reads the body with the upstream (lenient) models, answers
`{id, remote_id, test_url}`, and replays the stored reply for a repeated `Idempotency-Key`.
Counts every POST and every create per order id, and logs each POST (the time it arrived,
before any injected latency; the order id; the status answered). Faults, set over
`PUT /_sandbox/faults`:

    latency_ms        added to every POST
    fail_status       answer this status to the first `fail_times` attempts of each order
    fail_times          (with `retry_after`, sent as Retry-After, e.g. for 429)
    drop_times        for the first N attempts of each order: create it, then drop the
                      connection without a reply (an ambiguous outcome for the client)
    reject_status     answer this status to every attempt while set (e.g. 422)
    nth_status, nth   answer this status to the Nth POST the sandbox receives (one request)
    outage            answer 503 to everything while true
    honor_idempotency replay the stored reply for a known Idempotency-Key (default true);
                      false behaves like StackOne today, where a repeated POST creates again
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from worker.identity import ORDERS_PATH
from worker.orders import UpstreamOrder

TEST_URL_BASE = "https://assessments.sandbox.order-dispatch.test/t/"


@dataclass
class Faults:
    latency_ms: float = 0.0
    fail_status: int | None = None
    fail_times: int = 0
    retry_after: str | None = None
    drop_times: int = 0
    reject_status: int | None = None
    outage: bool = False
    honor_idempotency: bool = True
    nth_status: int | None = None
    nth: int = 0


@dataclass
class SandboxState:
    api_key: str | None = None
    faults: Faults = field(default_factory=Faults)
    posts: Counter[str] = field(default_factory=Counter)
    creates: Counter[str] = field(default_factory=Counter)
    idempotency_keys: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    replies: dict[str, dict[str, str]] = field(default_factory=dict)
    log: list[tuple[float, str, int]] = field(default_factory=list)
    total_posts: int = 0

    def reset(self) -> None:
        self.total_posts = 0
        self.faults = Faults()
        self.posts.clear()
        self.creates.clear()
        self.idempotency_keys.clear()
        self.replies.clear()
        self.log.clear()


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "statusCode": status,
        "message": message,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _authorized(request: Request, api_key: str | None) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, _password = base64.b64decode(encoded).decode().partition(":")
    except ValueError:
        return False
    return bool(user) and (api_key is None or user == api_key)


class DropConnection(Response):
    """Start a reply, then hang up: the server acted, the client never learns how."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        # Returning with the body incomplete makes the server close the connection.


def create_app(state: SandboxState | None = None) -> Starlette:
    state = state or SandboxState()

    async def place_order(request: Request) -> Response:
        arrived = time.time()
        state.total_posts += 1
        nth = state.total_posts
        faults = state.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        raw = await request.body()
        try:
            order = UpstreamOrder.model_validate_json(raw)
        except ValidationError as exc:
            return _error(400, f"Invalid request: {exc.error_count()} problem(s) in the body")
        order_id = order.id or hashlib.sha256(raw).hexdigest()[:32]
        attempt = state.posts[order_id] + 1
        state.posts[order_id] = attempt
        if faults.nth_status and nth == faults.nth:
            status: Response | int = faults.nth_status
        else:
            status = await _answer(request, order_id, attempt)
        state.log.append((arrived, order_id, status if isinstance(status, int) else 200))
        if isinstance(status, Response):
            return status
        return _error(status, "sandbox fault", _retry_after(faults))

    async def _answer(request: Request, order_id: str, attempt: int) -> Response | int:
        faults = state.faults
        if not _authorized(request, state.api_key):
            return 401
        account = request.headers.get("x-account-id")
        if not account:
            return _error(400, "x-account-id header is required")
        if faults.outage:
            return 503
        if faults.reject_status:
            return faults.reject_status
        if faults.fail_status and attempt <= faults.fail_times:
            return faults.fail_status
        idem = request.headers.get("idempotency-key")
        if idem:
            state.idempotency_keys[order_id].add(idem)
        replay_key = f"{account}|{idem}"
        if idem and faults.honor_idempotency and replay_key in state.replies:
            return JSONResponse(state.replies[replay_key])
        reply = {
            "id": order_id,
            "remote_id": "remote-"
            + hashlib.sha256(f"{account}:{order_id}".encode()).hexdigest()[:16],
            "test_url": f"{TEST_URL_BASE}{order_id}",
        }
        state.creates[order_id] += 1
        if idem:
            state.replies[replay_key] = reply
        if attempt <= faults.drop_times:
            return DropConnection()
        return JSONResponse(reply)

    async def get_stats(request: Request) -> Response:
        return JSONResponse(
            {
                "posts": dict(state.posts),
                "creates": dict(state.creates),
                "idempotency_keys": {k: sorted(v) for k, v in state.idempotency_keys.items()},
                "log": state.log if request.query_params.get("log") else [],
                "faults": asdict(state.faults),
            }
        )

    async def put_faults(request: Request) -> Response:
        try:
            state.faults = Faults(**json.loads(await request.body() or b"{}"))
        except (TypeError, ValueError) as exc:
            return _error(400, f"bad faults: {exc}")
        return JSONResponse(asdict(state.faults))

    async def post_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route(ORDERS_PATH, place_order, methods=["POST"]),
            Route("/_sandbox/stats", get_stats, methods=["GET"]),
            Route("/_sandbox/faults", put_faults, methods=["PUT"]),
            Route("/_sandbox/reset", post_reset, methods=["POST"]),
            Route("/_sandbox/health", health, methods=["GET"]),
        ]
    )


def _retry_after(faults: Faults) -> dict[str, str] | None:
    return {"Retry-After": faults.retry_after} if faults.retry_after else None


def serve(
    host: str,
    port: int,
    api_key: str | None = None,
    *,
    faults: Faults | None = None,
    log_level: str = "warning",
) -> None:
    import uvicorn

    state = SandboxState(api_key=api_key, faults=faults or Faults())
    uvicorn.run(create_app(state), host=host, port=port, log_level=log_level, access_log=False)
