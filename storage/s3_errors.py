"""Turns boto3/botocore failures into StorageError (retry later) or StoragePermanentError."""

from __future__ import annotations

from botocore import exceptions as boto_errors

from storage.base import StorageError, StoragePermanentError

# Error codes S3 and its look-alikes (MinIO, R2, Ceph, GCS interop) answer when busy or slow.
TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete", "InternalError", "ServiceUnavailable",
    "OperationAborted",
})
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
CREDENTIAL_CODES = frozenset({
    "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
    "AllAccessDisabled", "AccountProblem", "InvalidSecurity", "Forbidden", "403",
})
REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
# botocore's own failures that can pass: connection refused/reset, timeouts, a body cut short
_TRANSIENT_TYPES = (
    boto_errors.HTTPClientError,
    boto_errors.ConnectionError,
    boto_errors.IncompleteReadError,
    boto_errors.ResponseStreamingError,
    boto_errors.ChecksumError,
    boto_errors.CredentialRetrievalError,
)

CREDENTIALS_HINT = (
    "check the AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the instance's "
    "role) and that they may s3:PutObject, s3:GetObject and s3:DeleteObject in the bucket"
)


def error_code(exc: boto_errors.ClientError) -> str:
    """The S3 error code of a ClientError ('NoSuchKey', 'SlowDown', '404' for a bodiless HEAD...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: boto_errors.ClientError) -> int:
    """The HTTP status of a ClientError (0 when unknown)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def is_not_found(exc: BaseException) -> bool:
    """Whether S3 answered that the object does not exist."""
    return isinstance(exc, boto_errors.ClientError) and (
        error_code(exc) in NOT_FOUND_CODES or (http_status(exc) == 404 and error_code(exc) != "NoSuchBucket")
    )


def classify(exc: BaseException, what: str, *, bucket: str) -> StorageError | StoragePermanentError | None:
    """Our error for a failed S3 call, or None when `exc` is not an S3/network failure (a bug)."""
    if isinstance(exc, boto_errors.ClientError):
        return _classify_client_error(exc, what, bucket)
    if isinstance(exc, (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError)):
        return StoragePermanentError(f"S3 {what} failed: {exc} ({CREDENTIALS_HINT})")
    if isinstance(exc, _TRANSIENT_TYPES):
        return StorageError(f"S3 {what} failed: cannot reach the S3 endpoint: {type(exc).__name__}: {exc}")
    if isinstance(exc, boto_errors.BotoCoreError):  # configuration: bad endpoint, parameters, region
        return StoragePermanentError(f"S3 {what} failed: {type(exc).__name__}: {exc}")
    return None


def _classify_client_error(exc: boto_errors.ClientError, what: str,
                           bucket: str) -> StorageError | StoragePermanentError:
    code, status = error_code(exc), http_status(exc)
    message = str(exc.response.get("Error", {}).get("Message") or "no details")[:200]
    text = f"S3 {what} failed: HTTP {status} {code}: {message}"
    if code in TRANSIENT_CODES or status in (408, 429) or status >= 500:
        return StorageError(text)
    if code == "NoSuchBucket":
        return StoragePermanentError(f"{text} (bucket {bucket!r} does not exist: check S3_BUCKET, S3_ENDPOINT_URL "
                                     "and S3_REGION)")
    if code in CREDENTIAL_CODES or status in (401, 403):
        return StoragePermanentError(f"{text} ({CREDENTIALS_HINT})")
    if code in REGION_CODES or status == 301:
        return StoragePermanentError(f"{text} (bucket {bucket!r} is in another region: set S3_REGION to it)")
    return StoragePermanentError(text)
