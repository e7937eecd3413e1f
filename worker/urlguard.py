"""Which callback URLs an order may name (SPEC §5): absolute http(s), host on the allowlist."""

from __future__ import annotations

from urllib.parse import urlsplit


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
