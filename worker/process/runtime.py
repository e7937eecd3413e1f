"""What one worker process holds: its settings, Redis, ledger, HTTP clients, event loop and
keeper thread.

Orders are attempted on the process's event loop (`eventloop.py`): one asyncio Redis pool, one
aiohttp session, and a semaphore of `DISPATCH_WORKER_CONCURRENCY` POSTs in flight; Celery's pool
threads hand it the keys of their messages and wait. Callbacks are sent from the pool threads,
each with its own HTTP client and Redis connection.

Built on first use in the process (never at import) and dropped in a forked child. The keeper
thread does what must go on while tasks run: it renews the leases this process holds (of orders
and of callbacks), records the worker's heartbeat and progress report (`progress.py`: it stops
renewing the orders of an event loop that does not answer) and, once a second, runs the
ledger's pump (due retries and callbacks, work of dead workers, lost messages back onto the
queue). Every worker runs one; the pump is safe with any number.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Sequence

from pydantic import ValidationError

from worker.capacity import Capacity, ShuttingDown
from worker.deliver import DeliverContext
from worker.http.stackone import StackOneClient
from worker.http.webhooks import CallbackClient
from worker.ledger.aio import AsyncLedger
from worker.ledger.callbacks import CallbackLedger
from worker.ledger.connect import connect, connect_async
from worker.ledger.steps import Ledger, LedgerConfig
from worker.logs import step
from worker.obs import deaths
from worker.process.eventloop import LoopThread
from worker.process.held import Held, Reserved
from worker.process.progress import Liveness
from worker.settings import EX_CONFIG, Settings, describe_errors
from worker.submit import AttemptContext, attempt_batch

PUMP_INTERVAL_S = 1.0


class Runtime:
    def __init__(self, settings: Settings, *, node: str | None = None) -> None:
        self.settings = settings
        self.node = node or f"{socket.gethostname()}.{os.getpid()}"
        self.redis = connect(settings.redis_url, sentinel_master=settings.redis_sentinel_master)
        self.ledger = Ledger(self.redis, LedgerConfig.from_settings(settings))
        self.liveness = Liveness(settings.health_stall_s)
        self.held_orders = Held(self.liveness.marks)
        self.held_callbacks = Held(self.liveness.marks)
        self.reserved = Reserved()
        self._local = threading.local()
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._loop: LoopThread | None = None
        self.in_flight = settings.worker_concurrency  # POSTs at once (set from `-c` if given)
        self._loop_lock = threading.Lock()
        self._attempts: tuple[AttemptContext, Capacity] | None = None
        self._intake_closed = False

    # --- orders: on the event loop ----------------------------------------------------------------

    def dispatch(self, keys: Sequence[str]) -> list[str]:
        """Claim the orders among `keys` and make one attempt at each; wait until all are done.

        While the message waits for room, its orders are noted as held by this worker (and the
        keeper renews the note): if the worker dies, the pump puts them first in line within a
        lease; while it lives, nothing republishes them. A message that failed keeps its note
        until it lapses, so its orders come back the same way."""
        loop = self.event_loop()
        ledger = self._thread_ledger()
        ledger.reserve(keys)
        token = self.reserved.add(keys)
        try:
            with self.liveness.marks.holding_message():
                done = loop.run(self._dispatch(keys))
        except ShuttingDown:
            ledger.unreserve(keys)  # handed back: the message returns to the queue at once
            raise
        finally:
            self.reserved.discard(token)
        ledger.unreserve(keys)
        return done

    def event_loop(self) -> LoopThread:
        """The loop that attempts this process's orders, started on first use."""
        with self._loop_lock:
            if self._loop is None:
                self._loop = LoopThread()
            return self._loop

    async def _dispatch(self, keys: Sequence[str]) -> list[str]:
        if self._attempts is None:  # only the loop's thread gets here: no race
            self._attempts = self._attempt_context()
        ctx, capacity = self._attempts
        if self._intake_closed:
            raise ShuttingDown
        return await attempt_batch(ctx, keys, self.held_orders, capacity)

    def close_intake(self) -> None:
        """The worker begins to shut down: messages still waiting for room claim nothing (their
        tasks raise `ShuttingDown` and the messages go back to the queue); attempts already
        claimed run to their end."""
        self._intake_closed = True
        with self._loop_lock:
            loop = self._loop
        if loop is not None:
            loop.loop.call_soon_threadsafe(self._close_intake)

    def _close_intake(self) -> None:
        if self._attempts is not None:
            self._attempts[1].close()

    def _attempt_context(self) -> tuple[AttemptContext, Capacity]:
        s = self.settings
        in_flight = self.in_flight
        aredis = connect_async(
            s.redis_url,
            sentinel_master=s.redis_sentinel_master,
            max_connections=max(4, min(32, in_flight)),
        )
        ctx = AttemptContext(
            ledger=AsyncLedger(self.ledger.ops, aredis),
            client=StackOneClient(s.http_policy(), s.api_key, max_connections=in_flight),
            retry=s.retry_policy(),
            on_ambiguous=s.on_ambiguous,
            worker=self.node,
            callback_url=s.callback_url,
            callback_first_delay_s=s.callback_schedule_s[0] if s.callback_schedule_s else 0,
            on_dead=deaths.order_dead,
        )
        return ctx, Capacity(in_flight, batch_max=s.batch_max)

    # --- callbacks: per pool thread, each with its own HTTP client (no pool contention) -----------

    def _thread_ledger(self) -> Ledger:
        """This thread's ledger, on a Redis connection of its own."""
        ledger: Ledger | None = getattr(self._local, "ledger", None)
        if ledger is None:
            s = self.settings
            client = connect(
                s.redis_url, sentinel_master=s.redis_sentinel_master, single_connection=True
            )
            ledger = Ledger(client, self.ledger.config, keys=self.ledger.keys)
            self._local.ledger = ledger
        return ledger

    def deliver_context(self) -> DeliverContext:
        ctx: DeliverContext | None = getattr(self._local, "deliver", None)
        if ctx is None:
            s = self.settings
            ctx = DeliverContext(
                callbacks=CallbackLedger(self._thread_ledger()),
                client=CallbackClient(
                    timeout_s=s.callback_timeout_s, allow_private=s.callback_allow_private
                ),
                secret=s.callback_secret.get_secret_value(),
                default_url=s.callback_url,
                schedule_s=s.callback_schedule_s,
                on_dead=deaths.callback_dead,
            )
            self._local.deliver = ctx
        return ctx

    # --- keeper -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._keeper is None:
            self._keeper = threading.Thread(target=self._keep, name="od-keeper", daemon=True)
            self._keeper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout=5)
        if self._loop is not None:
            if self._attempts is not None:
                ctx = self._attempts[0]
                self._loop.run(_close(ctx))
            self._loop.stop()

    def _keep(self) -> None:
        interval = min(PUMP_INTERVAL_S, max(0.2, self.settings.lease_s / 3))
        while not self._stop.wait(interval):
            loop, orders = self._loop, self.held_orders.pairs()
            renew_orders = self.liveness.tick(loop.loop if loop else None, orders=len(orders))
            try:
                if renew_orders:  # not while the loop does not answer: let them go
                    self.ledger.renew(orders)
                    self.ledger.reserve(self.reserved.keys())
                callbacks = self.held_callbacks.pairs()
                self.ledger.renew(callbacks, callbacks=True)
                self.ledger.heartbeat(self.node)
                progress = self.liveness.report(
                    loop_started=loop is not None, orders=len(orders), callbacks=len(callbacks)
                )
                self.ledger.report_progress(self.node, progress)
                report = self.ledger.pump()
            except Exception as exc:  # noqa: BLE001 - the keeper must outlive any Redis outage
                step("keeper.error", error=type(exc).__name__, detail=str(exc)[:200])
                continue
            for key in report.held:  # lost with a POST on the wire, and held for a person
                deaths.worker_lost(key)
            if report.moved or report.held:
                step(
                    "pump.moved",
                    due=report.due,
                    lost=report.lost,
                    stale=report.stale,
                    held=len(report.held),
                    callbacks=report.callbacks,
                )


async def _close(ctx: AttemptContext) -> None:
    await ctx.client.close()
    await ctx.ledger.close()


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """This process's runtime, built from the environment on first use."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(_settings_or_exit())
        return _runtime


def _settings_or_exit() -> Settings:
    """The worker's settings, or exit 78 naming each bad or unknown variable (never a value):
    a worker must not start on a configuration it misread."""
    try:
        return Settings()
    except ValidationError as exc:
        for line in describe_errors(exc):
            print(f"configuration error: {line}", file=sys.stderr)
        raise SystemExit(EX_CONFIG) from None


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime built elsewhere (the bench, tests), or forget the current one."""
    global _runtime
    with _lock:
        _runtime = runtime


os.register_at_fork(after_in_child=lambda: set_runtime(None))
