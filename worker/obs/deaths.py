"""The one Sentry event for an order that goes dead, from each place an order can die: an
attempt (`order_dead`), its callback's last attempt (`callback_dead`), and the pump finding a
worker lost with the POST on the wire under `hold` (`worker_lost`)."""

from __future__ import annotations

from worker.claims import CallbackClaim, Claim
from worker.errors import SubmitError
from worker.obs.sentry import report_dead, report_missing_test_url


def order_dead(claim: Claim, stage: str, reason: str, error: SubmitError | None) -> None:
    """Sentry hears of each order that goes dead (and of a reply without a test URL), once."""
    if reason == "missing_test_url":
        report_missing_test_url(key=claim.key, account_id=claim.account_id)
        return
    report_dead(
        key=claim.key,
        account_id=claim.account_id,
        stage=stage,
        reason=reason,
        kind=error.kind if error else reason,
        http_status=error.http_status if error else None,
        error=error.describe() if error else reason,
    )


def callback_dead(claim: CallbackClaim, error: str, http_status: int | None) -> None:
    report_dead(
        key=claim.key,
        account_id=claim.key.partition(":")[0],
        stage="callback",
        reason="exhausted",
        kind=error.split(":", 1)[0],
        http_status=http_status,
        error=error,
    )


def worker_lost(key: str) -> None:
    """An order whose worker was lost with its POST on the wire, held for a person (`hold`)."""
    report_dead(
        key=key,
        account_id=key.partition(":")[0],
        stage="submit",
        reason="ambiguous",
        kind="worker_lost",
        http_status=None,
        error="worker lost while the POST was in flight",
    )
