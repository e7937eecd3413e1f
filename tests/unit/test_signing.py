"""Standard Webhooks signatures (SPEC §5): worker/signing.py against the reference library."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from worker.signing import (
    InvalidSignature,
    new_secret,
    secret_bytes,
    sign,
    signed_headers,
    verify,
)

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = (
    b'{"type":"order.completed","data":{"key":"acct:o-1","test_url":"https://t.example/\xc3\xa9"}}'
)
MSG_ID = "evt_2f6c1b"
# Makes (secret to verify with, headers, body) for a delivery signed at a given time.
Make = Callable[[int], tuple[str, dict[str, str], bytes]]


def now_s() -> int:
    # standardwebhooks checks the timestamp against the real clock; read it, never sleep on it.
    return int(time.time())


def test_our_signature_passes_the_reference_library() -> None:
    """Our signature passes the reference Standard Webhooks library."""
    headers = signed_headers(SECRET, MSG_ID, now_s(), BODY)
    assert Webhook(SECRET).verify(BODY, headers)["data"]["key"] == "acct:o-1"


def test_the_reference_librarys_signature_passes_ours() -> None:
    """The reference library's signature equals ours and passes our check."""
    ts = now_s()
    signature = Webhook(SECRET).sign(MSG_ID, datetime.fromtimestamp(ts, tz=UTC), BODY.decode())
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": signature}
    assert signature == sign(SECRET, MSG_ID, ts, BODY)
    assert verify(SECRET, headers, BODY, now_s=ts) == MSG_ID


@given(msg_id=st.text(min_size=1), body=st.text())
def test_any_message_round_trips_with_the_reference_library(msg_id: str, body: str) -> None:
    """Any id and body signed by us verify in both libraries."""
    ts = now_s()
    headers = signed_headers(SECRET, msg_id, ts, body.encode())
    Webhook(SECRET).verify(body.encode(), headers, json_parse=False)
    assert verify(SECRET, headers, body.encode(), now_s=ts) == msg_id


def _tampered(ts: int) -> tuple[str, dict[str, str], bytes]:
    return SECRET, signed_headers(SECRET, MSG_ID, ts, BODY), BODY.replace(b"o-1", b"o-2")


def _wrong_secret(ts: int) -> tuple[str, dict[str, str], bytes]:
    return OTHER_SECRET, signed_headers(SECRET, MSG_ID, ts, BODY), BODY


def _stale(ts: int) -> tuple[str, dict[str, str], bytes]:
    return SECRET, signed_headers(SECRET, MSG_ID, ts - 600, BODY), BODY


def _future(ts: int) -> tuple[str, dict[str, str], bytes]:
    return SECRET, signed_headers(SECRET, MSG_ID, ts + 600, BODY), BODY


def _without(header: str) -> Make:
    def make(ts: int) -> tuple[str, dict[str, str], bytes]:
        headers = signed_headers(SECRET, MSG_ID, ts, BODY)
        del headers[header]
        return SECRET, headers, BODY

    return make


REJECTED = {
    "tampered body": (_tampered, "no matching"),
    "wrong secret": (_wrong_secret, "no matching"),
    "stale timestamp": (_stale, "too old"),
    "future timestamp": (_future, "future"),
    "no webhook-id": (_without("webhook-id"), "missing"),
    "no webhook-timestamp": (_without("webhook-timestamp"), "missing"),
    "no webhook-signature": (_without("webhook-signature"), "missing"),
}


@pytest.mark.parametrize(("make", "reason"), REJECTED.values(), ids=REJECTED.keys())
def test_both_libraries_reject(make: Make, reason: str) -> None:
    """What the reference library rejects, ours rejects too, saying why."""
    ts = now_s()
    secret, headers, body = make(ts)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)
    with pytest.raises(InvalidSignature, match=reason):
        verify(secret, headers, body, now_s=ts)


def test_header_names_are_case_insensitive() -> None:
    """Header names are matched whatever their case."""
    headers = {k.title(): v for k, v in signed_headers(SECRET, MSG_ID, 1_700_000_000, BODY).items()}
    assert "Webhook-Signature" in headers
    assert verify(SECRET, headers, BODY, now_s=1_700_000_000) == MSG_ID


def test_one_matching_entry_among_several_is_enough() -> None:
    """One matching v1 entry among several (and junk) is enough."""
    ts = 1_700_000_000
    good = sign(SECRET, MSG_ID, ts, BODY)
    headers = signed_headers(SECRET, MSG_ID, ts, BODY)
    headers["webhook-signature"] = f"v1,bm90IGl0 v1,!!notbase64 v2,{good[3:]} nocomma {good}"
    assert verify(SECRET, headers, BODY, now_s=ts) == MSG_ID


def test_a_matching_signature_under_another_version_is_not_accepted() -> None:
    """A matching signature under another version tag is not accepted."""
    ts = 1_700_000_000
    headers = signed_headers(SECRET, MSG_ID, ts, BODY)
    headers["webhook-signature"] = "v1a," + headers["webhook-signature"][3:]
    with pytest.raises(InvalidSignature, match="no matching"):
        verify(SECRET, headers, BODY, now_s=ts)


@pytest.mark.parametrize(
    ("offset_s", "accepted"), [(-300, True), (300, True), (-301, False), (301, False)]
)
def test_tolerance_is_inclusive(offset_s: int, accepted: bool) -> None:
    """Timestamps exactly at the tolerance are accepted; one second beyond is refused."""
    now = 1_700_000_000
    headers = signed_headers(SECRET, MSG_ID, now + offset_s, BODY)
    if accepted:
        assert verify(SECRET, headers, BODY, now_s=now) == MSG_ID
    else:
        with pytest.raises(InvalidSignature, match="timestamp"):
            verify(SECRET, headers, BODY, now_s=now)


@pytest.mark.parametrize(
    "timestamp", ["1.7e9", "-5", "soon", " 1700000000", "\uff11\uff17\uff10\uff10"]
)
def test_a_timestamp_that_is_not_unix_seconds_is_rejected(timestamp: str) -> None:
    """A timestamp that is not whole unix seconds is refused."""
    headers = signed_headers(SECRET, MSG_ID, 1_700_000_000, BODY)
    headers["webhook-timestamp"] = timestamp
    with pytest.raises(InvalidSignature, match="unix time"):
        verify(SECRET, headers, BODY, now_s=1_700_000_000)


def test_invalid_signature_is_a_value_error() -> None:
    """InvalidSignature is a ValueError, so plain callers can catch it."""
    assert issubclass(InvalidSignature, ValueError)


def test_new_secret_is_32_random_bytes_the_reference_library_accepts() -> None:
    """A new secret is 32 random bytes, `whsec_`-prefixed, usable by the reference library."""
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(secret_bytes(secret)) == 32
    assert secret != new_secret()
    ts = now_s()
    Webhook(secret).verify(BODY, signed_headers(secret, MSG_ID, ts, BODY))


@pytest.mark.parametrize(
    "spelling",
    [SECRET, SECRET.removeprefix("whsec_"), SECRET.rstrip("="), f"  {SECRET}\n"],
    ids=["prefixed", "bare", "unpadded", "surrounding-space"],
)
def test_secret_spellings(spelling: str) -> None:
    """A secret is read with or without its `whsec_` prefix."""
    assert secret_bytes(spelling) == b"k" * 32


@pytest.mark.parametrize("bad", ["whsec_", "", "whsec_not*base64!", "whsec_abcde", "sk_live_x"])
def test_a_malformed_secret_is_refused_without_repeating_it(bad: str) -> None:
    """A malformed secret is refused without repeating it in the message."""
    with pytest.raises(ValueError, match="webhook secret") as info:
        secret_bytes(bad)
    assert not isinstance(info.value, InvalidSignature)
    if bad.removeprefix("whsec_"):
        assert bad.removeprefix("whsec_") not in str(info.value)
