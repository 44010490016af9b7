"""The per-job statements on a Core Connection: values through the column types, column defaults, one
transaction each (rolled back whole on error), SQLAlchemy's errors with the values left out.

These run on SQLite and on PostgreSQL (the `database` fixture of tests/conftest.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from jobs.runtime import Runtime
from store import jobs as job_store
from store import outbox
from store.db import make_engine
from store.models import COMPLETED, FAILED, PROCESSING, JobRecord, WebhookAttempt, WebhookDelivery, utcnow

SECRET = "do-not-log-this-value"
MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def _job(job_id: str, **values: Any) -> dict[str, Any]:
    return {
        "job_id": job_id, "client_name": "acme", "code": f"c-{job_id}", "product_id": "minatBakatUmum",
        "request_data": {"name": "Ani", "scores": [1, 2.5], "nested": {"ok": True}},
        "request_fingerprint": "f" * 64, "created_at": MOMENT, "updated_at": MOMENT, **values,
    }


def _delivery(job_id: str, webhook_id: str, **values: Any) -> dict[str, Any]:
    return {"job_id": job_id, "webhook_id": webhook_id, "event": "success", "url": "http://127.0.0.1:9/h",
            "body": "{}", **values}


def _claimed_job(runtime: Runtime, job_id: str) -> JobRecord:
    with runtime.session() as session:
        job_store.create_job(session, _job(job_id))
    with runtime.engine.begin() as connection:
        job = job_store.mark_started(connection, job_id)
    assert job is not None
    return job


def _count(runtime: Runtime, model: type) -> int:
    with runtime.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_the_claim_returns_values_converted_by_the_column_types(runtime: Runtime) -> None:
    job = _claimed_job(runtime, "pdf_1")
    assert job.request_data == {"name": "Ani", "scores": [1, 2.5], "nested": {"ok": True}}  # JSON, both ways
    assert job.created_at == MOMENT and job.started_at.tzinfo is UTC  # UTCDateTime, both ways
    assert (job.status, job.attempts) == (PROCESSING, 1)


def test_an_outbox_row_gets_its_column_defaults_and_a_recorded_attempt_its_onupdate_time(runtime: Runtime) -> None:
    _claimed_job(runtime, "pdf_2")
    with runtime.engine.begin() as connection:
        delivery_id = outbox.insert_delivery(connection, _delivery("pdf_2", "msg_a", attempts=1))
    with runtime.session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row.status == "pending"  # column default
        assert datetime.now(UTC) - timedelta(minutes=1) < row.created_at <= row.updated_at  # utcnow, each
        created = row.created_at
    claim = outbox.Claim(delivery_id, "pdf_2", "acme", "msg_a", "http://127.0.0.1:9/h", "{}", 1)
    record = outbox.AttemptRecord(utcnow(), "delivered", 200, 5, None, None, "delivered", None, utcnow())
    with runtime.engine.begin() as connection:
        assert outbox.record_attempts(connection, [(claim, record)]) == [True]
    with runtime.session() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert (row.status, row.last_response_code) == ("delivered", 200)
        assert row.updated_at > created and row.created_at == created  # onupdate=utcnow


def test_held_claims_reads_and_renews_any_number_of_deliveries_in_one_transaction(runtime: Runtime) -> None:
    _claimed_job(runtime, "pdf_3")
    now = utcnow()
    later, soon = now + timedelta(seconds=300), now + timedelta(seconds=1)
    rows = [("held_1", later, 1), ("held_2", later, 1), ("short", soon, 1), ("moved_on", soon, 2)]
    with runtime.engine.begin() as connection:
        ids = {name: outbox.insert_delivery(connection, _delivery("pdf_3", name, attempts=attempts,
                                                                   next_attempt_at=due, handed_at=now))
               for name, due, attempts in rows}
    claimed = {delivery_id: 1 for delivery_id in ids.values()}  # "moved_on" is at attempt 2 already
    claims = outbox.held_claims(runtime.engine, claimed, now, 60, 120)
    assert sorted(claim.webhook_id for claim in claims) == ["held_1", "held_2", "short"]
    assert {claim.client_name for claim in claims} == {"acme"}  # joined from the job
    with runtime.session() as session:
        renewed = session.get(WebhookDelivery, ids["short"])
        assert renewed.next_attempt_at == now + timedelta(seconds=120)
    assert outbox.held_claims(runtime.engine, {ids["held_1"]: 1}, now, 60, 120)[0].webhook_id == "held_1"
    assert outbox.held_claims(runtime.engine, {-1: 1}, now, 60, 120) == []


def test_record_attempts_keeps_every_attempt_and_flags_a_lost_claim(runtime: Runtime) -> None:
    _claimed_job(runtime, "pdf_4")
    with runtime.engine.begin() as connection:
        first = outbox.insert_delivery(connection, _delivery("pdf_4", "msg_1", attempts=1))
        second = outbox.insert_delivery(connection, _delivery("pdf_4", "msg_2", attempts=2))
    claims = [outbox.Claim(delivery_id, "pdf_4", "acme", f"msg_{n}", "http://127.0.0.1:9/h", "{}", 1)
              for n, delivery_id in ((1, first), (2, second))]
    record = outbox.AttemptRecord(utcnow(), "failed", 400, 5, "400", None, FAILED, None)
    with runtime.engine.begin() as connection:
        kept = outbox.record_attempts(connection, [(claim, record) for claim in claims])
        assert outbox.retry_round_base(connection, first) == 0
    assert kept == [True, False]  # msg_2 moved on to attempt 2: left alone
    assert _count(runtime, WebhookAttempt) == 2  # both attempts kept for the record
    with runtime.session() as session:
        assert session.get(WebhookDelivery, second).status == "pending"


def test_an_error_rolls_the_final_state_and_its_outbox_row_back_and_leaves_the_values_out(
    runtime: Runtime,
) -> None:
    _claimed_job(runtime, "pdf_5")
    with runtime.engine.begin() as connection:
        outbox.insert_delivery(connection, _delivery("pdf_5", "msg_taken"))
    with pytest.raises(IntegrityError) as raised, runtime.engine.begin() as connection:
        assert job_store.finish_job(connection, "pdf_5", COMPLETED) is not None
        outbox.insert_delivery(connection, _delivery("pdf_5", "msg_taken", url=f"http://127.0.0.1:9/{SECRET}"))
    assert SECRET not in str(raised.value)  # parameters are hidden: they may hold data or secrets
    with pytest.raises(RuntimeError), runtime.engine.begin() as connection:
        assert job_store.finish_job(connection, "pdf_5", FAILED) is not None
        raise RuntimeError("the caller's own error")
    with runtime.session() as session:
        assert session.get(JobRecord, "pdf_5").status == PROCESSING  # neither final state stayed
    assert _count(runtime, WebhookDelivery) == 1


def test_an_unreachable_database_is_sqlalchemys_operational_error(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # its folder does not exist
    with pytest.raises(OperationalError), engine.begin() as connection:
        job_store.mark_started(connection, "pdf_6")
    engine.dispose()


def test_a_connection_lost_mid_transaction_is_operational_error_and_the_pool_replaces_it(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("only a database server has a connection to lose")
    _claimed_job(runtime, "pdf_7")
    with pytest.raises(OperationalError) as raised, runtime.engine.begin() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar()
        with runtime.engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        job_store.finish_job(connection, "pdf_7", COMPLETED)
    assert raised.value.connection_invalidated
    with runtime.engine.begin() as connection:  # a new connection: the transaction never committed
        assert job_store.finish_job(connection, "pdf_7", COMPLETED).status == COMPLETED


def test_create_job_needs_no_second_pooled_connection(runtime: Runtime) -> None:
    # One pooled connection and no overflow: an insert on a second connection would wait out the
    # pool's timeout while the session keeps its own (twenty concurrent submits did so on a pool of 15).
    engine = create_engine(runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=1)
    with Session(engine) as session:
        assert session.scalar(select(JobRecord.job_id).where(JobRecord.job_id == "pdf_8")) is None  # holds the one
        job = job_store.create_job(session, _job("pdf_8"))
        assert session.get(JobRecord, "pdf_8").job_id == job.job_id == "pdf_8"
        with pytest.raises(job_store.DuplicateJobError) as duplicate:  # the same code and product, still active
            job_store.create_job(session, _job("pdf_9", code="c-pdf_8"))
        assert duplicate.value.existing.job_id == "pdf_8"
    engine.dispose()
