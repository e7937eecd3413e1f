"""What one worker process holds: its settings, Redis, ledger, HTTP clients and keeper thread.

Built on first use in the process (never at import) and dropped in a forked child. The keeper
thread does what must go on while tasks run: it renews the leases of the orders this process
holds and, once a second, runs the ledger's pump (due retries, orders of dead workers, lost
messages back onto the queue). Every worker runs one; the pump is safe with any number.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterable

from worker.ledger import Claim, Ledger, LedgerConfig
from worker.logs import step
from worker.redisconn import connect
from worker.settings import Settings
from worker.stackone import StackOneClient
from worker.submit import AttemptContext

PUMP_INTERVAL_S = 1.0


class Runtime:
    def __init__(self, settings: Settings, *, node: str | None = None) -> None:
        self.settings = settings
        self.node = node or f"{socket.gethostname()}.{os.getpid()}"
        self.redis = connect(settings.redis_url)
        self.ledger = Ledger(self.redis, LedgerConfig.from_settings(settings))
        self._local = threading.local()
        self._held: dict[str, str] = {}
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None

    # --- per thread -----------------------------------------------------------------------------

    def context(self) -> AttemptContext:
        """The attempt context of the calling thread (its own HTTP client: no pool contention)."""
        ctx: AttemptContext | None = getattr(self._local, "ctx", None)
        if ctx is None:
            client = StackOneClient(self.settings.http_policy(), self.settings.api_key)
            ctx = AttemptContext(
                ledger=self.ledger,
                client=client,
                retry=self.settings.retry_policy(),
                on_ambiguous=self.settings.on_ambiguous,
                worker=self.node,
            )
            self._local.ctx = ctx
        return ctx

    # --- leases ---------------------------------------------------------------------------------

    def hold(self, claims: Iterable[Claim]) -> None:
        with self._held_lock:
            for c in claims:
                self._held[c.key] = c.token

    def release(self, claim: Claim) -> None:
        with self._held_lock:
            if self._held.get(claim.key) == claim.token:
                del self._held[claim.key]

    # --- keeper ---------------------------------------------------------------------------------

    def start(self) -> None:
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="od-keeper", daemon=True)
            self._keeper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)

    def _keep(self) -> None:
        renew_every = max(0.2, self.settings.lease_s / 3)
        since_renew = renew_every
        while not self._stop.wait(min(PUMP_INTERVAL_S, renew_every)):
            since_renew += min(PUMP_INTERVAL_S, renew_every)
            try:
                if since_renew >= renew_every:
                    with self._held_lock:
                        held = list(self._held.items())
                    self.ledger.renew(held)
                    since_renew = 0.0
                report = self.ledger.pump()
            except Exception as exc:  # noqa: BLE001 - the keeper must outlive any Redis outage
                step("keeper.error", error=type(exc).__name__, detail=str(exc)[:200])
                continue
            if report.moved or report.held:
                step(
                    "pump.moved",
                    due=report.due,
                    lost=report.lost,
                    stale=report.stale,
                    held=len(report.held),
                )


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(Settings())
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime built elsewhere (the bench, tests), or forget the current one."""
    global _runtime
    with _lock:
        _runtime = runtime


os.register_at_fork(after_in_child=lambda: set_runtime(None))
