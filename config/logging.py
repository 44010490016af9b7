"""Structured logging set-up, called by each entry point (never at import time)."""

from __future__ import annotations

import logging
import sys
import time


class UtcFormatter(logging.Formatter):
    """`ts=... level=... logger=... msg` lines with UTC ISO 8601 timestamps."""

    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def setup_logging(level: str = "INFO", process: str = "app") -> None:
    """Send key=value log lines to stderr; `process` names the program in every line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        UtcFormatter(f"ts=%(asctime)s level=%(levelname)s process={process} logger=%(name)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Werkzeug and urllib3 log every request at INFO; keep them for debugging only.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
