"""Structured logging set-up, called by each entry point (never at import time)."""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
from typing import TextIO

# Seconds an INFO line may wait in the process before it is written (WARNING and above never wait).
FLUSH_EVERY = 0.2
_BUFFER_BYTES = 1 << 16


class UtcFormatter(logging.Formatter):
    """`ts=... level=... logger=... msg` lines with UTC ISO 8601 timestamps."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class BatchedStreamHandler(logging.StreamHandler):
    """A StreamHandler that writes lines below WARNING in batches, at most FLUSH_EVERY s late.

    Every program's output goes through supervisord, which wakes up, reads and writes again for each
    write it sees. At INFO a job logs about five lines across the API, the worker and the webhook
    sender; written one by one they cost a measurable share of end-to-end throughput (bench/README.md).
    Here a line goes into the stream's buffer and a daemon thread flushes it FLUSH_EVERY s after the
    first unwritten line; WARNING and above flush at once (with what is before them, so the order
    holds), and so do exit (logging.shutdown) and fork. A SIGKILL loses at most FLUSH_EVERY s of INFO lines.
    """

    def __init__(self, stream: TextIO, flush_every: float | None = None) -> None:
        super().__init__(stream)
        self.flush_every = FLUSH_EVERY if flush_every is None else flush_every
        self._pending = threading.Event()
        self._flusher_pid: int | None = None
        os.register_at_fork(before=self.flush)  # a child must not write the parent's buffered lines again

    def emit(self, record: logging.LogRecord) -> None:
        """Buffer the formatted line; flush now when it is a WARNING or worse."""
        try:
            self.stream.write(self.format(record) + self.terminator)
            if record.levelno >= logging.WARNING:
                self.stream.flush()
            else:
                self._schedule_flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own convention: report on stderr, never raise
            self.handleError(record)

    def _schedule_flush(self) -> None:
        if self._flusher_pid != os.getpid():  # first line in this process (or in a forked child)
            self._flusher_pid = os.getpid()
            threading.Thread(target=self._flush_forever, name="log-flush", daemon=True).start()
        self._pending.set()

    def _flush_forever(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.flush_every)
            self._pending.clear()  # before the flush: a line written meanwhile sets it again
            self.flush()


def buffered_stderr() -> TextIO:
    """A block-buffered text stream on file descriptor 2 (sys.stderr flushes at every newline)."""
    try:
        descriptor = sys.stderr.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):  # replaced stderr (a test's capture)
        return sys.stderr
    return open(  # noqa: SIM115 - lives as long as the process
        descriptor, "w", buffering=_BUFFER_BYTES, encoding="utf-8", errors="backslashreplace", closefd=False
    )


def setup_logging(level: str = "INFO", process: str = "app") -> None:
    """Send key=value log lines to stderr; `process` names the program in every line."""
    handler = BatchedStreamHandler(buffered_stderr())
    handler.setFormatter(
        UtcFormatter(f"ts=%(asctime)s level=%(levelname)s process={process} logger=%(name)s %(message)s")
    )
    # Our lines never show a record's thread or process: the logging HOWTO's "Optimization" switches
    # spare computing them for every record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug and urllib3 log every request at INFO; keep them for debugging only.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
