from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from callbacks import signing
from callbacks.signing import SignatureError

# Fixed vector: the example of the Standard Webhooks specification, also what the standardwebhooks
# library's Webhook(secret).sign returns for it.
KNOWN_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KNOWN_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
KNOWN_TIMESTAMP = 1614265330
KNOWN_BODY = b'{"test": 2432232314}'
KNOWN_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def _now_headers(secret: str, body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    return signing.signature_headers(secret, msg_id, int(time.time()), body)


def test_sign_matches_known_vector() -> None:
    assert signing.sign(KNOWN_SECRET, KNOWN_ID, KNOWN_TIMESTAMP, KNOWN_BODY) == KNOWN_SIGNATURE


@pytest.mark.parametrize(
    "body",
    [b"{}", b'{"job_id": "j1", "status": "completed"}', '{"name": "Zoë ✓"}'.encode(), b"x" * 10_000],
)
def test_signature_headers_verify_with_standardwebhooks(body: bytes) -> None:
    secret = signing.new_webhook_secret()
    headers = _now_headers(secret, body, signing.new_message_id())
    Webhook(secret).verify(body, headers, json_parse=False)
    signing.verify(secret, headers, body)


def test_sign_agrees_with_standardwebhooks_sign() -> None:
    secret = signing.new_webhook_secret()
    when = datetime.fromtimestamp(1_700_000_000, tz=UTC)
    expected = Webhook(secret).sign("msg_abc", when, '{"a": 1}')
    assert signing.sign(secret, "msg_abc", 1_700_000_000, b'{"a": 1}') == expected


def test_verify_flipped_byte_fails() -> None:
    secret = signing.new_webhook_secret()
    body = b'{"job_id": "j1"}'
    headers = _now_headers(secret, body)
    tampered = b'{"job_id": "j2"}'
    with pytest.raises(SignatureError):
        signing.verify(secret, headers, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_verify_stale_timestamp_fails() -> None:
    secret = signing.new_webhook_secret()
    body = b"{}"
    headers = signing.signature_headers(secret, "msg_1", 1_000_000, body)
    with pytest.raises(SignatureError, match="too old"):
        signing.verify(secret, headers, body, now=1_000_000 + 301)
    signing.verify(secret, headers, body, now=1_000_000 + 299)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, headers)


def test_verify_future_timestamp_fails() -> None:
    secret = signing.new_webhook_secret()
    headers = signing.signature_headers(secret, "msg_1", 2_000, b"{}")
    with pytest.raises(SignatureError, match="too new"):
        signing.verify(secret, headers, b"{}", now=1_000)


def test_verify_wrong_secret_fails() -> None:
    headers = _now_headers(signing.new_webhook_secret(), b"{}")
    with pytest.raises(SignatureError):
        signing.verify(signing.new_webhook_secret(), headers, b"{}")


def test_verify_missing_header_fails() -> None:
    secret = signing.new_webhook_secret()
    headers = _now_headers(secret, b"{}")
    del headers["webhook-id"]
    with pytest.raises(SignatureError, match="missing"):
        signing.verify(secret, headers, b"{}")


def test_verify_accepts_any_of_several_signatures_and_mixed_case_headers() -> None:
    secret = signing.new_webhook_secret()
    headers = _now_headers(secret, b"{}")
    headers = {
        "Webhook-Id": headers["webhook-id"],
        "Webhook-Timestamp": headers["webhook-timestamp"],
        "Webhook-Signature": "v2,abc v1,AAAA " + headers["webhook-signature"],
    }
    signing.verify(secret, headers, b"{}")


def test_sign_raw_secret_uses_utf8_bytes() -> None:
    raw = "plain-secret"
    prefixed = "whsec_" + base64.b64encode(raw.encode()).decode()
    assert signing.sign(raw, "m", 1, b"{}") == signing.sign(prefixed, "m", 1, b"{}")


def test_sign_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        signing.sign("whsec_", "m", 1, b"{}")


def test_new_webhook_secret_holds_24_random_bytes() -> None:
    secret = signing.new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert secret != signing.new_webhook_secret()


def test_new_message_id_is_prefixed_and_unique() -> None:
    first, second = signing.new_message_id(), signing.new_message_id()
    assert first.startswith("msg_") and first != second


def test_two_secrets_give_two_signatures_and_either_verifies() -> None:
    new, old = signing.new_webhook_secret(), signing.new_webhook_secret()
    headers = signing.signature_headers((new, KNOWN_SECRET), KNOWN_ID, KNOWN_TIMESTAMP, KNOWN_BODY)
    first, second = headers["webhook-signature"].split(" ")
    assert first == signing.sign(new, KNOWN_ID, KNOWN_TIMESTAMP, KNOWN_BODY) and second == KNOWN_SIGNATURE
    body = b'{"job_id": "j1"}'
    both = _now_headers((new, old), body)  # type: ignore[arg-type]
    for secret in (new, old):
        Webhook(secret).verify(body, both, json_parse=False)
        signing.verify(secret, both, body)
    with pytest.raises(SignatureError):
        signing.verify(signing.new_webhook_secret(), both, body)
    with pytest.raises(ValueError):
        signing.signature_headers((), "msg_1", KNOWN_TIMESTAMP, body)
