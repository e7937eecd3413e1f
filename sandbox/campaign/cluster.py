"""The campaign's processes: a private redis-server (AOF, fsync always) behind a freezable
proxy, the sandbox API, a callback receiver, and the workers, which it can kill, pause, replace
and start with a skewed clock.

Workers reach Redis only through the proxy (so the nemesis can freeze their network); the
campaign's own producers and checker talk to Redis directly. A watcher notices any worker that
exits without the nemesis having killed it, records the death (the checker fails on it) and
starts a replacement, as a supervisor would, so that one crash does not end the campaign.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import processes
from sandbox.campaign.proxy import FreezableProxy
from sandbox.control import SandboxControl
from sandbox.listen import create_listener_app
from sandbox.processes import (
    RedisServer,
    ThreadServer,
    free_port,
    spawn,
    start_sandbox,
    start_worker,
    stop,
)
from worker.signing import new_secret

API_KEY = "sk-campaign"
SKEW = "+120s"

# The tests' scaled-down settings (processes.FAST), so a fault's consequences play out many
# times within one run, and callbacks and the rate limit scaled to the campaign.
FAST = {
    **processes.FAST,
    "DISPATCH_CALLBACK_SCHEDULE_S": "0,0.5,1,2,2,2,2,2",
    # Above the campaign's order rate, so the backlog a fault leaves drains before the end.
    "DISPATCH_RATE_LIMIT": "1800/minute",
}


@dataclass
class Delivery:
    webhook_id: str
    type: str
    key: str
    at_s: float


@dataclass
class Death:
    worker: str
    returncode: int | None
    at_s: float
    last_line: str


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    skewed: bool = False
    expected_exit: bool = False  # the nemesis (or the end of the run) stopped it


@dataclass
class Cluster:
    run_dir: Path
    workers_wanted: int = 3
    concurrency: int = 16
    latency_ms: float = 1000.0
    redis: RedisServer = field(init=False)
    proxy: FreezableProxy = field(init=False)
    control: SandboxControl = field(init=False)
    workers: list[Worker] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _closing: threading.Event = field(default_factory=threading.Event)
    _serial: int = 0

    # --- start and stop ---------------------------------------------------------------------

    def start(self) -> Cluster:
        try:
            return self._start()
        except BaseException:
            self._closing.set()
            for w in self.workers:
                stop(w.proc)
            self._stack.close()  # nothing started is left behind
            raise

    def _start(self) -> Cluster:
        (self.run_dir / "redis").mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(
            appendonly=True, appendfsync="always", directory=self.run_dir / "redis"
        ).start()
        self._stack.callback(self.redis.stop)
        self.proxy = FreezableProxy(self.redis.port)
        self._stack.callback(self.proxy.close)
        port = free_port()
        sandbox = start_sandbox(port, api_key=API_KEY, log=self.run_dir / "sandbox.log")
        self._stack.callback(stop, sandbox)
        self.api_url = f"http://127.0.0.1:{port}"
        self.control = SandboxControl(self.api_url)
        self._stack.callback(self.control.close)
        self.api_faults()
        secret = new_secret()
        app = create_listener_app(secret, on_delivery=self._delivered)
        receiver = self._stack.enter_context(ThreadServer(app, free_port()))
        self.env = {
            "DISPATCH_REDIS_URL": self.proxy.url,
            "DISPATCH_API_URL": self.api_url,
            "DISPATCH_API_KEY": API_KEY,
            "DISPATCH_ACCOUNT_ID": "acct-campaign",
            "DISPATCH_CALLBACK_URL": f"{receiver.url}/hooks/assessments",
            "DISPATCH_CALLBACK_SECRET": secret,
            **FAST,
        }
        for _ in range(self.workers_wanted):
            self.start_worker()
        threading.Thread(target=self._watch, name="od-watch", daemon=True).start()
        return self

    def close(self) -> None:
        self._closing.set()
        self.proxy.thaw()
        for w in self.live_workers():
            w.expected_exit = True
            self._signal(w, signal.SIGCONT)
        for w in self.workers:
            stop(w.proc, timeout_s=15)
        self._stack.close()

    # --- the API ----------------------------------------------------------------------------

    def api_faults(self, **faults: Any) -> None:
        """Set the sandbox's faults over the campaign's baseline.

        The baseline: a little latency (so kills find POSTs in flight) and no deduplication by
        Idempotency-Key, as StackOne behaves today: a second POST of an order creates it again,
        and the checker can see it.
        """
        self.control.faults(latency_ms=self.latency_ms, honor_idempotency=False, **faults)

    # --- workers ----------------------------------------------------------------------------

    def start_worker(self, *, skewed: bool = False) -> Worker:
        with self._lock:
            self._serial += 1
            name = f"{'skewed' if skewed else 'w'}{self._serial}"
        log = self.run_dir / f"{name}.log"
        if skewed:
            proc = spawn(
                ["faketime", "-f", SKEW, *worker_args(name, self.concurrency)], self.env, log=log
            )
        else:
            proc = start_worker(self.env, name=name, concurrency=self.concurrency, log=log)
        worker = Worker(name, proc, log, skewed=skewed)
        with self._lock:
            self.workers.append(worker)
        return worker

    def live_workers(self, *, skewed: bool = False) -> list[Worker]:
        with self._lock:
            return [
                w
                for w in self.workers
                if w.proc.poll() is None and not w.expected_exit and w.skewed == skewed
            ]

    def kill_worker(self, worker: Worker) -> None:
        worker.expected_exit = True
        self._signal(worker, signal.SIGKILL)
        worker.proc.wait(timeout=10)

    def stop_worker(self, worker: Worker) -> None:
        """SIGTERM: a warm shutdown the product promises to survive (not a death)."""
        worker.expected_exit = True
        stop(worker.proc, timeout_s=15)

    def kill_redis(self) -> None:
        self.redis.kill()

    def start_redis(self) -> None:
        self.redis.start()  # the same port and directory: it replays its AOF

    def pause_worker(self, worker: Worker, paused: bool) -> None:
        self._signal(worker, signal.SIGSTOP if paused else signal.SIGCONT)

    @staticmethod
    def _signal(worker: Worker, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.proc.pid, sig)

    def _watch(self) -> None:
        while not self._closing.wait(0.5):
            with self._lock:
                dead = [
                    w for w in self.workers if not w.expected_exit and w.proc.poll() is not None
                ]
                for w in dead:
                    w.expected_exit = True  # recorded once
            for w in dead:
                self.deaths.append(Death(w.name, w.proc.returncode, time.time(), _last_line(w.log)))
                if not w.skewed and not self._closing.is_set():
                    self.start_worker()

    # --- callbacks --------------------------------------------------------------------------

    def _delivered(self, event: dict[str, Any]) -> None:
        data = event.get("data")
        if not isinstance(data, dict):
            data = {}
        delivery = Delivery(
            str(event.get("id")), str(event.get("type")), str(data.get("key")), time.time()
        )
        with self._lock:
            self.deliveries.append(delivery)


def worker_args(name: str, concurrency: int) -> list[str]:
    """`celery -A worker worker` as `sandbox.processes.start_worker` runs it, for a worker that
    must start under another program (faketime)."""
    return [
        sys.executable, "-m", "celery", "-A", "worker", "worker", "-n", f"{name}@%h",
        "-l", "warning", "--without-gossip", "--without-mingle", "-c", str(concurrency),
    ]  # fmt: skip


def faketime_available() -> bool:
    return shutil.which("faketime") is not None


def _last_line(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        if "CRITICAL" in line or "Unrecoverable" in line or "Error" in line:
            return line[-300:]
    return lines[-1][-300:] if lines else ""
