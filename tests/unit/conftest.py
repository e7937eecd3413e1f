"""Fixtures for the worker process's own parts (runtime, tasks): a stand-in StackOne API on
127.0.0.1 and a `Runtime` on the test's redis-server, installed as the process's runtime."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from tests.conftest import make_settings
from worker.claims import NewOrder
from worker.process.eventloop import LoopThread
from worker.process.runtime import Runtime, set_runtime

TEST_URL = "https://tests.example/t/1"


@dataclass
class StubApi:
    """Answers every order POST with 200 and a test URL, keeping the idempotency keys it saw;
    takes callbacks at `hook_url` (204), keeping their bodies."""

    url: str
    seen: list[str] = field(default_factory=list)
    hooks: list[bytes] = field(default_factory=list)

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hook"


@pytest.fixture
def stub_api() -> Iterator[StubApi]:
    loop = LoopThread("stub-api")
    box: list[StubApi] = []

    async def hook(request: web.Request) -> web.StreamResponse:
        box[0].hooks.append(await request.read())
        return web.Response(status=204)

    async def handle(request: web.Request) -> web.StreamResponse:
        box[0].seen.append(request.headers["Idempotency-Key"])
        return web.json_response({"id": "api-1", "remote_id": "rem-1", "test_url": TEST_URL})

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", hook)
        app.router.add_post("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop.run(start())
    box.append(StubApi(f"http://127.0.0.1:{runner.addresses[0][1]}"))
    yield box[0]
    loop.run(runner.cleanup())
    loop.stop()


MakeRuntime = Callable[..., Runtime]


@pytest.fixture
def make_runtime(redis_url: str, stub_api: StubApi) -> Iterator[MakeRuntime]:
    """`make_runtime(**settings)`: a Runtime (keeper not started) installed via `set_runtime`,
    stopped and forgotten after the test."""
    made: list[Runtime] = []

    def make(**overrides: object) -> Runtime:
        values: dict[str, object] = {"api_url": stub_api.url, "rate_limit": "100000/second"}
        runtime = Runtime(make_settings(redis_url, **{**values, **overrides}), node="w-test.1")
        made.append(runtime)
        set_runtime(runtime)
        return runtime

    yield make
    set_runtime(None)
    for runtime in made:
        runtime.stop()
        runtime.redis.close()
        # The callback side's client and connection belong to the thread that used them: here.
        deliver = getattr(runtime._local, "deliver", None)
        if deliver is not None:
            deliver.client.close()
            deliver.callbacks.ledger.redis.close()


def new_orders(runtime: Runtime, n: int) -> list[str]:
    """Enqueue `n` orders through the runtime's own ledger; their keys."""
    orders = [NewOrder(f"acc:o{i}", "acc", f"o{i}", json.dumps({"id": f"o{i}"})) for i in range(n)]
    runtime.ledger.enqueue(orders)
    return [o.key for o in orders]
