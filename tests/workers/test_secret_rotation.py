"""Webhook secret rotation: during the overlap every webhook verifies with the old secret and with the new one
(the Standard Webhooks reference library as the receiver's verifier); before it only the old, after it only the new."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import update
from standardwebhooks import Webhook, WebhookVerificationError

from jobs.runtime import Runtime
from ops.clients import new_client, rotate_webhook_secret
from store.models import ApiClient, utcnow
from tests.callbacks.receiver import Receiver
from tests.workers.webhook_support import drive, finish, new_job, runtime_with

CLIENT = "rotating"


def verifies(secret: str, receiver: Receiver) -> bool:
    """Whether the receiver's last request verifies with `secret`."""
    request = receiver.requests[-1]
    try:
        Webhook(secret).verify(request.body, request.headers)
    except WebhookVerificationError:
        return False
    return True


def deliver(rt: Runtime, receiver: Receiver, secrets: dict[str, str]) -> set[str]:
    """Send one webhook of the client; the names of the secrets it verifies with."""
    job_id = new_job(rt, callback=receiver.url("/rotation"), client=CLIENT)
    finish(rt, job_id)
    assert drive(rt, job_id).status == "delivered"
    return {name for name, secret in secrets.items() if verifies(secret, receiver)}


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_rotation_overlap_signs_with_both_secrets(settings, redis, receiver: Receiver, sealed: bool) -> None:  # noqa: ANN001
    keys = (Fernet.generate_key().decode(),) if sealed else ()
    with runtime_with(settings, secrets_encryption_key=keys) as rt:
        secrets = {"old": new_client(rt.settings, CLIENT)["webhook_secret"]}
        assert [deliver(rt, receiver, secrets) for _ in range(3)] == [{"old"}] * 3
        secrets["new"], _ = rotate_webhook_secret(rt.settings, CLIENT, timedelta(hours=1))
        overlap = [deliver(rt, receiver, secrets) for _ in range(20)]
        failed = sum(2 - len(verified) for verified in overlap)
        assert failed == 0, overlap  # a receiver on either secret accepts every webhook of the overlap
        assert len(receiver.requests[-1].headers["webhook-signature"].split(" ")) == 2
        with rt.session() as session:
            row = session.get(ApiClient, CLIENT)
            assert row.webhook_secret.startswith("fernet:") is sealed
            assert row.previous_webhook_secret.startswith("fernet:") is sealed
            session.execute(update(ApiClient).values(previous_secret_expires_at=utcnow() - timedelta(seconds=1)))
            session.commit()
        assert [deliver(rt, receiver, secrets) for _ in range(3)] == [{"new"}] * 3


def test_a_revoked_clients_webhooks_are_not_signed_or_sent(settings, redis, receiver: Receiver) -> None:  # noqa: ANN001
    from ops.clients import revoke

    with runtime_with(settings) as rt:
        new_client(rt.settings, CLIENT)
        revoke(rt.settings, CLIENT)
        job_id = new_job(rt, callback=receiver.url("/rotation"), client=CLIENT)
        finish(rt, job_id)
        delivery = drive(rt, job_id)
        assert delivery.status == "failed" and "cannot sign" in delivery.last_error
        assert receiver.requests == []
