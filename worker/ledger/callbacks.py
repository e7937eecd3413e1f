"""The callback stage in the ledger: take pending callbacks, record how each attempt ended.

An order's callback event is handed to this stage by the same script that completes (or kills)
the order. From then on it has its own schedule (`DISPATCH_CALLBACK_SCHEDULE_S`), its own leases
and its own dead letters (stage `callback`); nothing here can place the order again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from worker.claims import CallbackClaim
from worker.ledger.scripts import Op
from worker.ledger.steps import Ledger


class CallbackLedger:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.keys = ledger.keys

    def claim(self, order_keys: Iterable[str]) -> list[CallbackClaim]:
        order_keys = list(order_keys)
        if not order_keys:
            return []
        token = uuid.uuid4().hex
        ops = self.ledger.ops
        keys = [self.keys.cb_queued, self.keys.cb_leases, *self.ledger.ops.records(order_keys)]

        def parse(reply: list[Any]) -> list[CallbackClaim]:
            return [
                CallbackClaim(key, token, body, msg_id, url, int(attempts or 0))
                for key, body, msg_id, url, attempts in (
                    reply[i : i + 5] for i in range(0, len(reply), 5)
                )
            ]

        args = [ops.now_arg(), ops.lease_ms, token, *order_keys]
        return self.ledger.run(Op.one("cbclaim", keys, args, parse))

    def delivered(self, claim: CallbackClaim) -> bool:
        return self._record(claim, "delivered", 0.0, "", None, "callbacks_delivered")

    def failed(
        self, claim: CallbackClaim, *, retry_in_s: float | None, error: str, http_status: int | None
    ) -> bool:
        """Schedule the next attempt in `retry_in_s`, or (None) give the callback up."""
        if retry_in_s is None:
            return self._record(claim, "dead", 0.0, error, http_status, "callbacks_dead")
        return self._record(claim, "retry", retry_in_s, error, http_status, "callbacks_failed")

    def _record(
        self,
        claim: CallbackClaim,
        mode: str,
        delay_s: float,
        error: str,
        http_status: int | None,
        counter: str,
    ) -> bool:
        k = self.keys
        args: list[str | int] = [
            self.ledger.ops.now_arg(),
            claim.key,
            claim.token,
            mode,
            int(delay_s * 1000),
            error,
            "" if http_status is None else str(http_status),
            counter,
        ]
        keys = [k.record(claim.key), k.cb_leases, k.cb_waiting, k.dead_callback, k.counters]
        return self.ledger.run(Op.one("cbfinish", keys, args, bool))
