"""Starting and stopping the pieces on this machine: a private redis-server, the sandbox, workers.

Used by `demo`, `bench` and the tests, so that all three run the real processes the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis


class LocalError(RuntimeError):
    """A local process could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], bool],
    *,
    timeout_s: float,
    interval_s: float = 0.05,
    what: str = "condition",
) -> int:
    """Poll `predicate` until it holds; how many times it was asked (the bench counts them)."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if predicate():
            return polls
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def stop(proc: subprocess.Popen[bytes] | None, *, timeout_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the whole process group: no goodbye, no cleanup."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=10)


# Settings scaled down so that faults play out in seconds: leases lapse, retries come and
# circuits cool quickly (the tests and the fault campaign run workers with them).
FAST = {
    "DISPATCH_RETRY_BASE_S": "0.1",
    "DISPATCH_RETRY_CAP_S": "1",
    "DISPATCH_LEASE_S": "3",
    "DISPATCH_HTTP_TIMEOUT_S": "3",
    "DISPATCH_CIRCUIT_COOLDOWN_S": "1",
    "DISPATCH_LOG_FORMAT": "json",
}


class RedisServer:
    """A private redis-server on a free port, with its own directory."""

    def __init__(
        self,
        *,
        port: int | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        directory: Path | None = None,
        maxmemory: str | None = None,
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalError(
                "redis-server is not on PATH: install it (Debian: apt-get install redis-server) "
                "or set DISPATCH_REDIS_URL to a Redis you own"
            )
        self.binary = binary
        self.port = port or free_port()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.maxmemory = maxmemory  # e.g. "2mb"; None: no limit
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="od-redis-")
        self.directory = directory or Path(self._tmp.name)  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--maxmemory-policy",
            "noeviction",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        if self.maxmemory is not None:
            args += ["--maxmemory", self.maxmemory]
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=0.5)

        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise LocalError(f"redis-server exited with {self.proc.returncode}")
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(up, timeout_s=15, what="redis-server")
        finally:
            client.close()
        return self

    def kill(self) -> None:
        if self.proc is not None:
            kill(self.proc)

    def stop(self) -> None:
        stop(self.proc)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def spawn(
    args: list[str], env: Mapping[str, str], *, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group (so it and its children can be killed at once)."""
    if log is None:
        return subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            args,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def start_sandbox(
    port: int,
    *,
    api_key: str | None = None,
    log: Path | None = None,
    extra: list[str] | None = None,
) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "producer", "sandbox", "--port", str(port)]
    if api_key:
        args += ["--api-key", api_key]
    proc = spawn(args + (extra or []), {}, log=log)
    from sandbox.control import SandboxControl

    control = SandboxControl(f"http://127.0.0.1:{port}")
    try:
        wait_until(
            lambda: proc.poll() is None and control.healthy(), timeout_s=20, what="the sandbox"
        )
    finally:
        control.close()
    return proc


def start_worker(
    env: Mapping[str, str],
    *,
    name: str = "worker",
    concurrency: int | None = None,
    log: Path | None = None,
    loglevel: str = "warning",
    pool: str | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """A Celery worker; `prefix` wraps its command (e.g. `faketime -f +120s`, a skewed clock)."""
    args = [
        *prefix,
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker",
        "worker",
        "-n",
        f"{name}@%h",
        "-l",
        loglevel,
        "--without-gossip",
        "--without-mingle",
    ]
    if concurrency:
        args += ["-c", str(concurrency)]
    if pool:
        args += ["-P", pool]
    return spawn(args, env, log=log)


class ThreadServer:
    """An ASGI app served by uvicorn in a thread of this process (the demo's listener, tests)."""

    def __init__(self, app: Any, port: int, host: str = "127.0.0.1") -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self.server.run, name="od-http", daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        wait_until(lambda: self.server.started, timeout_s=10, what="the HTTP server")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
