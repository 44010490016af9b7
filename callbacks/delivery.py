"""One webhook delivery attempt, classified as delivered, retry or give up; and the retry delay.

Classification follows notifications-api `app/celery/service_callback_tasks.py`: 2xx delivered;
429, 5xx, timeouts and connection errors retry; 410 stops; other 4xx give up. Redirects are never
followed (a 3xx gives up). n8n Wait-node resume URLs get their own rules, see `_classify_n8n`.
"""

from __future__ import annotations

import codecs
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Literal
from urllib.parse import urlsplit

from requests.utils import get_encoding_from_headers
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from callbacks.transport import CallbackSession, callback_session
from callbacks.url_policy import CallbackHostUnresolvedError, CallbackUrlError

logger = logging.getLogger(__name__)

Outcome = Literal["delivered", "retry", "give_up"]
DELIVERED: Outcome = "delivered"
RETRY: Outcome = "retry"
GIVE_UP: Outcome = "give_up"

DEFAULT_TIMEOUT = 15.0
EXCERPT_CHARS = 500
_READ_LIMIT = 4096  # bytes of the response body read at most (the rest is discarded)
N8N_WAITING_PATH = "/webhook-waiting/"
N8N_RUNNING_RETRY_AFTER = 5.0

# n8n answers on /webhook-waiting/<executionId> (packages/cli/src/webhooks/waiting-webhooks.ts,
# WaitingWebhooks.executeWebhook, n8n 1.x-2.x):
#   409 `The execution "<id>" is running already.`     execution.status == "running": it has not
#                                                       reached the Wait node yet (or is busy after
#                                                       a resume) -> retry shortly
#   409 `The execution "<id> has finished already.`     (sic, one quote) it was resumed and ended
#   409 `The execution "<id>" has finished with error.` it ended with an error
#   404 `The execution "<id>" does not exist.`
#   404 `The workflow for execution "<id>" does not contain a waiting webhook with a matching
#        path/method.`                                  e.g. the Wait node accepts GET (its default)
# Errors are sent as JSON {"code": 409, "message": "..."}. Unreleased n8n PR #27078 would also
# answer 409 for `ExecutionAlreadyResumingError` ("Execution is already being resumed by another
# process"): like every other 409 it counts as delivered.
_N8N_STILL_RUNNING = "is running already"
N8N_NOT_FOUND_HINT = (
    "n8n resume URL not found: the execution is unknown or finished, or the Wait node is not set to "
    "accept POST (its HTTP Method defaults to GET)"
)
N8N_ALREADY_RESUMED = "n8n execution already resumed; treated as delivered"


@dataclass(frozen=True)
class AttemptResult:
    """What one delivery attempt did: its outcome and what to record about it."""

    outcome: Outcome
    status_code: int | None
    duration_ms: int
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Verdict:
    """How an answer or a failure is classified."""

    outcome: Outcome
    error: str | None = None
    retry_after: float | None = None


def deliver(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    allowed_hosts: Sequence[str],
    session: CallbackSession | None = None,
) -> AttemptResult:
    """POST the body once to the URL, after checking it against the policy, and classify the answer.

    Args:
        session: a `callback_session(timeout, allowed_hosts)` to reuse (keep-alive); None opens one
            for this attempt. Either way the address is checked and pinned on every request.
    """
    started = time.monotonic()
    try:
        if session is None:  # the session parses the URL as the submit check did, then checks its addresses
            with callback_session(timeout, allowed_hosts) as own:
                status, response_headers, excerpt = _post(own, url, body, headers, timeout)
        else:
            status, response_headers, excerpt = _post(session, url, body, headers, timeout)
    except CallbackHostUnresolvedError as exc:
        verdict, status, excerpt = Verdict(RETRY, str(exc)), None, None
    except CallbackUrlError as exc:
        verdict, status, excerpt = Verdict(GIVE_UP, str(exc)), None, None
    except (HTTPError, ValueError) as exc:  # ValueError: e.g. a header value http.client refuses
        verdict, status, excerpt = _request_failure(exc, url, timeout), None, None
    else:
        verdict = classify_response(url, status, response_headers, excerpt)
    result = AttemptResult(
        outcome=verdict.outcome,
        status_code=status,
        duration_ms=round((time.monotonic() - started) * 1000),
        error=verdict.error,
        response_excerpt=excerpt,
        retry_after=verdict.retry_after,
    )
    _log_attempt(url, result)
    return result


def _post(
    session: CallbackSession, url: str, body: bytes, headers: Mapping[str, str], timeout: float
) -> tuple[int, Mapping[str, str], str | None]:
    """Send the request and return status, headers (case-insensitive) and the start of the body."""
    response = session.post(url, body, {**headers, "Content-Type": "application/json"}, timeout)
    try:
        return response.status, response.headers, _read_excerpt(response)
    finally:
        response.close()  # closes the connection unless reading the body to its end released it
        response.release_conn()  # a closed connection's place goes back to the pool (it reconnects)


def _read_excerpt(response: BaseHTTPResponse) -> str | None:
    """The first EXCERPT_CHARS characters of the body, reading at most _READ_LIMIT bytes.

    A body read to its end gives the connection back to the session's pool (keep-alive); a longer
    one is cut off and its connection closed.
    """
    try:
        raw = response.read(_READ_LIMIT, decode_content=True) or b""
    except (HTTPError, OSError):
        return None
    return raw.decode(_body_encoding(response.headers), errors="replace")[:EXCERPT_CHARS] or None


def _body_encoding(headers: Mapping[str, str]) -> str:
    """The body's charset as requests chose it (Content-Type charset, ISO-8859-1 for text, else UTF-8);
    UTF-8 when Python does not know the charset."""
    charset = get_encoding_from_headers(headers) or "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:  # requests let this escape (an internal error): read it as UTF-8
        return "utf-8"


def classify_response(url: str, status: int, headers: Mapping[str, str], excerpt: str | None) -> Verdict:
    """Decide what an HTTP answer means for the delivery."""
    if N8N_WAITING_PATH in urlsplit(url).path and status in (HTTPStatus.CONFLICT, HTTPStatus.NOT_FOUND):
        return _classify_n8n(status, headers, excerpt)
    described = _describe_status(status)
    if 200 <= status < 300:
        return Verdict(DELIVERED)
    if 300 <= status < 400:
        location = headers.get("Location", "")[:200]
        return Verdict(GIVE_UP, f"redirect not followed: receiver answered {described} to {location or '?'}")
    if status == HTTPStatus.GONE:
        return Verdict(GIVE_UP, "receiver answered 410 Gone: stopped")
    if status == HTTPStatus.TOO_MANY_REQUESTS or status >= 500:
        return Verdict(RETRY, f"receiver answered {described}", parse_retry_after(headers.get("Retry-After")))
    return Verdict(GIVE_UP, f"receiver answered {described}; not retried")


def _classify_n8n(status: int, headers: Mapping[str, str], excerpt: str | None) -> Verdict:
    """n8n Wait-node resume URL: 409 running -> retry soon; other 409 -> delivered; 404 -> give up."""
    message = _n8n_message(excerpt)
    if status == HTTPStatus.NOT_FOUND:
        return Verdict(GIVE_UP, f"{N8N_NOT_FOUND_HINT} (n8n said: {message})" if message else N8N_NOT_FOUND_HINT)
    if message and _N8N_STILL_RUNNING in message.lower():
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return Verdict(
            RETRY,
            f"n8n execution is still running and not yet waiting for this call (n8n said: {message})",
            N8N_RUNNING_RETRY_AFTER if retry_after is None else retry_after,
        )
    return Verdict(DELIVERED, f"{N8N_ALREADY_RESUMED} (n8n said: {message})" if message else N8N_ALREADY_RESUMED)


def _n8n_message(excerpt: str | None) -> str | None:
    """The `message` of n8n's JSON error body, else the raw text."""
    if not excerpt:
        return None
    try:
        payload = json.loads(excerpt)
    except ValueError:
        return excerpt.strip()[:200]
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        return payload["message"][:200]
    return excerpt.strip()[:200]


def _describe_status(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _request_failure(exc: HTTPError | ValueError, url: str, timeout: float) -> Verdict:
    """Classify an exception raised by urllib3; messages name the host, never the full URL."""
    host = urlsplit(url).netloc.rpartition("@")[2]
    if isinstance(exc, MaxRetryError) and exc.reason is not None:  # not raised with retries=False
        exc = exc.reason
    if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
        return Verdict(RETRY, f"timed out after {timeout:g} s connecting to {host}")
    if isinstance(exc, ReadTimeoutError):
        return Verdict(RETRY, f"receiver {host} did not answer within {timeout:g} s (timeout)")
    if isinstance(exc, LocationValueError):
        return Verdict(GIVE_UP, f"callback URL is not usable: {_root_cause(exc, 'InvalidURL')}")
    if isinstance(exc, SSLError):
        return Verdict(RETRY, f"TLS error talking to {host}: {_root_cause(exc, 'SSLError')}")
    if isinstance(exc, NewConnectionError | ProtocolError | ClosedPoolError):
        return Verdict(RETRY, f"could not connect to {host}: {_root_cause(exc, 'ConnectionError')}")
    return Verdict(RETRY, f"request to {host} failed: {_root_cause(exc)}")


def _root_cause(exc: BaseException, fallback: str | None = None) -> str:
    """The innermost OS-level reason of a urllib3 error (without the URL), else `fallback` or its type.

    The fallbacks are the names these messages ended with when requests raised the errors.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException) and current.args and isinstance(current.args[0], BaseException):
            nested = current.args[0]
        current = nested if isinstance(nested, BaseException) else current.__cause__ or current.__context__
    return fallback or type(exc).__name__


def _log_attempt(url: str, result: AttemptResult) -> None:
    # Debug only: the sender logs every recorded attempt (with its delivery and job) at INFO.
    host = urlsplit(url).hostname or "?"
    logger.debug(
        "callback attempt host=%s status=%s outcome=%s duration_ms=%s error=%s",
        host,
        result.status_code,
        result.outcome,
        result.duration_ms,
        result.error,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP date), or None if absent/invalid."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until(text, now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds_until(http_date: str, now: float | None) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current) if when.tzinfo else None
