"""Webhook callbacks: Standard Webhooks signing, the callback URL policy and one delivery attempt.

Pure library code: no RQ, no Flask, no SQL. The retrying worker job lives in `workers/`.
"""

from __future__ import annotations

from callbacks.delivery import (
    DEFAULT_TIMEOUT,
    DELIVERED,
    GIVE_UP,
    RETRY,
    AttemptResult,
    Outcome,
    deliver,
    parse_retry_after,
)
from callbacks.signing import (
    SignatureError,
    new_message_id,
    new_webhook_secret,
    sign,
    signature_headers,
    verify,
)
from callbacks.url_policy import (
    CallbackHostUnresolvedError,
    CallbackUrlError,
    check_callback_url,
    is_address_allowed,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DELIVERED",
    "GIVE_UP",
    "RETRY",
    "AttemptResult",
    "CallbackHostUnresolvedError",
    "CallbackUrlError",
    "Outcome",
    "SignatureError",
    "check_callback_url",
    "deliver",
    "is_address_allowed",
    "new_message_id",
    "new_webhook_secret",
    "parse_retry_after",
    "sign",
    "signature_headers",
    "verify",
]
