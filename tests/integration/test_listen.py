"""`order-dispatch listen` (SPEC §5): the local receiver under a real uvicorn, fed by a real
CallbackClient over 127.0.0.1."""

from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from rich.console import Console

from sandbox.listen import create_listener_app, describe, serve_listener
from sandbox.processes import free_port, wait_until
from worker.http.webhooks import CallbackClient, Delivery
from worker.signing import new_secret

SECRET = new_secret()
EVENT = {
    "type": "order.completed",
    "timestamp": "2026-01-02T03:04:05Z",
    "data": {"key": "acct:o-1", "order_id": "o-1", "test_url": "https://tests.example/t/1"},
}
BODY = json.dumps(EVENT).encode()


@dataclass
class Listener:
    url: str
    port: int
    delivered: list[dict[str, Any]]
    rejected: list[str]


@contextmanager
def serving(app: Any, **tls: Any) -> Iterator[int]:
    """Run `app` under a real uvicorn on 127.0.0.1, in a thread; yield its port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        **tls,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="listener", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout_s=10, what="the listener to start")
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def listener() -> Iterator[Listener]:
    delivered: list[dict[str, Any]] = []
    rejected: list[str] = []
    app = create_listener_app(SECRET, on_delivery=delivered.append, on_reject=rejected.append)
    with serving(app) as port:
        yield Listener(f"http://127.0.0.1:{port}", port, delivered, rejected)


def resolving_to(ip: str) -> Any:
    def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    return resolver


def test_an_unguarded_delivery_is_verified_and_handed_over(listener: Listener) -> None:
    """A signed delivery is verified by the listener and handed over as the event sent."""
    with CallbackClient(allow_private=True, timeout_s=5) as client:
        delivery = client.send(
            f"{listener.url}/hooks/orders", BODY, msg_id="evt_1", secret=SECRET, guarded=False
        )
    assert (delivery.delivered, delivery.http_status) == (True, 204)
    assert listener.delivered == [{"id": "evt_1", **EVENT}]
    assert listener.rejected == []


def test_a_guarded_delivery_goes_to_the_pinned_address(listener: Listener) -> None:
    # `receiver.test` exists only in this resolver: the request can arrive only by the pinned IP.
    """A guarded delivery connects to the address checked at lookup, with the URL's Host."""
    with CallbackClient(
        allow_private=True, timeout_s=5, resolver=resolving_to("127.0.0.1")
    ) as client:
        delivery = client.send(
            f"http://receiver.test:{listener.port}/",
            BODY,
            msg_id="evt_2",
            secret=SECRET,
            guarded=True,
        )
    assert (delivery.delivered, delivery.http_status) == (True, 204)
    assert [e["id"] for e in listener.delivered] == ["evt_2"]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `receiver.test` only: (cert, key)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=receiver.test"]
    command += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += [
        "-addext",
        "subjectAltName=DNS:receiver.test",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


def test_a_pinned_https_delivery_checks_the_certificate_against_the_host_name(
    certificate: tuple[Path, Path],
) -> None:
    """Connected to 127.0.0.1, the TLS name checked is still the URL's host (SNI)."""
    cert, key = certificate
    delivered: list[dict[str, Any]] = []
    app = create_listener_app(SECRET, on_delivery=delivered.append)
    trusting = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(cert)))
    with (
        serving(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as port,
        CallbackClient(
            allow_private=True, timeout_s=5, transport=trusting, resolver=resolving_to("127.0.0.1")
        ) as client,
    ):

        def send(url: str, *, guarded: bool) -> Delivery:
            return client.send(url, BODY, msg_id="evt_t", secret=SECRET, guarded=guarded)

        ok = send(f"https://receiver.test:{port}/", guarded=True)
        # The same address under another name, or by IP: the certificate does not match.
        other_name = send(f"https://other.test:{port}/", guarded=True)
        by_ip = send(f"https://127.0.0.1:{port}/", guarded=False)
    assert (ok.delivered, ok.http_status) == (True, 204)
    assert [e["id"] for e in delivered] == ["evt_t"]
    assert (other_name.delivered, other_name.kind) == (False, "connect_error")
    assert (by_ip.delivered, by_ip.kind) == (False, "connect_error")


def test_a_guarded_delivery_to_loopback_is_refused_unless_allowed(listener: Listener) -> None:
    """A guarded delivery to loopback is refused before anything is sent."""
    with CallbackClient(timeout_s=5) as client:
        delivery = client.send(
            f"{listener.url}/", BODY, msg_id="evt_3", secret=SECRET, guarded=True
        )
    assert (delivery.delivered, delivery.kind) == (False, "unsafe_destination")
    assert listener.delivered == []
    assert listener.rejected == []


def test_a_wrong_secret_is_answered_401(listener: Listener) -> None:
    """A delivery signed with another secret is answered 401 and not handed over."""
    with CallbackClient(allow_private=True, timeout_s=5) as client:
        delivery = client.send(
            f"{listener.url}/", BODY, msg_id="evt_4", secret=new_secret(), guarded=False
        )
    assert (delivery.delivered, delivery.http_status, delivery.kind) == (False, 401, "http_401")
    assert listener.delivered == []
    assert listener.rejected == ["no matching v1 signature"]


def test_a_stale_delivery_is_answered_401(listener: Listener) -> None:
    """A delivery with a timestamp too old is answered 401, with the reason recorded."""
    with CallbackClient(allow_private=True, timeout_s=5) as client:
        delivery = client.send(
            f"{listener.url}/",
            BODY,
            msg_id="evt_5",
            secret=SECRET,
            guarded=False,
            now_s=time.time() - 3600,
        )
    assert (delivery.delivered, delivery.http_status) == (False, 401)
    assert listener.rejected == ["webhook-timestamp is too old"]


def test_an_unsigned_post_gets_a_short_json_reason(listener: Listener) -> None:
    """An unsigned POST gets 401 and a one-line JSON reason naming the missing headers."""
    response = httpx.post(f"{listener.url}/anything", content=BODY, timeout=5)
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing webhook-id, webhook-timestamp or webhook-signature header"
    }


def test_the_listeners_clock_is_injected() -> None:
    """The listener judges timestamps by its injected clock, not the machine's."""
    delivered: list[dict[str, Any]] = []
    app = create_listener_app(SECRET, on_delivery=delivered.append, now=lambda: 1_700_000_000.0)
    with serving(app) as port, CallbackClient(allow_private=True, timeout_s=5) as client:
        url = f"http://127.0.0.1:{port}/"
        then = client.send(url, BODY, msg_id="e1", secret=SECRET, guarded=False, now_s=1.7e9)
        now = client.send(url, BODY, msg_id="e2", secret=SECRET, guarded=False)
    assert (then.http_status, now.http_status) == (204, 401)
    assert [e["id"] for e in delivered] == ["e1"]


def test_a_signed_body_that_is_not_a_json_object_is_answered_400(listener: Listener) -> None:
    """A correctly signed body that is not a JSON object is answered 400, not handed over."""
    with CallbackClient(allow_private=True, timeout_s=5) as client:
        delivery = client.send(
            f"{listener.url}/", b"[1, 2]", msg_id="evt_10", secret=SECRET, guarded=False
        )
    assert (delivery.delivered, delivery.http_status) == (False, 400)
    assert listener.delivered == []
    assert listener.rejected == ["signed, but the body is not a JSON object"]


def test_a_malformed_secret_is_refused_when_the_app_is_made() -> None:
    """A malformed webhook secret is refused when the listener is made, not at first delivery."""
    with pytest.raises(ValueError, match="webhook secret"):
        create_listener_app("whsec_", on_delivery=lambda event: None)


def test_serve_listener_prints_deliveries_and_rejections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """serve_listener's own app, run here (its uvicorn.run is replaced to hand the app over)."""
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    out = io.StringIO()
    serve_listener("127.0.0.1", 4242, SECRET, Console(file=out, width=200, highlight=False))
    ((app, kwargs),) = calls
    assert kwargs == {
        "host": "127.0.0.1",
        "port": 4242,
        "log_level": "warning",
        "access_log": False,
    }

    with serving(app) as port, CallbackClient(allow_private=True, timeout_s=5) as client:
        url = f"http://127.0.0.1:{port}/"
        ok = client.send(url, BODY, msg_id="evt_6", secret=SECRET, guarded=False)
        bad = client.send(url, BODY, msg_id="evt_7", secret=new_secret(), guarded=False)
    assert (ok.http_status, bad.http_status) == (204, 401)
    text = out.getvalue()
    assert "http://127.0.0.1:4242/" in text
    assert SECRET not in text
    assert "order.completed  evt_6  acct:o-1  https://tests.example/t/1" in text
    assert "rejected: no matching v1 signature" in text
    assert "evt_7" not in text


def test_a_failed_event_is_shown_with_its_reason() -> None:
    """A failed event's line shows its reason, and event text cannot inject console markup."""
    event = {"id": "evt_8", "type": "order.failed", "data": {"key": "k", "reason": "exhausted"}}
    assert describe(event) == "[green]order.failed[/]  evt_8  k  exhausted"
    assert describe({"id": "evt_9", "type": "[bold]x", "data": None}) == (
        "[green]\\[bold]x[/]  evt_9  -  -"
    )
