"""Where a per-order callback may go (SPEC §5, SSRF): a host on the allowlist, and only
globally routable addresses.

Owns the address rules and the one DNS lookup of a callback host. The address it returns is the
one to connect to: resolving once and connecting to that exact address is what defeats DNS
rebinding (a name that answers a public address to the check and 127.0.0.1 to the connect).
IP literals in every spelling the C library accepts (`2130706433`, `0x7f000001`, `0177.0.0.1`,
`127.1`) go through the same lookup, so they are judged by the address they become.
Pure apart from the injected resolver; it does not know about HTTP.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

# Prefixes that only carry an IPv4 address: judged by the address they carry.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeDestination(ValueError):
    """A callback destination that must not be connected to; the message says why."""


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 (64:ff9b::/96) address."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr in _NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def _refusal(addr: IPAddress) -> str | None:
    """What makes `addr` unfit for a callback, or None. More specific classes come first."""
    checks = (
        (addr.is_unspecified, "unspecified"),
        (addr.is_loopback, "loopback"),
        (addr.is_link_local, "link-local"),
        (addr.is_multicast, "multicast"),
        (addr.is_reserved, "reserved"),
        (addr.is_private, "private"),
        # 100.64.0.0/10 (carrier-grade NAT) and the like: not private, not routable either.
        (not addr.is_global, "not globally routable"),
    )
    return next((name for failed, name in checks if failed), None)


def check_ip(ip: str) -> None:
    """Return if a callback may connect to `ip`; raise `UnsafeDestination` saying why not."""
    try:
        addr: IPAddress = ipaddress.ip_address(ip)
    except ValueError as exc:
        raise UnsafeDestination(f"{ip!r} is not an IP address") from exc
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = _refusal(inner)
            if reason:
                raise UnsafeDestination(f"{ip} embeds {inner}, a {reason} address")
            return
    reason = _refusal(addr)
    if reason:
        raise UnsafeDestination(f"{ip} is a {reason} address")


def resolve_checked(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: Resolver = socket.getaddrinfo,
) -> str:
    """Resolve `host` once and return the address to connect to.

    Every address the name resolves to must pass `check_ip` (unless `allow_private`): a name
    with one private address among public ones is refused, since which one a client picks is
    out of our hands. Lookup failures raise OSError (socket.gaierror) unchanged.
    """
    infos = resolver(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeDestination(f"{host!r} resolves to no address")
    if not allow_private:
        for ip in addresses:
            try:
                check_ip(ip)
            except UnsafeDestination as exc:
                raise UnsafeDestination(f"{host!r} resolves to a refused address: {exc}") from exc
    return addresses[0]


def check_callback_url(url: str, allowed_hosts: list[str]) -> str:
    """Return `url` if a per-order callback may go there; raise ValueError saying why not."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("a callback URL must be an absolute http(s) URL")
    if parts.username or parts.password:
        raise ValueError("a callback URL must not carry credentials")
    host = parts.hostname.lower().rstrip(".")
    if host not in {h.lower().rstrip(".") for h in allowed_hosts}:
        raise ValueError(f"callback host {host!r} is not in DISPATCH_CALLBACK_ALLOWED_HOSTS")
    return url
