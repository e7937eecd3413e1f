"""Standard Webhooks signatures (https://www.standardwebhooks.com/): making and checking them.

Owns the secret format (`whsec_` + base64 of the key), the signed content
(`{msg_id}.{timestamp_s}.{body}`), the three `webhook-*` headers and the timestamp tolerance.
Pure: the clock is a parameter, nothing here reads the environment or talks to the network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SIGNATURE_VERSION = "v1"
SECRET_BYTES = 32
DEFAULT_TOLERANCE_S = 300.0


class InvalidSignature(ValueError):
    """A delivery whose headers or signature do not check out; the message says which part."""


def new_secret() -> str:
    """A fresh signing secret, `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The HMAC key in `secret` (`whsec_<base64>`, or the bare base64); ValueError if malformed.

    The message never repeats the secret: it ends up in logs and configuration errors.
    """
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Unpadded base64 is accepted, as the reference libraries do.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret must be 'whsec_' followed by base64") from exc
    if not key:
        raise ValueError("a webhook secret must not be empty")
    return key


def _digest(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp_s}.{body}">`."""
    digest = _digest(secret_bytes(secret), msg_id, timestamp_s, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signed_headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The headers a receiver checks: `webhook-id`, `webhook-timestamp`, `webhook-signature`."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp_s),
        "webhook-signature": sign(secret, msg_id, timestamp_s, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> str:
    """Return the message id of a genuine delivery; raise `InvalidSignature` otherwise.

    Genuine: all three headers present (names in any case), a timestamp within `tolerance_s` of
    `now_s` either way (replays and clock skew), and one `v1,` entry among the space-separated
    signatures that matches, compared in constant time. A malformed `secret` raises ValueError.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (timestamp.isascii() and timestamp.isdigit()):
        raise InvalidSignature("webhook-timestamp is not a unix time in seconds")
    timestamp_s = int(timestamp)
    if timestamp_s < now_s - tolerance_s:
        raise InvalidSignature("webhook-timestamp is too old")
    if timestamp_s > now_s + tolerance_s:
        raise InvalidSignature("webhook-timestamp is too far in the future")
    expected = _digest(secret_bytes(secret), msg_id, timestamp_s, body)
    for entry in signatures.split(" "):
        version, _, encoded = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return msg_id
    raise InvalidSignature("no matching v1 signature")
