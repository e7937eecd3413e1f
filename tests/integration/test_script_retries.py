"""Every ledger script is safe to send twice (issue 13, "Safe retries").

redis-py's `Retry` sends a command again when its reply was lost, although it ran. A proxy
between the client and Redis lets the script through once, then closes the client's connection
instead of passing the reply on; the client (made as the product makes it, `connect`) retries
on a fresh connection. Each test checks that the outcome is as if the script had run once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from worker import outcomes
from worker.claims import Claim, NewOrder
from worker.flow import CircuitPolicy, RateLimit
from worker.ledger import Keys, Ledger, LedgerConfig
from worker.ledger.aio import AsyncLedger
from worker.ledger.callbacks import CallbackLedger
from worker.ledger.connect import connect, connect_async
from worker.ledger.dead import DeadLetters
from worker.ledger.ops import LedgerOps
from worker.ledger.scripts import register_scripts

K = Keys()
CONFIG = LedgerConfig(
    queue="q",
    lease_s=30,
    rate=RateLimit(10_000_000, 60_000),  # no pacing here
    circuit=CircuitPolicy(threshold=2, cooldown_s=30),
)


class ReplyDropper:
    """A TCP proxy to Redis that, once armed with a script's SHA, forwards the next request
    naming it and then closes the client's connection instead of forwarding the reply."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._armed: bytes | None = None
        self.dropped = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, sha: str) -> None:
        with self._lock:
            self._armed = sha.encode()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._sockets += [client, upstream]
            doomed = threading.Event()  # the request ran: its reply is not to reach the client
            threading.Thread(target=self._up, args=(client, upstream, doomed), daemon=True).start()
            threading.Thread(
                target=self._down, args=(upstream, client, doomed), daemon=True
            ).start()

    def _up(self, src: socket.socket, dst: socket.socket, doomed: threading.Event) -> None:
        tail = b""
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                with self._lock:
                    if self._armed is not None and self._armed in tail + data:
                        self._armed = None
                        doomed.set()
                tail = data[-64:]
                dst.sendall(data)
        self._close(src, dst)

    def _down(self, src: socket.socket, dst: socket.socket, doomed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if doomed.is_set():
                    self.dropped += 1
                    break
                dst.sendall(data)
        self._close(src, dst)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            self._close(*self._sockets)


@pytest.fixture
def proxy(redis_client: redis.Redis) -> Iterator[ReplyDropper]:
    # Loaded first, so that the reply dropped is the script's, not a NOSCRIPT (which ran nothing).
    for script in register_scripts(redis_client).values():
        redis_client.script_load(script.script)
    port = redis_client.connection_pool.connection_kwargs["port"]
    p = ReplyDropper(port)
    yield p
    p.close()


@pytest.fixture
def ledger(proxy: ReplyDropper) -> Iterator[Ledger]:
    client = connect(f"redis://127.0.0.1:{proxy.port}/0", sentinel_master="mymaster")
    yield Ledger(client, CONFIG)
    client.close()


@pytest.fixture
def direct(redis_client: redis.Redis) -> Ledger:
    """The same ledger without the proxy, to set the scene."""
    return Ledger(redis_client, CONFIG)


SHAS = {name: script.sha for name, script in register_scripts(redis.Redis()).items()}


@contextlib.contextmanager
def reply_lost(proxy: ReplyDropper, script: str) -> Iterator[None]:
    proxy.arm(SHAS[script])
    yield
    assert proxy.dropped == 1, f"{script}'s reply was not dropped: the test proved nothing"


def new(i: int) -> NewOrder:
    return NewOrder(f"acc:o{i}", "acc", f"o{i}", json.dumps({"id": f"o{i}"}))


def counters(client: redis.Redis) -> dict[str, str]:
    return client.hgetall(K.counters)  # type: ignore[return-value]


def test_enqueue(ledger: Ledger, proxy: ReplyDropper, redis_client: redis.Redis) -> None:
    """A resent enqueue reports what its first run did (accepted, not duplicate)."""
    with reply_lost(proxy, "enqueue"):
        assert ledger.enqueue([new(i) for i in range(5)]) == ["accepted"] * 5
    assert counters(redis_client) == {"orders_accepted": "5", "orders_duplicate": "0"}
    # A message per order (spread over the fleet), and no second round of them.
    assert redis_client.llen("q") == 5


def test_claim(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent claim returns the orders the first run leased to the same token."""
    direct.enqueue([new(i) for i in range(3)])
    with reply_lost(proxy, "claim"):
        claims = ledger.claim([f"acc:o{i}" for i in range(3)], "w1")
    assert sorted(c.key for c in claims) == [f"acc:o{i}" for i in range(3)]
    assert {redis_client.hget(K.record(c.key), "lease") for c in claims} == {claims[0].token}
    assert redis_client.zcard(K.queued) == 0 and redis_client.zcard(K.leases) == 3


def test_begin(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent begin gives the same attempt, counted once."""
    direct.enqueue([new(1)])
    (claim,) = direct.claim(["acc:o1"], "w1")
    with reply_lost(proxy, "begin"):
        gate = ledger.begin(claim)
    assert (gate.verdict, gate.attempts) == ("go", 1)
    assert redis_client.hget(K.record("acc:o1"), "attempts") == "1"


def test_report_flow(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent flow report counts one failure once."""
    direct.enqueue([new(1)])
    (claim,) = direct.claim(["acc:o1"], "w1")
    direct.begin(claim)
    with reply_lost(proxy, "report_flow"):  # sent with finish, in one pipeline
        assert ledger.finish(claim, outcomes.retrying(delay_s=5, error="x", flow="fail"))
    # One failure of a threshold of 2: the circuit is still closed.
    assert redis_client.hgetall(CONFIG.flow.circuit) == {"failures": "1"}
    assert redis_client.zcard(K.waiting) == 1


def test_finish(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent finish records the outcome once."""
    direct.enqueue([new(1)])
    (claim,) = direct.claim(["acc:o1"], "w1")
    direct.begin(claim)
    with reply_lost(proxy, "finish"):
        assert ledger.finish(claim, outcomes.retrying(delay_s=5, error="x"))
    assert counters(redis_client)["retries_retry"] == "1"
    assert redis_client.hget(K.record("acc:o1"), "status") == "retrying"


def test_renew(ledger: Ledger, direct: Ledger, proxy: ReplyDropper) -> None:
    """A resent renewal reports the same leases renewed."""
    direct.enqueue([new(i) for i in range(2)])
    claims = direct.claim(["acc:o0", "acc:o1"], "w1")
    with reply_lost(proxy, "renew"):
        assert ledger.renew([(c.key, c.token) for c in claims]) == 2


def test_pump(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent pump publishes one message for a due order, not two."""
    direct.enqueue([new(1)])
    (claim,) = direct.claim(["acc:o1"], "w1")
    direct.begin(claim)
    direct.finish(claim, outcomes.retrying(delay_s=0, error="x"))  # due at once
    redis_client.delete("q")
    with reply_lost(proxy, "pump_orders"):
        report = ledger.pump()
    assert report.due == 1
    assert redis_client.llen("q") == 1  # one message for it, not two


def test_cbclaim_and_cbfinish(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """Resent callback claims and finishes act once."""
    direct.enqueue([new(1)])
    (claim,) = direct.claim(["acc:o1"], "w1")
    direct.begin(claim)
    done = outcomes.completed(claim, api_id="a", remote_id="r", test_url="u", with_callback=True)
    direct.finish(claim, done)
    direct.pump()  # the callback is due at once: it is queued
    assert redis_client.zcard(K.cb_queued) == 1
    callbacks = CallbackLedger(ledger)
    with reply_lost(proxy, "cbclaim"):
        (cb,) = callbacks.claim(["acc:o1"])
    assert json.loads(cb.body)["timestamp"].endswith("Z")  # stamped by Redis's clock
    proxy.dropped = 0
    with reply_lost(proxy, "cbfinish"):
        assert callbacks.delivered(cb)
    assert counters(redis_client)["callbacks_delivered"] == "1"
    assert redis_client.hget(K.record("acc:o1"), "status") == "delivered"


def _dead(direct: Ledger, i: int) -> str:
    direct.enqueue([new(i)])
    (claim,) = direct.claim([f"acc:o{i}"], "w1")
    direct.begin(claim)
    direct.finish(
        claim,
        outcomes.dead(claim, stage="submit", reason="rejected", http_status=422, error="x"),
    )
    return claim.key


def test_replay(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent replay publishes the order once."""
    key = _dead(direct, 1)
    redis_client.delete("q")
    with reply_lost(proxy, "replay"):
        assert DeadLetters(ledger).replay([key]) == [key]
    assert redis_client.llen("q") == 1
    assert redis_client.hget(K.record(key), "replays") == "1"


def test_purge(
    ledger: Ledger, direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """A resent purge reports what the first run purged, and the record is gone."""
    key = _dead(direct, 1)
    with reply_lost(proxy, "purge"):
        assert DeadLetters(ledger).purge([key]) == [key]
    assert not redis_client.exists(K.record(key))


def test_steps_on_the_event_loop(
    direct: Ledger, proxy: ReplyDropper, redis_client: redis.Redis
) -> None:
    """The worker's own path: claim, begin and finish from the event loop, each step's scripts
    in a pipeline shared with whatever else the loop asked for in the same turn."""
    direct.enqueue([new(i) for i in range(2)])

    async def main() -> tuple[list[Claim], list[bool]]:
        client = connect_async(
            f"redis://127.0.0.1:{proxy.port}/0", max_connections=4, sentinel_master="mymaster"
        )
        ledger = AsyncLedger(LedgerOps(CONFIG), client)
        try:
            with reply_lost(proxy, "claim"):
                claims = await ledger.claim(["acc:o0", "acc:o1"], "w1")
            for claim in claims:
                await ledger.begin(claim)
            fail = outcomes.retrying(delay_s=5, error="x", flow="fail")
            proxy.dropped = 0
            with reply_lost(proxy, "report_flow"):
                done = await asyncio.gather(*(ledger.finish(c, fail) for c in claims))
            return claims, list(done)
        finally:
            await ledger.close()

    claims, done = asyncio.run(main())
    assert sorted(c.key for c in claims) == ["acc:o0", "acc:o1"]
    assert done == [True, True]
    # Two failures of a threshold of 2: open once, counted once each.
    assert redis_client.hget(CONFIG.flow.circuit, "failures") == "2"
    assert counters(redis_client)["retries_retry"] == "2"
