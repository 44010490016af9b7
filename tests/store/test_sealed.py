"""Secrets at rest: sealed with the first of SECRETS_ENCRYPTION_KEY's keys, opened with any of them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet

from ops.cli import cli
from store.clients import find_clients_by_name, list_clients
from store.sealed import PREFIX, SealedSecretError, seal, unseal
from tests.conftest import clients_json


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_seal_and_unseal_with_key_rotation() -> None:
    old, new = new_key(), new_key()
    sealed = seal("whsec_abc", [old])
    assert sealed.startswith(PREFIX) and "abc" not in sealed
    assert unseal(sealed, [new, old]) == "whsec_abc"  # an older key still opens
    assert seal("whsec_abc", []) == "whsec_abc" and unseal("whsec_abc", [old]) == "whsec_abc"
    with pytest.raises(SealedSecretError, match="not set"):
        unseal(sealed, [])
    with pytest.raises(SealedSecretError, match="no key"):
        unseal(sealed, [new])


def test_cli_seals_new_clients_and_reseals_after_a_key_change(runtime, settings) -> None:  # noqa: ANN001
    first, second = new_key(), new_key()
    env = {"DATA_DIR": str(settings.data_dir), "REDIS_URL": settings.redis_url, "API_CLIENTS": clients_json(),
           "SECRETS_ENCRYPTION_KEY": first}
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    created = CliRunner().invoke(cli, ["create-client", "n8n", "--callback-header", "X-Token:t0ken"], env=env)
    secret = dict(line.split(":", 1) for line in created.stdout.splitlines())["webhook secret"].strip()
    with runtime.session() as session:
        row = list_clients(session)[0]
        assert row.webhook_secret.startswith(PREFIX) and row.callback_auth_header_value.startswith(PREFIX)
        before = row.webhook_secret
    resealed = CliRunner().invoke(cli, ["reseal-secrets"], env=env | {"SECRETS_ENCRYPTION_KEY": f"{second},{first}"})
    assert resealed.exit_code == 0 and "1 client(s)" in resealed.output
    with runtime.session() as session:
        assert list_clients(session)[0].webhook_secret != before
    client = find_clients_by_name(runtime.session, (), ["n8n"], keys=[second])["n8n"]  # the old key is not needed
    assert client.webhook_secret == secret and client.callback_auth_header == ("X-Token", "t0ken")
