"""File names of a job's PDF for people: the download's Content-Disposition and the stored copy's name.

Built from the job's productId and code. Submits check both against a fixed alphabet, but jobs
recorded before that check may hold anything: every character other than a letter, a digit, `-`,
`_` or `.` becomes `_`, so a name has no directory part, quote, control or bidi character. Non-ASCII
letters stay (the download sends them as RFC 6266 `filename*` with an ASCII `filename` fallback).
"""

from __future__ import annotations

import unicodedata

from store.models import JobRecord

PART_MAX = 80  # characters kept of the code (and of the product id)


def name_part(text: str, limit: int = PART_MAX) -> str:
    """`text` with every character but letters, digits, '-', '_' and '.' replaced by '_', cut to `limit`."""
    normal = unicodedata.normalize("NFC", text)
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in normal)[:limit] or "_"


def download_name(job: JobRecord) -> str:
    """The name a download is saved under: `<productId>_<code>.pdf`."""
    return f"{name_part(job.product_id)}_{name_part(job.code)}.pdf"


def stored_name(job: JobRecord) -> str:
    """The name of the stored copy (e.g. on Google Drive): product, code and the day it was submitted."""
    return f"{name_part(job.product_id)}_{name_part(job.code)}_{job.created_at:%Y%m%d}.pdf"
