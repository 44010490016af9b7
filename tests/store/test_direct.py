"""Direct transactions: the same values, defaults, errors and writer lock as SQLAlchemy's own execution.

These run on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set (the `runtime` fixture).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, create_engine, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from jobs.runtime import Runtime
from store import direct
from store.models import JobRecord, WebhookDelivery

_JOBS = JobRecord.__table__
_DELIVERIES = WebhookDelivery.__table__
SECRET = "do-not-log-this-value"


def _job(job_id: str, **values: object) -> dict[str, object]:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    return {
        "job_id": job_id, "client_name": "acme", "code": f"c-{job_id}", "product_id": "minatBakatUmum",
        "request_data": {"name": "Ani", "scores": [1, 2.5], "nested": {"ok": True}},
        "request_fingerprint": "f" * 64, "created_at": moment, "updated_at": moment, **values,
    }


def _delivery(job_id: str, webhook_id: str) -> dict[str, object]:
    return {"job_id": job_id, "webhook_id": webhook_id, "event": "success", "url": "http://127.0.0.1:9/h",
            "body": "{}"}


def test_values_go_in_and_come_back_as_sqlalchemy_would_convert_them(runtime: Runtime) -> None:
    with direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_1"))
    with runtime.session() as session:  # read through the ORM: the types' own conversions
        stored = session.get(JobRecord, "pdf_1")
        assert stored.request_data == {"name": "Ani", "scores": [1, 2.5], "nested": {"ok": True}}
        assert stored.created_at == datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    later = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    claim = (update(_JOBS).where(_JOBS.c.job_id == bindparam("p_id")).values(started_at=bindparam("p_at"))
             .returning(_JOBS.c.job_id, _JOBS.c.started_at, _JOBS.c.request_data, _JOBS.c.status))
    with direct.transaction(runtime.engine) as tx:
        row = tx.first(claim, {"p_id": "pdf_1", "p_at": later})
    assert row == {"job_id": "pdf_1", "started_at": later, "request_data": stored.request_data, "status": "queued"}
    assert row["started_at"].tzinfo is UTC  # UTCDateTime's result conversion ran


def test_python_side_defaults_and_onupdate_values_are_filled_in(runtime: Runtime) -> None:
    with direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_2"))
        delivery = tx.rows(insert(_DELIVERIES).returning(_DELIVERIES.c.id), _delivery("pdf_2", "msg_a"))[0]["id"]
    with runtime.session() as session:
        row = session.get(WebhookDelivery, delivery)
        assert (row.status, row.attempts) == ("pending", 0)  # column defaults
        assert datetime.now(UTC) - timedelta(minutes=1) < row.created_at <= row.updated_at  # utcnow, each
        created = row.created_at
    with direct.transaction(runtime.engine) as tx:
        changed = tx.rowcount(update(_DELIVERIES).where(_DELIVERIES.c.id == delivery).values(attempts=1))
    assert changed == 1
    with runtime.session() as session:
        row = session.get(WebhookDelivery, delivery)
        assert row.attempts == 1 and row.updated_at > created  # onupdate=utcnow
        assert row.created_at == created


def test_in_lists_of_any_length_and_many_rows_at_once(runtime: Runtime) -> None:
    with direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_3"))
        tx.insert_many(insert(_DELIVERIES), [_delivery("pdf_3", f"msg_{n}") for n in range(4)])
    by_ids = (select(_DELIVERIES.c.id, _DELIVERIES.c.webhook_id)
              .where(_DELIVERIES.c.id.in_(bindparam("ids", expanding=True))).order_by(_DELIVERIES.c.id))
    with direct.transaction(runtime.engine) as tx:
        every = tx.rows(select(_DELIVERIES.c.id).order_by(_DELIVERIES.c.id))
        ids = [row["id"] for row in every]
        assert len(ids) == 4
        assert [row["webhook_id"] for row in tx.rows(by_ids, {"ids": ids[:1]})] == ["msg_0"]
        assert [row["webhook_id"] for row in tx.rows(by_ids, {"ids": ids[1:]})] == ["msg_1", "msg_2", "msg_3"]
        assert tx.rows(by_ids, {"ids": [-1]}) == []


def test_an_error_rolls_the_whole_transaction_back_and_comes_out_as_sqlalchemys_without_values(
    runtime: Runtime,
) -> None:
    with direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_4"))
    with pytest.raises(IntegrityError) as raised, direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_5", code=SECRET))
        tx.rowcount(insert(_JOBS), _job("pdf_4", code=SECRET))  # the primary key again
    assert SECRET not in str(raised.value)  # parameters are hidden: they may hold data or secrets
    with pytest.raises(RuntimeError), direct.transaction(runtime.engine) as tx:
        tx.rowcount(insert(_JOBS), _job("pdf_6"))
        raise RuntimeError("the caller's own error")
    with direct.transaction(runtime.engine) as tx:
        assert [row["job_id"] for row in tx.rows(select(_JOBS.c.job_id))] == ["pdf_4"]  # pdf_5 and pdf_6 undone


def test_an_unreachable_database_is_sqlalchemys_operational_error(tmp_path) -> None:  # noqa: ANN001
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # its folder does not exist
    with pytest.raises(OperationalError), direct.transaction(engine):
        pass
    engine.dispose()


def test_a_direct_write_holds_the_sqlite_writer_lock_until_it_ends(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("the writer lock is SQLite's")
    order: list[str] = []
    wrote, release = threading.Event(), threading.Event()

    def first_writer() -> None:
        with direct.transaction(runtime.engine) as tx:
            tx.rowcount(insert(_JOBS), _job("pdf_7"))
            wrote.set()
            release.wait(10)
            order.append("first committing")

    def second_writer() -> None:
        with direct.transaction(runtime.engine) as tx:
            tx.rowcount(insert(_JOBS), _job("pdf_8"))
        order.append("second committed")

    first = threading.Thread(target=first_writer)
    first.start()
    assert wrote.wait(10)
    second = threading.Thread(target=second_writer)
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive() and order == []  # queued behind the first, not failing with "database is locked"
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)
    assert order == ["first committing", "second committed"]
    with runtime.session() as session:  # and the lock is free again, for a Session too
        session.execute(update(JobRecord).values(progress=1))
        session.commit()


def test_a_session_holding_a_connection_gives_it_back_before_a_direct_insert(runtime: Runtime) -> None:
    # One pooled connection and no overflow: the insert would wait out the pool's timeout if the
    # session kept its connection (twenty concurrent submits did so on a pool of 15).
    from sqlalchemy.orm import Session

    from store import jobs as job_store

    engine = create_engine(runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=1)
    with Session(engine) as session:
        assert session.scalar(select(_JOBS.c.job_id).where(_JOBS.c.job_id == "pdf_9")) is None  # holds the one
        job = job_store.create_job(session, _job("pdf_9"))
        assert session.get(JobRecord, "pdf_9").job_id == job.job_id == "pdf_9"
    engine.dispose()
