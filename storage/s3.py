"""S3-compatible storage (AWS S3, MinIO, Cloudflare R2, Ceph RGW, GCS interop) through boto3.

Objects are `<S3_PREFIX>/<key>`; a location is that whole object key, so rows stored before a change
of S3_PREFIX still open and delete. A PUT is atomic for readers (they see the old object, or no
object, until it completes), and putting the same key again replaces the object, so a retried
upload is harmless. Credentials come from boto3's standard chain (environment, shared files,
instance or task role); none are kept in our settings.

Retries are botocore's own, in its "standard" mode, with as many tries per call as the retry
policy's STORAGE_BACKOFF.attempts: it knows which S3 answers are transient (throttling codes such as
SlowDown, 5xx, RequestTimeout, connection errors, truncated bodies), retries with jittered exponential
backoff, and stops retrying for a while when most calls fail (its retry quota), so an S3 outage
does not multiply the load. What is left after its retries is mapped to StorageError or
StoragePermanentError (`storage.s3_errors`).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar
from urllib.parse import quote

import boto3
from botocore.config import Config

from storage.base import MAX_KEY_SEGMENTS, StoragePermanentError, StoredFile, StoredFileNotFoundError, check_key
from storage.retrying import Backoff
from storage.s3_errors import classify, is_not_found

if TYPE_CHECKING:
    from config.settings import Settings

logger = logging.getLogger(__name__)
T = TypeVar("T")

MIMETYPE = "application/pdf"
DEFAULT_BACKOFF = Backoff()
MAX_LOCATION_SEGMENTS = 2 * MAX_KEY_SEGMENTS  # prefix parts + key parts


class S3Storage:
    """Stores files as objects of one bucket; locations are object keys, links are presigned URLs.

    Args:
        bucket: the bucket (it must exist; the service never creates buckets).
        prefix: folder-like key prefix ("pdf-jobs/prod"), "" for the bucket's root.
        endpoint_url: S3 API endpoint for MinIO, R2, Ceph, GCS interop...; None for AWS.
        region: the bucket's region (None: boto3's own chain, AWS_REGION, ~/.aws/config, else us-east-1).
        presign_seconds: how long a link() URL stays valid.
        backoff: `attempts` is the number of tries per call (botocore standard retry mode); its
            waits are botocore's (up to 1 s, doubling, jittered, capped at 20 s).
        connect_timeout, read_timeout: seconds, per try.
    """

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        presign_seconds: int = 300,
        backoff: Backoff = DEFAULT_BACKOFF,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ):
        if not bucket:
            raise StoragePermanentError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{check_key(prefix, what='S3_PREFIX')}/" if prefix else ""
        self.presign_seconds = presign_seconds
        config = Config(
            signature_version="s3v4",  # presigned URLs default to SigV2 otherwise, which R2 and new regions refuse
            retries={"mode": "standard", "total_max_attempts": max(1, backoff.attempts)},
            # botocore >= 1.36 adds CRC checksum headers to every upload by default, which several
            # S3 look-alikes refuse (GCS interop, older MinIO and Ceph); Content-MD5 (below) is
            # what all of them check.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        # A session per storage: boto3's default session is shared module state, and sessions are not
        # thread-safe; the client itself is.
        session = boto3.session.Session()
        self._client = session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> S3Storage:
        """Build from the S3_* settings; `options` are constructor options (backoff, timeouts)."""
        return cls(
            settings.s3_bucket or "",
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            presign_seconds=settings.s3_presign_seconds,
            **options,
        )

    def put(self, key: str, data: bytes, filename: str) -> StoredFile:
        """Upload `data` as `<prefix>/<key>`; `filename` is the name a browser saves it under."""
        object_key = self.prefix + check_key(key)
        digest = hashlib.md5(data, usedforsecurity=False).digest()  # S3 refuses a body that changed on the way
        self._call(f"upload of {object_key}", lambda: self._client.put_object(
            Bucket=self.bucket, Key=object_key, Body=data, ContentType=MIMETYPE,
            ContentMD5=base64.b64encode(digest).decode(), ContentDisposition=content_disposition(filename),
        ))
        logger.info("stored backend=s3 bucket=%s key=%s size=%d", self.bucket, object_key, len(data))
        return StoredFile(backend=self.name, location=object_key, link=None, size=len(data))

    def open(self, location: str) -> BinaryIO:
        """A streaming body of the object, read as it is sent on; the caller closes it."""
        object_key = _check_location(location)
        response = self._call_unless_missing(
            f"download of {object_key}", lambda: self._client.get_object(Bucket=self.bucket, Key=object_key)
        )
        if response is None:
            raise StoredFileNotFoundError(f"no object {object_key!r} in bucket {self.bucket!r}")
        return response["Body"]

    def delete(self, location: str) -> None:
        """Delete the object; one that is already gone is fine (S3 answers 204, some look-alikes 404)."""
        object_key = _check_location(location)
        self._call_unless_missing(
            f"delete of {object_key}", lambda: self._client.delete_object(Bucket=self.bucket, Key=object_key)
        )
        logger.info("deleted backend=s3 bucket=%s key=%s", self.bucket, object_key)

    def exists(self, location: str) -> bool:
        """Whether the object exists (HEAD)."""
        object_key = _check_location(location)
        found = self._call_unless_missing(
            f"lookup of {object_key}", lambda: self._client.head_object(Bucket=self.bucket, Key=object_key)
        )
        return found is not None

    def link(self, location: str) -> str:
        """A presigned GET URL of the object, valid for `presign_seconds` (made locally, no request)."""
        object_key = _check_location(location)
        return self._call(f"presigning of {object_key}", lambda: self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": object_key}, ExpiresIn=self.presign_seconds,
        ))

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one boto3 call (botocore retries transient failures itself); map what is left to our errors."""
        try:
            return call()
        except Exception as exc:
            error = classify(exc, what, bucket=self.bucket)
            if error is None:
                raise
            raise error from exc

    def _call_unless_missing(self, what: str, call: Callable[[], T]) -> T | None:
        """Like `_call`, but None when S3 answers that the object does not exist."""
        try:
            return self._call(what, call)
        except StoragePermanentError as exc:
            if is_not_found(exc.__cause__):
                return None
            raise


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII filename and its RFC 5987 UTF-8 form (what browsers save a download as)."""
    ascii_name = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in filename)
    return f"attachment; filename=\"{ascii_name or 'report.pdf'}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _check_location(location: str) -> str:
    return check_key(location, what="S3 object key", max_segments=MAX_LOCATION_SEGMENTS)
