"""Live progress of running jobs.

The PDF job publishes its current step to its RQ job meta (one Redis write) from the job lease's
thread every META_PROGRESS_INTERVAL seconds when it changed, and to the SQL row at most every
SQL_PROGRESS_INTERVAL seconds: a report renders in tens of milliseconds, so for most jobs nothing but
"started" and the final state is written, and a step that lasts (an upload, a big form) still shows
within a fraction of a second. Readers of a processing job overlay the meta on the SQL row.
"""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import RedisError
from rq.job import Job

from jobs.runtime import Runtime
from store.models import PROCESSING, JobRecord

log = logging.getLogger(__name__)

# Seconds between two progress writes to the RQ meta, and to the SQL row, of one running job.
META_PROGRESS_INTERVAL = 0.2
SQL_PROGRESS_INTERVAL = 1.0


def live_progress(rt: Runtime, job: JobRecord) -> dict[str, Any]:
    """{"progress", "phase"} of a processing job from its RQ meta; {} when not processing or unknown."""
    if job.status != PROCESSING:
        return {}
    try:
        meta = Job(job.job_id, connection=rt.redis).get_meta()
    except (RedisError, ValueError, TypeError) as exc:  # no meta, or meta we cannot read: SQL is enough
        log.debug("job=%s event=live_progress_unavailable reason=%r", job.job_id, str(exc))
        return {}
    progress = meta.get("progress")
    if not isinstance(progress, int) or progress < (job.progress or 0):
        return {}
    return {"progress": progress, "phase": meta.get("phase", job.phase)}
