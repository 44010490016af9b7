"""Rate limits: requests per client (flask-limiter on the service's Redis, RATE_LIMIT or the client's own
`rate_limit`), failed authentications per source address (AUTH_FAILURE_LIMIT), and the 429 answers.

Every limit fails open: while Redis does not answer, requests are served unlimited (submits still record
their job in SQL first) and the log says so once per LOG_EVERY seconds, not once per request.

A key whose client was refused is refused again by the same process, without asking Redis or SQL, until
the limit lets one more request through, and every refusal is held RATE_LIMIT_PAUSE (at most its
Retry-After) before it is answered: a client that keeps sending over its limit costs little more than a
parsed request and, looping on its answers, sends one request per pause and connection, so the other
clients keep their latency.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

from flask import Flask, current_app, g, jsonify
from flask.typing import ResponseReturnValue
from flask.wrappers import Response
from flask_limiter import ApplicationLimit, Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many
from redis.exceptions import RedisError

from api.errors import ApiError
from api.extension import runtime
from config import ClientConfig
from jobs.runtime import Runtime, redis_url
from jobs.submit import ClientQuotaError

log = logging.getLogger(__name__)

EXTENSION = "pdfjobs_limits"
KEY_PREFIX = "pdfjobs"
AUTH_FAILURES = "auth-failures"
RECHECK_SECONDS = 1.0  # after a Redis error, limits are skipped this long before Redis is asked again
LOG_EVERY = 60.0  # seconds between two "limits are off" warnings of one process
MAX_BLOCKS = 10_000  # remembered refusals per process before expired ones are dropped


class RedisOutage:
    """Per process: whether Redis failed just now, and the once-per-interval warning that says so."""

    def __init__(self, recheck: float = RECHECK_SECONDS, log_every: float = LOG_EVERY) -> None:
        self.recheck, self.log_every = recheck, log_every
        self._until = 0.0
        self._next_log = 0.0
        self._unlogged = 0
        self._down_since: float | None = None

    def down(self) -> bool:
        """Whether Redis failed less than `recheck` seconds ago (then nobody asks it again yet)."""
        return time.monotonic() < self._until

    def failed(self, part: str, exc: BaseException) -> None:
        """Note a Redis error of `part` (rate limits, client version...): limits fail open for a while."""
        now = time.monotonic()
        self._until = now + self.recheck
        self._down_since = self._down_since or now
        self._unlogged += 1
        if now >= self._next_log:
            log.warning("event=redis_unavailable fail_open=true part=%s errors_since_last_line=%d reason=%r "
                        "effect=requests_not_rate_limited,client_changes_read_from_sql", part, self._unlogged,
                        f"{type(exc).__name__}: {exc}")
            self._next_log, self._unlogged = now + self.log_every, 0

    def answered(self) -> None:
        """Redis answered: say once that limits apply again."""
        if self._down_since is not None:
            log.warning("event=redis_available_again rate_limits=on after_s=%.1f",
                        time.monotonic() - self._down_since)
            self._down_since, self._next_log, self._unlogged = None, 0.0, 0


@dataclass(frozen=True)
class Block:
    """A client this process saw over its limit: refused until `until` (epoch seconds)."""

    client: ClientConfig
    until: float
    limit: RateLimitItem


@dataclass
class Limits:
    """What the app keeps in app.extensions[EXTENSION]."""

    limiter: Limiter
    outage: RedisOutage
    auth_failures: list[RateLimitItem]
    blocks: dict[str, Block] = field(default_factory=dict)  # by key hash


def storage_uri(url: str) -> str:
    """The `limits` storage URI of a redis-py URL (unix:// is redis+unix:// there). With the runtime's pool
    passed as well (limiter_storage) it only picks limits' RedisStorage: any other scheme (a Sentinel URL,
    whose pool finds the master itself) is given as plain redis://."""
    if url.startswith("unix://"):
        return "redis+unix://" + url.removeprefix("unix://")
    return url if url.startswith(("redis://", "rediss://")) else "redis://"


def limiter_storage(rt: Runtime) -> tuple[str, dict[str, object]]:
    """Storage URI and options of the limits: the service's Redis through the runtime's own connection pool
    (its timeouts, retry and, with Sentinel, its master discovery); the one place that builds them."""
    return storage_uri(redis_url(rt.settings)), {"connection_pool": rt.redis.connection_pool}


def install_limits(app: Flask, rt: Runtime) -> None:
    """Rate-limit every authenticated request per client; 429 answers with Retry-After and RateLimit-* headers."""
    uri, options = limiter_storage(rt)
    limiter = Limiter(
        key_func=lambda: g.client.name,
        application_limits=[ApplicationLimit(_client_rate, scope="requests")],
        storage_uri=uri,
        storage_options=options,
        strategy="sliding-window-counter",  # no double burst at window edges, O(1) Redis work per request
        swallow_errors=True,  # fail open; _QuietLimiterLog turns its per-request traces into RedisOutage notes
        key_prefix=KEY_PREFIX,
    )
    limiter.request_filter(_unlimited)
    limiter.init_app(app)
    app.extensions[EXTENSION] = Limits(limiter, RedisOutage(), parse_many(rt.settings.auth_failure_limit))
    app.after_request(_rate_headers)
    app.register_error_handler(RateLimitExceeded, _rate_limited)
    app.register_error_handler(_Refused, lambda refused: refused.answer)
    app.register_error_handler(ClientQuotaError, _quota_exceeded)
    logging.getLogger("flask-limiter").addFilter(_LIMITER_LOG)


def limits() -> Limits:
    """The limits of the current app."""
    return current_app.extensions[EXTENSION]


def outage() -> RedisOutage:
    """The Redis outage tracker of the current app (auth's client-version check reports to it too)."""
    return limits().outage


def _client_rate() -> str:
    return g.client.rate_limit or runtime().settings.rate_limit


def _unlimited() -> bool:
    """No client (public endpoint, or the view answers 401), or Redis just failed: no rate limit."""
    return g.get("client") is None or outage().down()


def _rate_headers(response: Response) -> Response:
    """RateLimit-Limit, -Remaining and -Reset (seconds) on a 429 of the limiter (other answers go without:
    their figures would cost every request one more Redis round trip)."""
    if response.status_code != 429:
        return response
    current = limits().limiter.current_limit
    if current is None or outage().down():
        return response
    try:
        reset_at, remaining = current.window
    except RedisError as exc:
        outage().failed("rate limit headers", exc)
        return response
    reset = max(0, math.ceil(reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(remaining)
    response.headers["RateLimit-Reset"] = str(reset)
    if "Retry-After" not in response.headers:
        response.headers["Retry-After"] = str(max(1, reset))
    return response


def _rate_limited(exc: RateLimitExceeded) -> ResponseReturnValue:
    """429 for a request over its client's limit; the process remembers the block until the limit's reset."""
    client, state = g.client, limits()
    current = state.limiter.current_limit
    try:
        reset_at = current.window[0] if current is not None else time.time() + 1
    except RedisError as exc_redis:
        state.outage.failed("rate limit headers", exc_redis)
        reset_at = time.time() + 1
    if g.get("key_digest") and current is not None:
        if len(state.blocks) > MAX_BLOCKS:
            _prune(state.blocks)
        state.blocks[g.key_digest] = Block(client, reset_at, current.limit)
    return _too_many(client, exc.limit.limit, reset_at, remaining=None)


def refuse_if_blocked(digest: str) -> None:
    """Raise the 429 at once when this process refused the key's client and its limit has not reset yet."""
    state = limits()
    block = state.blocks.get(digest)
    if block is None:
        return
    if block.until <= time.time() or state.outage.down():
        state.blocks.pop(digest, None)
        return
    g.client = block.client  # for the access log
    raise _Refused(_too_many(block.client, block.limit, block.until, remaining=0))


class _Refused(Exception):
    """Carries a ready 429 answer out of a before_request function."""

    def __init__(self, answer: ResponseReturnValue) -> None:
        super().__init__("rate limited")
        self.answer = answer


def hold_refusal(retry_after: float) -> None:
    """Hold a refused request for RATE_LIMIT_PAUSE, never longer than its Retry-After (seconds): a gevent sleep
    costs no CPU, a client that loops on 429 then sends one request per pause and connection, and the held
    answers go out spread as their requests came (all of them waking at the limit's reset would be a herd)."""
    pause = min(runtime().settings.rate_limit_pause, retry_after)
    if pause > 0:
        time.sleep(pause)


def _too_many(client: ClientConfig, limit: RateLimitItem, reset_at: float,
              remaining: int | None) -> ResponseReturnValue:
    hold_refusal(max(1, math.ceil(reset_at - time.time())))
    wait = max(1, math.ceil(reset_at - time.time()))
    error = ApiError(
        f"Client {client.name!r} made more requests than its limit of {limit}; slow down and retry after "
        f"{wait} s (the operator sets RATE_LIMIT, or the client's own rate_limit).",
        status_code=429, error="rate_limited")
    headers = {"Retry-After": str(wait)}
    if remaining is not None:  # otherwise _rate_headers adds them from the limiter's own figures
        headers |= {"RateLimit-Limit": str(limit.amount), "RateLimit-Remaining": str(remaining),
                    "RateLimit-Reset": str(wait)}
    return jsonify(error.to_dict()), 429, headers


def _prune(blocks: dict[str, Block]) -> None:
    now = time.time()
    for digest in [digest for digest, block in blocks.items() if block.until <= now]:
        del blocks[digest]


def _quota_exceeded(exc: ClientQuotaError) -> ResponseReturnValue:
    hold_refusal(exc.retry_after)
    error = ApiError(
        f"Client {exc.client_name!r} has {exc.waiting} jobs queued or scheduled, its maximum is {exc.limit}; "
        f"retry after {exc.retry_after} s, when some have started (the operator sets MAX_QUEUED_PER_CLIENT, "
        "or the client's own max_queued).",
        status_code=429, error="client_queue_full", headers={"Retry-After": str(exc.retry_after)})
    return jsonify(error.to_dict()), 429, error.headers


def auth_refusal(source: str) -> int | None:
    """Seconds `source` must wait when it is over AUTH_FAILURE_LIMIT, else None (also while Redis is down)."""
    state = limits()
    if state.outage.down():
        return None
    strategy = state.limiter.limiter
    try:
        over = [item for item in state.auth_failures if not strategy.test(item, KEY_PREFIX, AUTH_FAILURES, source)]
        if not over:
            return None
        resets = [strategy.get_window_stats(item, KEY_PREFIX, AUTH_FAILURES, source)[0] for item in over]
    except RedisError as exc:
        state.outage.failed("failed-auth limit", exc)
        return None
    return max(1, math.ceil(max(resets) - time.time()))


def count_auth_failure(source: str) -> None:
    """Count one failed authentication of `source` against AUTH_FAILURE_LIMIT."""
    state = limits()
    if state.outage.down():
        return
    try:
        for item in state.auth_failures:
            state.limiter.limiter.hit(item, KEY_PREFIX, AUTH_FAILURES, source)
    except RedisError as exc:
        state.outage.failed("failed-auth limit", exc)


class _QuietLimiterLog(logging.Filter):
    """flask-limiter logs a traceback per request while its storage fails, and a line per refusal: the
    first become RedisOutage notes (one warning per interval), the second are in the access log already."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            try:
                outage().failed("rate limits", record.exc_info[1])
            except RuntimeError:  # outside an app context: let the record through
                return True
            return False
        return record.levelno >= logging.WARNING


_LIMITER_LOG = _QuietLimiterLog()
