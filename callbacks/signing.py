"""Standard Webhooks signing: `webhook-id`, `webhook-timestamp` and `webhook-signature` headers.

Follows the Standard Webhooks Python library (standard-webhooks `libraries/python/standardwebhooks/
webhooks.py`): the signature is `v1,` + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), where the
key is the base64-decoded part of a `whsec_...` secret. Timestamps are integer UTC seconds, never
datetimes, to avoid the library's misreading of aware non-UTC datetimes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300


class SignatureError(Exception):
    """A webhook signature, or one of its headers, did not verify."""


def secret_key(secret: str) -> bytes:
    """Return the HMAC key of a secret: base64-decoded after `whsec_`, else the raw utf-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            # Same tolerance as the reference library: padding is optional.
            key = base64.b64decode(encoded + "==")
        except (binascii.Error, ValueError) as exc:
            raise ValueError("webhook secret is not valid base64 after the whsec_ prefix") from exc
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("webhook secret may not be empty")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` value `v1,<base64>` for one message."""
    signed = b".".join([msg_id.encode("utf-8"), str(int(timestamp)).encode("ascii"), body])
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_headers(secret: str | Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the three Standard Webhooks headers for one delivery attempt.

    Several secrets (a rotation's overlap: the new one first) give one signature each, space-separated
    (`v1,<new> v1,<old>`), so a receiver that verifies with either secret accepts the message.
    """
    secrets_ = (secret,) if isinstance(secret, str) else tuple(secret)
    if not secrets_:
        raise ValueError("no webhook secret to sign with")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(sign(each, msg_id, timestamp, body) for each in secrets_),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int = DEFAULT_TOLERANCE,
    now: int | None = None,
) -> None:
    """Raise SignatureError unless the headers carry a valid, fresh signature of the body."""
    lowered = {key.lower(): value for key, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    timestamp_text = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not (msg_id and timestamp_text and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    timestamp = _checked_timestamp(timestamp_text, tolerance, now)
    expected = base64.b64decode(sign(secret, msg_id, timestamp, body).split(",", 1)[1])
    for candidate in signatures.split(" "):
        version, _, encoded = candidate.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("no matching v1 signature found")


def _checked_timestamp(text: str, tolerance: int, now: int | None) -> int:
    try:
        timestamp = int(text)
    except ValueError as exc:
        raise SignatureError(f"webhook-timestamp must be integer seconds, got {text!r}") from exc
    current = int(time.time()) if now is None else now
    if timestamp < current - tolerance:
        raise SignatureError("message timestamp too old")
    if timestamp > current + tolerance:
        raise SignatureError("message timestamp too new")
    return timestamp


def new_webhook_secret() -> str:
    """Return a fresh `whsec_` secret holding 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def new_message_id() -> str:
    """Return a fresh `msg_` identifier, used as `webhook-id` on every attempt of one delivery."""
    return "msg_" + secrets.token_urlsafe(18)
