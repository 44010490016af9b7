"""What a failed job's status and failure webhook say: what failed and what to do, no server internals.

Clients read `error`; operators read the worker log, which keeps the exception's type and text with
the job id (workers/pdf_job.py). So:
- errors written for the client (bad data, a missing source document) and the storage layer's own
  messages (which name the step and often the fix) are passed on;
- anything else is described by its kind: a disk or network error with its OS reason, an
  unexpected error, a MongoDB that cannot be reached;
- and from every message, file system paths, URLs and object reprs are cut out: messages of our
  own embed an OSError's text, which names the file ("cannot write /srv/...: No space left").
"""

from __future__ import annotations

import re

from jobs.errors import PermanentJobError
from render import RenderError
from storage import StorageError, StoragePermanentError
from store.mongo import MongoDocumentMissingError, MongoOperationError, MongoUnavailableError

LOGGED = "the worker log has the details under this job's id"
PASSED_ON = (PermanentJobError, RenderError, MongoDocumentMissingError, StorageError, StoragePermanentError)

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_POSIX_PATH = re.compile(r"(?<![\w.~-])/[^\s'\"()\[\],;:]+")  # absolute: a "/" that no word, dot or ~ precedes
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"]*")
_ERRNO = re.compile(r"\[Errno -?\d+\] ")
_OBJECT = re.compile(r"<[^<>]* at 0x[0-9A-Fa-f]+>")


def client_text(exc: BaseException) -> str:
    """What went wrong, for the job's status and failure webhook."""
    if isinstance(exc, PASSED_ON):
        text = str(exc) or type(exc).__name__
    elif isinstance(exc, MongoUnavailableError):
        text = f"reading the report data failed: MongoDB could not be reached; retry the job later ({LOGGED})"
    elif isinstance(exc, MongoOperationError):
        text = f"reading the report data failed: MongoDB refused it, a setup problem on the server ({LOGGED})"
    elif isinstance(exc, OSError):
        reason = exc.strerror or "input/output error"
        text = f"a disk or network operation on the server failed ({reason}); retry the job later ({LOGGED})"
    else:
        text = f"an unexpected error occurred while making the PDF; retry the job later ({LOGGED})"
    return scrub(text)


def scrub(text: str) -> str:
    """`text` without file system paths, URLs, errno prefixes and object reprs."""
    for pattern, replacement in ((_URL, "(url)"), (_WINDOWS_PATH, "(server path)"), (_POSIX_PATH, "(server path)"),
                                 (_ERRNO, ""), (_OBJECT, "(object)")):
        text = pattern.sub(replacement, text)
    return text


def log_detail(exc: BaseException) -> str:
    """The exception as the log keeps it: type and full text."""
    return f"{type(exc).__name__}: {exc}"
