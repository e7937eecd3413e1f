"""Fixtures with real parts: redis-server on a free port, the sandbox and Celery workers as
subprocesses, all on 127.0.0.1. The machine's own Redis on 6379 is never touched.

A missing `redis-server` skips the tests that need it on a developer's machine and fails them
in CI (CI=true), so CI can never pass by testing nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from producer.api import Dispatcher
from sandbox.control import SandboxControl
from sandbox.processes import FAST, RedisServer, free_port, start_sandbox, start_worker, stop
from worker.settings import Settings

API_KEY = "sk-test-7f3a9c"
ACCOUNT = "acct-test"


def _need_redis_server() -> None:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed, and CI must run these tests")
        pytest.skip("redis-server is not installed")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the session; `redis_url` flushes it for each test."""
    _need_redis_server()
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True, protocol=2)
    yield client
    client.close()


@pytest.fixture
def make_redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Own redis-servers for tests that kill and restart them."""
    _need_redis_server()
    servers: list[RedisServer] = []

    def make(**kwargs: object) -> RedisServer:
        server = RedisServer(directory=tmp_path / f"redis{len(servers)}", **kwargs)  # type: ignore[arg-type]
        server.directory.mkdir(parents=True, exist_ok=True)
        servers.append(server.start())
        return server

    yield make
    for server in servers:
        server.stop()


@dataclass
class Sandbox:
    url: str
    control: SandboxControl
    proc: subprocess.Popen[bytes]

    def creates(self) -> dict[str, int]:
        return dict(self.control.stats()["creates"])

    def posts(self) -> dict[str, int]:
        return dict(self.control.stats()["posts"])


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    port = free_port()
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    proc = start_sandbox(port, api_key=API_KEY, log=log)
    control = SandboxControl(f"http://127.0.0.1:{port}")
    yield Sandbox(url=f"http://127.0.0.1:{port}", control=control, proc=proc)
    control.close()
    stop(proc)


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox, reset (no faults, no counts) for this test."""
    sandbox_server.control.reset()
    return sandbox_server


@pytest.fixture
def worker_env(redis_url: str, sandbox: Sandbox) -> dict[str, str]:
    return {
        "DISPATCH_REDIS_URL": redis_url,
        "DISPATCH_API_URL": sandbox.url,
        "DISPATCH_API_KEY": API_KEY,
        "DISPATCH_ACCOUNT_ID": ACCOUNT,
        **FAST,
    }


WorkerFactory = Callable[..., subprocess.Popen[bytes]]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def workers(
    worker_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[WorkerFactory]:
    """Start Celery workers as subprocesses: `workers(name="w1", concurrency=8, **env)`.

    When the test fails, the tail of each worker's log is printed with the failure.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str = "w1", concurrency: int = 16, **env: str) -> subprocess.Popen[bytes]:
        proc = start_worker(
            {**worker_env, **env}, name=name, concurrency=concurrency, log=tmp_path / f"{name}.log"
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        stop(proc, timeout_s=15)
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for log in sorted(tmp_path.glob("*.log")):
            print(f"--- {log.name} (last 60 lines) ---")
            print("\n".join(log.read_text(errors="replace").splitlines()[-60:]))


def make_settings(redis_url: str, **overrides: object) -> Settings:
    """Settings for the test process itself, ignoring any developer's .env."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "account_id": ACCOUNT,
        "api_key": API_KEY,
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def dispatcher(redis_url: str) -> Iterator[Dispatcher]:
    d = Dispatcher(make_settings(redis_url))
    yield d
    d.redis.close()


# Marked by directory, so that no test file can forget: `-m "not chaos"` and
# `-m "not integration and not chaos"` are the developer's fast loops.
MARKERS_BY_DIRECTORY = {"integration": "integration", "chaos": "chaos"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = Path(__file__).parent
    for item in items:
        try:
            directory = item.path.relative_to(tests_dir).parts[0]
        except ValueError:
            continue
        marker = MARKERS_BY_DIRECTORY.get(directory)
        if marker is not None:
            item.add_marker(marker)
