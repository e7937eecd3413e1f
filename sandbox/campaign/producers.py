"""The campaign's producers: threads that keep enqueueing orders, as ATS sync jobs would.

Each thread is one account, enqueues small batches at its share of the rate, and keeps what
Redis answered: `accepted` and `duplicate` both mean the order is in the ledger (a duplicate
answers a batch resent after an error whose first send had landed). A batch that fails
(Redis restarting) is resent until it is answered; keys never answered by the end are kept
apart, and the checker holds them to the same rules if the ledger has them.
"""

from __future__ import annotations

import copy
import json
import random
import threading
import time
from importlib import resources
from typing import Any

import redis

from producer.api import Dispatcher
from worker.errors import DispatchError
from worker.settings import Settings


def _example() -> dict[str, Any]:
    text = (resources.files("producer") / "samples" / "orders.jsonl").read_text()
    result: dict[str, Any] = json.loads(text.splitlines()[0])
    return result


class Producer(threading.Thread):
    def __init__(
        self,
        index: int,
        redis_url: str,
        *,
        seed: int,
        rate_per_s: float,
        until_monotonic: float,
    ) -> None:
        super().__init__(name=f"od-producer-{index}", daemon=True)
        self.account = f"acct-{index}"
        self.prefix = f"s{seed}-p{index}"
        self.rng = random.Random(seed * 1000 + index)
        self.rate_per_s = rate_per_s
        self.until = until_monotonic
        settings = Settings(_env_file=None, redis_url=redis_url, account_id=self.account)
        self.dispatcher = Dispatcher(settings)
        self.template = _example()
        self.accepted: set[str] = set()
        self.unanswered: set[str] = set()
        self.invalid: list[str] = []
        self.errors = 0
        self._serial = 0
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()

    def _order(self) -> dict[str, Any]:
        self._serial += 1
        n = self._serial
        order = copy.deepcopy(self.template)
        order["id"] = f"{self.prefix}-{n:06d}"
        order["candidate"]["id"] = f"cand-{self.prefix}-{n}"
        order["candidate"]["emails"] = [
            {"type": "personal", "value": f"candidate.{self.prefix}.{n}@example.org"}
        ]
        order["application"]["id"] = f"app-{self.prefix}-{n}"
        return order

    def run(self) -> None:
        try:
            while time.monotonic() < self.until and not self._halt.is_set():
                batch = [self._order() for _ in range(self.rng.randint(1, 5))]
                self._send(batch)
                self._halt.wait(len(batch) / self.rate_per_s)
        finally:
            self.dispatcher.redis.close()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        keys = {f"{self.account}:{o['id']}" for o in batch}
        while not self._halt.is_set():
            try:
                report = self.dispatcher.enqueue_many(batch, account_id=self.account)
            except (DispatchError, redis.RedisError):
                # Redis is away: the batch may or may not have landed; resend it.
                self.errors += 1
                self.unanswered |= keys
                self._halt.wait(0.5)
                continue
            for result in report.results:
                if result.key is None:
                    self.invalid.append(str(result.errors))
                elif result.outcome in ("accepted", "duplicate"):
                    self.accepted.add(result.key)
                    self.unanswered.discard(result.key)
            return
