"""A local callback receiver, like `stripe listen`: checks each delivery's signature and shows it.

Owns the receiving side of SPEC §5 for a developer's machine: any POST, on any path, is checked
with `worker.signing.verify` (5 minutes' tolerance); a genuine one is handed to `on_delivery`
and answered 204; a bad signature or timestamp is answered 401 (a signed body that is not a JSON
object, 400) with a short JSON reason. `order-dispatch listen` runs
`serve_listener`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from worker.signing import InvalidSignature, secret_bytes, verify


def _event(msg_id: str, body: bytes) -> dict[str, Any] | None:
    """The delivered event, or None if the body is not a JSON object."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    return {
        "id": msg_id,
        "type": payload.get("type"),
        "data": payload.get("data"),
        "timestamp": payload.get("timestamp"),
    }


def create_listener_app(
    secret: str,
    *,
    on_delivery: Callable[[dict[str, Any]], None],
    on_reject: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.time,
) -> Starlette:
    """An app that verifies every POST against `secret` (ValueError now if it is malformed)."""
    secret_bytes(secret)

    def reject(reason: str, status_code: int = 401) -> Response:
        if on_reject is not None:
            on_reject(reason)
        return JSONResponse({"error": reason}, status_code=status_code)

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            msg_id = verify(secret, request.headers, body, now_s=now())
        except InvalidSignature as exc:
            return reject(str(exc))
        event = _event(msg_id, body)
        if event is None:
            return reject("signed, but the body is not a JSON object", 400)
        on_delivery(event)
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/", receive, methods=["POST"]),
            Route("/{path:path}", receive, methods=["POST"]),
        ]
    )


def describe(event: dict[str, Any]) -> str:
    """One console line for a verified delivery: type, webhook-id, key, test URL."""
    data = event.get("data")
    if not isinstance(data, dict):
        data = {}
    fields = [
        f"[green]{escape(str(event.get('type')))}[/]",
        escape(str(event.get("id"))),
        escape(str(data.get("key", "-"))),
        escape(str(data.get("test_url") or data.get("reason") or "-")),
    ]
    return "  ".join(fields)


def serve_listener(host: str, port: int, secret: str, console: Console) -> None:
    """Receive callbacks on http://host:port until interrupted, printing each one."""
    import uvicorn

    app = create_listener_app(
        secret,
        on_delivery=lambda event: console.print(describe(event)),
        on_reject=lambda reason: console.print(f"[red]rejected[/]: {escape(reason)}"),
    )
    console.print(f"Listening for signed callbacks on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
