"""Secrets at rest: webhook secrets and callback header values of CLI-created clients, sealed with Fernet.

With SECRETS_ENCRYPTION_KEY set, new and rotated secrets are stored as `fernet:<token>` (AES-128-CBC and
HMAC-SHA256, cryptography's Fernet); the first key seals, every key opens (MultiFernet), so keys can be
rotated with `python -m ops.cli reseal-secrets`. Without a key, values are stored as given (plain text):
the database file is then the secret, kept 0600 in a 0700 DATA_DIR.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "fernet:"


class SealedSecretError(Exception):
    """A sealed value cannot be opened: no key given, or none of the keys sealed it."""


def seal(value: str, keys: Sequence[str]) -> str:
    """`value` sealed with the first key (`fernet:<token>`), or unchanged when no key is configured."""
    if not keys:
        return value
    return PREFIX + _fernet(keys).encrypt(value.encode()).decode("ascii")


def unseal(stored: str, keys: Sequence[str]) -> str:
    """The plain value of a stored one (stored plain values pass through)."""
    if not stored.startswith(PREFIX):
        return stored
    if not keys:
        raise SealedSecretError("a secret is stored encrypted but SECRETS_ENCRYPTION_KEY is not set")
    try:
        return _fernet(keys).decrypt(stored[len(PREFIX):].encode("ascii")).decode()
    except InvalidToken:
        raise SealedSecretError("no key of SECRETS_ENCRYPTION_KEY opens a stored secret") from None


def _fernet(keys: Sequence[str]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])
