"""The HTTP edge: the only package that imports aiohttp or httpx.

- `stackone`: the StackOne client (aiohttp) and the table that classifies every reply and every
  client error by whether the API may have acted.
- `webhooks`: the callback client (httpx), pinned to the address the SSRF guard checked.
- `ssrf`: which callback URLs an order may name, and which addresses may be connected to.

Importing this package itself pulls in no HTTP library (the producer checks callback URLs
with `ssrf`).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("order-dispatch")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0.0.0"

# Every request we send names us; the client adds its library.
USER_AGENT = f"order-dispatch/{VERSION}"

__all__ = ["USER_AGENT", "VERSION"]
