"""MongoDB: where report data comes from and where the permanent `pdf_generation` record goes.

One document per `{code, product_id}` in `workflow.psikotes_v2` (database, collection and field names
come from Settings). Connection trouble raises MongoUnavailableError (retry later); a missing
document raises MongoDocumentMissingError (permanent). No connection is opened until the first call.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from bson import Binary, Decimal128, ObjectId
from pymongo import MongoClient
from pymongo.errors import (
    ConnectionFailure,
    ExecutionTimeout,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)

if TYPE_CHECKING:
    from pymongo.collection import Collection

    from config.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")
RECORD_FIELD = "pdf_generation"
HIDDEN_FIELDS = ("_id", RECORD_FIELD)
_TRANSIENT_LABELS = ("RetryableWriteError", "TransientTransactionError")


class MongoUnavailableError(Exception):
    """MongoDB could not be reached or timed out: retry later."""


class MongoDocumentMissingError(Exception):
    """No report data for the code/productId in MongoDB: retrying will not help."""


class MongoOperationError(Exception):
    """MongoDB refused the operation (authentication, permissions, invalid update): fix the setup."""


class MongoSink:
    """Reads report data from, and records PDF outcomes on, the per-test-taker documents.

    Args:
        collection: a pymongo Collection (or a mongomock one in tests).
        data_field: dotted path of the report data inside the document; None = the whole document.
    """

    def __init__(
        self,
        collection: Collection[Any],
        *,
        code_field: str = "code",
        product_field: str = "product_id",
        data_field: str | None = None,
        client: MongoClient[Any] | None = None,
    ):
        self.collection = collection
        self.code_field = code_field
        self.product_field = product_field
        self.data_field = data_field
        self._client = client

    @property
    def where(self) -> str:
        """database.collection, for messages."""
        return str(getattr(self.collection, "full_name", getattr(self.collection, "name", "?")))

    def fetch_report_data(self, code: str, product_id: str) -> dict[str, Any]:
        """The report data of the document for code/productId, as JSON-compatible values."""
        query = self._query(code, product_id)
        document = self._call("fetch", code, product_id, lambda: self.collection.find_one(query, sort=[("_id", -1)]))
        if document is None:
            raise MongoDocumentMissingError(
                f"no report data: {self.where} has no document with {self.code_field}={code!r} and "
                f"{self.product_field}={product_id!r}; send the data inline or create the document"
            )
        if self.data_field is None:
            data = {key: value for key, value in document.items() if key not in HIDDEN_FIELDS}
        else:
            data = _get_path(document, self.data_field)
            if not isinstance(data, Mapping):
                raise MongoDocumentMissingError(
                    f"no report data: the {self.where} document for {self.code_field}={code!r} and "
                    f"{self.product_field}={product_id!r} has no object field {self.data_field!r} (MONGO_DATA_FIELD)"
                )
        return to_json_compatible(dict(data))

    def record_outcome(
        self,
        code: str,
        product_id: str,
        *,
        status: str,
        job_id: str,
        google_drive_link: str | None = None,
        completed_at: datetime | None = None,
        failed_at: datetime | None = None,
        error_message: str | None = None,
    ) -> bool:
        """Set `pdf_generation` on the document; False if there is none or it holds a newer outcome.

        A record only replaces one whose completed_at/failed_at is not later than its own, so a
        delayed retry of an older job's outcome never clobbers a newer job's.
        """
        record, at = _build_record(status, job_id, google_drive_link, completed_at, failed_at, error_message)
        query = {**self._query(code, product_id), **_not_newer_than(at)}
        result = self._call(
            "record", code, product_id, lambda: self.collection.update_one(query, {"$set": {RECORD_FIELD: record}})
        )
        if result.matched_count:
            logger.info("mongo record written code=%s product_id=%s job=%s status=%s", code, product_id, job_id, status)
            return True
        self._log_skipped(code, product_id, job_id)
        return False

    def close(self) -> None:
        """Close the client this sink created (if any)."""
        if self._client is not None:
            self._client.close()

    def _query(self, code: str, product_id: str) -> dict[str, Any]:
        return {self.code_field: code, self.product_field: product_id}

    def _log_skipped(self, code: str, product_id: str, job_id: str) -> None:
        query = self._query(code, product_id)
        existing = self._call("record", code, product_id, lambda: self.collection.find_one(query, {RECORD_FIELD: 1}))
        if existing is None:
            logger.warning(
                "mongo record skipped code=%s product_id=%s job=%s reason=no-document collection=%s",
                code, product_id, job_id, self.where,
            )
        else:
            newer = existing.get(RECORD_FIELD) or {}
            logger.warning(
                "mongo record skipped code=%s product_id=%s job=%s reason=newer-record newer_job=%s",
                code, product_id, job_id, newer.get("job_id") if isinstance(newer, Mapping) else None,
            )

    def _call(self, what: str, code: str, product_id: str, operation: Callable[[], T]) -> T:
        """Run one MongoDB operation, turning pymongo errors into ours."""
        try:
            return operation()
        except (ConnectionFailure, ExecutionTimeout, WTimeoutError) as exc:
            raise MongoUnavailableError(_describe(what, code, product_id, self.where, exc)) from exc
        except OperationFailure as exc:
            if any(exc.has_error_label(label) for label in _TRANSIENT_LABELS):
                raise MongoUnavailableError(_describe(what, code, product_id, self.where, exc)) from exc
            raise MongoOperationError(_describe(what, code, product_id, self.where, exc)) from exc
        except PyMongoError as exc:
            raise MongoOperationError(_describe(what, code, product_id, self.where, exc)) from exc


def build_mongo_sink(settings: Settings) -> MongoSink | None:
    """A MongoSink for MONGO_URI, or None when MongoDB is not configured. Opens no connection."""
    if not settings.mongo_uri:
        return None
    client: MongoClient[Any] = MongoClient(
        settings.mongo_uri,
        connect=False,
        serverSelectionTimeoutMS=2000,
        connectTimeoutMS=2000,
        socketTimeoutMS=10000,
        tz_aware=True,
        appname="pdf-job-service",
    )
    collection = client[settings.mongo_database][settings.mongo_collection]
    return MongoSink(
        collection,
        code_field=settings.mongo_code_field,
        product_field=settings.mongo_product_field,
        data_field=settings.mongo_data_field,
        client=client,
    )


def _build_record(
    status: str,
    job_id: str,
    google_drive_link: str | None,
    completed_at: datetime | None,
    failed_at: datetime | None,
    error_message: str | None,
) -> tuple[dict[str, Any], datetime]:
    """The pdf_generation subdocument and the time it describes."""
    if status not in ("completed", "failed"):
        raise ValueError(f"status must be 'completed' or 'failed', got {status!r}")
    at = _utc_ms(completed_at if status == "completed" else failed_at)
    record: dict[str, Any] = {"status": status, "google_drive_link": google_drive_link, "job_id": job_id}
    record["completed_at" if status == "completed" else "failed_at"] = at
    record["error_message"] = error_message
    return record, at


def _not_newer_than(at: datetime) -> dict[str, Any]:
    """Filter: no record yet, or one whose time is not later than `at` (or has no usable time)."""
    return {
        "$or": [
            {RECORD_FIELD: None},
            {f"{RECORD_FIELD}.completed_at": {"$lte": at}},
            {f"{RECORD_FIELD}.failed_at": {"$lte": at}},
            {
                f"{RECORD_FIELD}.completed_at": {"$not": {"$type": "date"}},
                f"{RECORD_FIELD}.failed_at": {"$not": {"$type": "date"}},
            },
        ]
    }


def _utc_ms(value: datetime | None) -> datetime:
    """An aware UTC datetime at MongoDB's millisecond precision (naive input is taken as UTC)."""
    value = value or datetime.now(UTC)
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _get_path(document: Mapping[str, Any], path: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def to_json_compatible(value: Any) -> Any:
    """BSON values as the same data would arrive inline as JSON (ids and dates become strings)."""
    if isinstance(value, Mapping):
        return {str(key): to_json_compatible(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_compatible(item) for item in value]
    if isinstance(value, datetime):
        return _utc_ms(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, (Decimal128, Decimal)):
        number = value.to_decimal() if isinstance(value, Decimal128) else value
        return int(number) if number.is_finite() and number == number.to_integral_value() else float(number)
    if isinstance(value, (Binary, bytes)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _describe(what: str, code: str, product_id: str, where: str, exc: BaseException) -> str:
    action = "reading report data" if what == "fetch" else "recording the PDF outcome"
    detail = str(exc).split(", Timeout:")[0][:200]  # server-selection errors append a long topology dump
    subject = f"code={code!r} productId={product_id!r}"
    return f"MongoDB {where}: {action} for {subject} failed: {type(exc).__name__}: {detail}"
