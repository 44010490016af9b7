"""Queue names: one place, as notifications-api's QueueNames."""

from __future__ import annotations

from rq import Queue
from rq.intermediate_queue import IntermediateQueue

HIGH = "high"
NORMAL = "normal"
LOW = "low"
# Every PDF worker listens to these in this order, so high is always taken before normal before low.
PDF_QUEUES: tuple[str, ...] = (HIGH, NORMAL, LOW)
PRIORITIES = frozenset(PDF_QUEUES)
# The webhook sender's delivery queue: a plain Redis list of webhook_deliveries ids (not an RQ
# queue). The relay RPUSHes, `workers.webhook_sender` pops.
WEBHOOK_READY = "pdfjobs:webhooks:ready"



def rq_queue_key(name: str) -> str:
    """The Redis list in which RQ keeps the ids of queue `name`'s jobs."""
    return Queue.redis_queue_namespace_prefix + name


def rq_intermediate_key(name: str) -> str:
    """The Redis list in which RQ parks a job of queue `name` between its pop and its start."""
    return IntermediateQueue.get_intermediate_queue_key(rq_queue_key(name))


# The dotted paths of job functions are a contract with jobs already in Redis: never rename them.
GENERATE_PDF = "workers.pdf_job.generate_pdf"
