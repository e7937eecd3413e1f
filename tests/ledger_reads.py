"""What a test harness that holds a sync `Ledger` reads back from it: an order's record and the
fleet-wide counters."""

from __future__ import annotations

from worker.ledger import Keys, Ledger
from worker.ledger.records import Record, read_records


class LedgerReads:
    """Mixed into a harness with a `ledger` attribute."""

    ledger: Ledger

    def record(self, key: str = "acc:o0") -> Record:
        [record] = read_records(self.ledger.redis, Keys(), [key])
        assert record is not None
        return record

    def counters(self) -> dict[str, str]:
        return dict(self.ledger.redis.hgetall(Keys().counters))
