"""Direct transactions: the per-job SQL statements on a pooled DBAPI connection, compiled once.

Every job runs a handful of small statements: the submit's INSERT, the claim, the final state with
its outbox row, and the webhook sender's read and record. Through a Session, SQLAlchemy's execution
layers (session and connection transactions, events, the execution context, cache-key generation,
Result objects) cost more than the statement itself: the claim with its commit takes ~240 us that
way and ~120 us here (`python -m bench.sql_cost`). In the end-to-end bench, with renders sharing the
cores, running them directly gave 1.10x the throughput (median of 10 alternated rounds against the
previous code, 8 of them faster; README "Benchmarks").

SQLAlchemy still does what it is good at here, so the statements stay dialect-neutral Core:
- it compiles each statement once per dialect and set of parameter names (SQL, paramstyle, order);
- the columns' own types convert values both ways (UTCDateTime, JSON), through their bind and
  result processors for the dialect;
- Python-side column defaults and onupdate values are filled in as its execution context would;
- the pool hands out the connection (pre-ping on PostgreSQL, the SQLite pragmas on connect), and
  DBAPI errors come out as its exceptions (IntegrityError, OperationalError ...), parameters hidden.
A write statement on SQLite first takes the database's writer lock (store.db.WriterQueue), as a
Session's would; the lock is released when the connection goes back to the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import Insert

from store.db import writer_queue

Row = dict[str, Any]
Converter = Callable[[Any], Any]  # a column type's bind or result processor for the dialect


@dataclass(frozen=True)
class Prepared:
    """One statement compiled for one dialect: what running it needs besides the parameters."""

    compiled: Any  # the dialect's SQLCompiler
    converters: Mapping[str, Converter]  # parameter name -> its type's bind processor for the dialect
    defaults: tuple[tuple[str, Any], ...]  # (parameter, ColumnDefault) filled when the caller gives none
    columns: tuple[tuple[str, Converter | None], ...]  # result column keys and their converters
    writes: bool
    expands: bool  # an IN list whose parameters are rendered per execution


@lru_cache(maxsize=512)
def prepare(statement: Executable, dialect: Dialect, keys: tuple[str, ...] | None = None) -> Prepared:
    """Compile `statement` for `dialect` (an INSERT for the column names `keys`); cached.

    The cache is keyed by the statement object: build statements once (module constants, or a cache
    like store.jobs._finish_statement), never per call.
    """
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
    defaults = tuple(
        [(column.key, column.default) for column in compiled.insert_prefetch]
        + [(column.key, column.onupdate) for column in compiled.update_prefetch]
    )
    converters = {}
    for name, bind in compiled.binds.items():
        convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converters[compiled.escaped_bind_names.get(name, name)] = convert
    columns = tuple(
        (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
        for column in statement.exported_columns  # type: ignore[attr-defined]
    )
    expands = any(bind.expanding for bind in compiled.binds.values())
    return Prepared(compiled, converters, defaults, columns, writes=getattr(statement, "is_dml", False),
                    expands=expands)


class DirectTransaction:
    """Statements in one transaction on one DBAPI connection; see `transaction`."""

    def __init__(self, engine: Engine, connection: Any) -> None:
        self.dialect = engine.dialect
        self.connection = connection  # the pool's proxy of the DBAPI connection
        self._writer = writer_queue(engine)

    def rows(self, statement: Executable, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a SELECT or a statement with RETURNING; its rows as {column key: value}."""
        prepared, cursor = self._execute(statement, params or {})
        with closing(cursor):
            return [_converted(prepared.columns, row) for row in cursor.fetchall()]

    def first(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Row | None:
        """The first row of `rows`, or None."""
        found = self.rows(statement, params)
        return found[0] if found else None

    def rowcount(self, statement: Executable, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement without RETURNING; the number of rows it matched."""
        with closing(self._execute(statement, params or {})[1]) as cursor:
            return cursor.rowcount

    def insert_many(self, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run an INSERT once per row (DBAPI executemany); every row must name the same columns."""
        if not rows:
            return
        prepared = self._prepared(statement, rows[0])
        arguments = [self._arguments(prepared, row)[1] for row in rows]
        self._hold_writer(prepared)
        with closing(self.connection.cursor()) as cursor:
            self._call(cursor.executemany, prepared.compiled.string, arguments, cursor)

    def _execute(self, statement: Executable, params: Mapping[str, Any]) -> tuple[Prepared, Any]:
        prepared = self._prepared(statement, params)
        sql, arguments = self._arguments(prepared, params)
        self._hold_writer(prepared)
        cursor = self.connection.cursor()
        try:
            self._call(cursor.execute, sql, arguments, cursor)
        except BaseException:
            cursor.close()
            raise
        return prepared, cursor  # the caller closes it

    def _prepared(self, statement: Executable, params: Mapping[str, Any]) -> Prepared:
        keys = tuple(sorted(params)) if isinstance(statement, Insert) else None
        return prepare(statement, self.dialect, keys)

    @staticmethod
    def _arguments(prepared: Prepared, params: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL (IN lists expanded) and the DBAPI arguments: converted, in the paramstyle's form."""
        values = dict(params)
        for name, default in prepared.defaults:
            if name not in values:
                # Our defaults are constants or callables of no argument (SQLAlchemy wraps those to
                # take the execution context, which they ignore).
                values[name] = default.arg if default.is_scalar else default.arg(None)
        compiled, converters = prepared.compiled, prepared.converters
        if prepared.expands:
            state = compiled.construct_expanded_state(values)
            sql, given, order = state.statement, state.parameters, state.positiontup
            converters = {**converters, **state.processors}  # those of the parameters the IN lists became
        else:
            sql, given, order = compiled.string, compiled.construct_params(values), compiled.positiontup
        if compiled.positional:
            return sql, tuple(
                converters[name](given[name]) if name in converters else given[name] for name in order
            )
        return sql, {name: converters[name](value) if name in converters else value for name, value in given.items()}

    def _hold_writer(self, prepared: Prepared) -> None:
        if prepared.writes and self._writer is not None:
            self._writer.hold(self.connection.info)

    def _call(self, method: Callable[..., Any], sql: str, arguments: Any, cursor: Any) -> None:
        try:
            method(sql, arguments)
        except self.dialect.loaded_dbapi.Error as exc:
            raise self.wrapped(exc, sql, cursor) from exc

    def wrapped(self, exc: Exception, sql: str, cursor: Any = None) -> DBAPIError:
        """SQLAlchemy's exception for a DBAPI error; a lost connection is dropped from the pool."""
        lost = self.dialect.is_disconnect(exc, self.connection.dbapi_connection, cursor)
        if lost:
            self.connection.invalidate(exc)
        return DBAPIError.instance(  # type: ignore[return-value]
            sql, None, exc, self.dialect.loaded_dbapi.Error, hide_parameters=True,
            connection_invalidated=lost, dialect=self.dialect,
        )


def _converted(columns: tuple[tuple[str, Converter | None], ...], row: Sequence[Any]) -> Row:
    return {key: convert(value) if convert else value for (key, convert), value in zip(columns, row, strict=True)}


def engine_of(session: Session) -> Engine:
    """The session's engine, for a direct transaction next to it; a transaction it has open is committed
    first, so that its connection goes back to the pool before the direct transaction takes one.

    A caller holding one pooled connection while it waits for a second can starve the pool: twenty
    concurrent submits with one Idempotency-Key (each read with its session, then inserted) waited
    out the pool's 30 s on PostgreSQL (pool of 15) before this.
    """
    if session.in_transaction():
        session.commit()
    return session.get_bind()  # type: ignore[return-value]


@contextmanager
def transaction(engine: Engine) -> Iterator[DirectTransaction]:
    """A transaction on a pooled DBAPI connection: committed when the block ends, rolled back on error."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    try:
        connection = engine.raw_connection()
    except dbapi_error as exc:  # the database cannot be reached: SQLAlchemy's OperationalError, as a Session's
        raise DBAPIError.instance(None, None, exc, dbapi_error, hide_parameters=True,
                                  dialect=engine.dialect) from exc
    try:
        direct = DirectTransaction(engine, connection)
        try:
            yield direct
        except BaseException:
            _rollback(connection)
            raise
        try:
            connection.commit()
        except dbapi_error as exc:
            _rollback(connection)
            raise direct.wrapped(exc, "COMMIT") from exc
    finally:
        connection.close()  # back to the pool, which releases SQLite's writer lock


def _rollback(connection: Any) -> None:
    try:
        connection.rollback()
    except Exception:  # noqa: BLE001 - a dead connection: the pool resets or discards it at check-in
        connection.invalidate()
