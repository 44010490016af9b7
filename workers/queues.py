"""Queue names: one place, as notifications-api's QueueNames."""

from __future__ import annotations

HIGH = "high"
NORMAL = "normal"
LOW = "low"
# Every PDF worker listens to these in this order, so high is always taken before normal before low.
PDF_QUEUES: tuple[str, ...] = (HIGH, NORMAL, LOW)
PRIORITIES = frozenset(PDF_QUEUES)
# The webhook sender's delivery queue: a plain Redis list of webhook_deliveries ids (not an RQ
# queue). The relay RPUSHes, `workers.webhook_sender` pops.
WEBHOOK_READY = "pdfjobs:webhooks:ready"

# The dotted paths of job functions are a contract with jobs already in Redis: never rename them.
GENERATE_PDF = "workers.pdf_job.generate_pdf"
