"""Callback destinations (SPEC §5, SSRF): worker/http/ssrf.py, and the pinning in webhooks.py."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from worker.http.ssrf import UnsafeDestination, check_ip, resolve_checked
from worker.http.webhooks import PIN_EXTENSION, CallbackClient
from worker.signing import new_secret

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"

REFUSED = [
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("127.0.0.1", "loopback"),
    ("::1", "loopback"),
    ("169.254.169.254", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - an address refused, not one bound to
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not globally routable"),
    ("fc00::1", "private"),
    ("::ffff:127.0.0.1", "embeds 127.0.0.1, a loopback"),
    ("::ffff:10.0.0.1", "embeds 10.0.0.1, a private"),
    ("::ffff:169.254.169.254", "embeds 169.254.169.254, a link-local"),
    ("2002:7f00:1::", "embeds 127.0.0.1, a loopback"),  # 6to4
    ("64:ff9b::a00:1", "embeds 10.0.0.1, a private"),  # NAT64
    ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
]
ACCEPTED = [
    PUBLIC_V4,
    PUBLIC_V6,
    "::ffff:93.184.216.34",
    "2002:5db8:d822::1",
    "64:ff9b::5db8:d822",
]
# Spellings of 127.0.0.1 that glibc's getaddrinfo accepts (inet_aton).
LOOPBACK_LITERALS = ["2130706433", "0x7f000001", "0177.0.0.1", "127.1", "0x7f.1", "127.0.1"]


@pytest.mark.parametrize(("ip", "reason"), REFUSED)
def test_refused_addresses_say_why(ip: str, reason: str) -> None:
    """Each refused address (loopback, private, link-local...) is named with the reason."""
    with pytest.raises(UnsafeDestination, match=re.escape(reason)) as info:
        check_ip(ip)
    assert ip in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("ip", ACCEPTED)
def test_public_addresses_are_accepted(ip: str) -> None:
    """Public addresses are accepted."""
    check_ip(ip)


def test_a_name_is_not_an_address() -> None:
    """A host name is never taken for a checked address."""
    with pytest.raises(UnsafeDestination, match="not an IP address"):
        check_ip("example.com")


@pytest.mark.parametrize("literal", LOOPBACK_LITERALS)
def test_loopback_in_any_spelling_is_caught_through_the_real_resolver(literal: str) -> None:
    """Loopback in any spelling is caught once the real resolver has read it."""
    assert resolve_checked(literal, 80, allow_private=True) == "127.0.0.1"
    with pytest.raises(UnsafeDestination, match=r"127\.0\.0\.1 is a loopback address"):
        resolve_checked(literal, 80, allow_private=False)


def test_private_literals_in_other_spellings_are_caught() -> None:
    """Private addresses in hex, decimal, octal or short form are caught."""
    for literal in ["0xa000001", "167772161", "012.0.0.1", "10.1"]:
        with pytest.raises(UnsafeDestination, match="private"):
            resolve_checked(literal, 443, allow_private=False)


class FakeResolver:
    """getaddrinfo's shape; answers each call with the next list of addresses."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        self.calls.append((host, port))
        ips = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port),
            )
            for ip in ips
        ]


def test_the_first_address_is_returned_and_the_name_resolved_once() -> None:
    """A name is resolved once, and its first address is the one to connect to."""
    resolver = FakeResolver([PUBLIC_V4, PUBLIC_V6])
    assert (
        resolve_checked("hooks.example", 443, allow_private=False, resolver=resolver) == PUBLIC_V4
    )
    assert resolver.calls == [("hooks.example", 443)]


def test_one_private_address_among_public_ones_is_refused() -> None:
    """One private address among public ones refuses the whole name."""
    resolver = FakeResolver([PUBLIC_V4, "10.0.0.7", PUBLIC_V6])
    with pytest.raises(UnsafeDestination, match=r"'hooks.example' resolves to .*10\.0\.0\.7"):
        resolve_checked("hooks.example", 443, allow_private=False, resolver=resolver)


def test_allow_private_lets_loopback_through() -> None:
    """With private addresses allowed, loopback passes."""
    resolver = FakeResolver(["127.0.0.1"])
    assert resolve_checked("localhost", 8080, allow_private=True, resolver=resolver) == "127.0.0.1"


def test_a_name_with_no_address_is_refused() -> None:
    """A name that resolves to no address is refused."""
    with pytest.raises(UnsafeDestination, match="no address"):
        resolve_checked("hooks.example", 443, allow_private=True, resolver=FakeResolver([]))


def test_a_lookup_failure_is_left_to_the_caller() -> None:
    """A failed lookup is raised as is, for the caller to report."""

    def failing(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(socket.gaierror):
        resolve_checked("nowhere.example", 443, allow_private=False, resolver=failing)


# Pinning, through CallbackClient: the address checked is the address connected to.


@pytest.fixture
def seen() -> list[httpx.Request]:
    return []


@pytest.fixture
def transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    return httpx.MockTransport(handler)


@pytest.fixture
def rebinding() -> FakeResolver:
    """A name that answers a public address first, and loopback from then on."""
    return FakeResolver([PUBLIC_V4], ["127.0.0.1"])


@pytest.fixture
def client(transport: httpx.MockTransport, rebinding: FakeResolver) -> Iterator[CallbackClient]:
    with CallbackClient(transport=transport, resolver=rebinding) as c:
        yield c


def send(client: CallbackClient, url: str) -> Any:
    return client.send(url, b"{}", msg_id="evt_1", secret=new_secret(), guarded=True)


def test_dns_rebinding_cannot_reach_loopback(
    client: CallbackClient, rebinding: FakeResolver, seen: list[httpx.Request]
) -> None:
    """DNS rebinding cannot reach loopback: each send connects to the address it checked."""
    first = send(client, "https://hooks.example/cb?x=1")
    assert first.delivered
    (request,) = seen
    assert request.url.host == PUBLIC_V4
    assert request.url.path == "/cb"
    assert request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example"
    assert request.extensions["sni_hostname"] == "hooks.example"
    assert request.headers["connection"] == "close", "a pinned connection is never reused"
    assert PIN_EXTENSION not in request.extensions
    assert rebinding.calls == [("hooks.example", 443)]

    second = send(client, "https://hooks.example/cb?x=1")
    assert (second.delivered, second.kind) == (False, "unsafe_destination")
    assert "127.0.0.1 is a loopback address" in second.detail
    assert len(seen) == 1, "nothing is sent to a refused destination"
    assert len(rebinding.calls) == 2, "one lookup per send"


def test_pinning_keeps_the_port_and_brackets_ipv6(
    transport: httpx.MockTransport, seen: list[httpx.Request]
) -> None:
    """Pinning keeps the URL's port and brackets an IPv6 address."""
    resolver = FakeResolver([PUBLIC_V6])
    with CallbackClient(transport=transport, resolver=resolver) as c:
        assert send(c, "http://hooks.example:8080/cb").delivered
    (request,) = seen
    assert request.url.host == PUBLIC_V6
    assert str(request.url).startswith(f"http://[{PUBLIC_V6}]:8080/cb")
    assert request.headers["host"] == "hooks.example:8080"
    assert "sni_hostname" not in request.extensions, "no TLS on http"
    assert resolver.calls == [("hooks.example", 8080)]


def test_allow_private_pins_to_loopback(
    transport: httpx.MockTransport, seen: list[httpx.Request]
) -> None:
    """With private allowed, the send is pinned to loopback and keeps the name for TLS."""
    with CallbackClient(
        transport=transport, allow_private=True, resolver=FakeResolver(["127.0.0.1"])
    ) as c:
        assert send(c, "https://receiver.local/cb").delivered
    assert seen[0].url.host == "127.0.0.1"
    assert seen[0].extensions["sni_hostname"] == "receiver.local"
