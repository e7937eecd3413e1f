"""Following the results stream as a consumer group: several consumers share the work, and an
entry a consumer took but never acknowledged (it died) is taken over by another.

    group = ResultsGroup(client, Keys(), "billing", "consumer-1")
    for event in group.read():
        handle(event)
        group.ack(event.id)

Entries are read in order; each is given to one consumer of the group at a time, and stays
pending until acknowledged. `read` first takes over entries another consumer has left pending
for longer than `claim_idle_ms`, then this consumer's own pending ones (after a restart under
the same name), then new ones.
"""

from __future__ import annotations

from typing import Any

import redis

from worker.ledger.keys import Keys
from worker.ledger.records import Event, event_from_entry


class ResultsGroup:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        group: str,
        consumer: str,
        *,
        start: str = "0",
        claim_idle_ms: int = 30_000,
    ) -> None:
        self.redis = client
        self.stream = keys.events
        self.group = group
        self.consumer = consumer
        self.claim_idle_ms = claim_idle_ms
        self._own_pending_read = False
        try:
            client.xgroup_create(self.stream, group, id=start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, *, count: int = 100, block_ms: int = 1000) -> list[Event]:
        claimed: Any = self.redis.xautoclaim(
            self.stream, self.group, self.consumer, self.claim_idle_ms, start_id="0-0", count=count
        )
        events = [event_from_entry(i, f) for i, f in claimed[1] if f]
        if events:
            return events
        if not self._own_pending_read:
            self._own_pending_read = True
            mine: Any = self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: "0"}, count=count
            )
            events = [event_from_entry(i, f) for _s, entries in mine or [] for i, f in entries if f]
            if events:
                self._own_pending_read = len(events) < count  # more may be pending: read again
                return events
        new: Any = self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
        )
        return [event_from_entry(i, f) for _s, entries in new or [] for i, f in entries]

    def ack(self, *event_ids: str) -> int:
        # redis-py's stubs for XACK differ between 7.x and 8.x: read it untyped.
        client: Any = self.redis
        return int(client.xack(self.stream, self.group, *event_ids))
