"""Drive a running sandbox from tests, the demo and the bench: faults, counts, reset."""

from __future__ import annotations

from typing import Any

import httpx


class SandboxControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=10.0)

    def faults(self, **faults: Any) -> dict[str, Any]:
        """Replace every fault with these (unnamed ones go back to their defaults)."""
        reply = self._client.put("/_sandbox/faults", json=faults)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def stats(self, *, log: bool = False) -> dict[str, Any]:
        reply = self._client.get("/_sandbox/stats", params={"log": "1"} if log else None)
        reply.raise_for_status()
        result: dict[str, Any] = reply.json()
        return result

    def reset(self) -> None:
        self._client.post("/_sandbox/reset").raise_for_status()

    def healthy(self) -> bool:
        try:
            return self._client.get("/_sandbox/health", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()
