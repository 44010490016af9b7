"""Queue names: one place, as notifications-api's QueueNames."""

from __future__ import annotations

HIGH = "high"
NORMAL = "normal"
LOW = "low"
# Every PDF worker listens to these in this order, so high is always taken before normal before low.
PDF_QUEUES: tuple[str, ...] = (HIGH, NORMAL, LOW)
WEBHOOKS = "webhooks"
PRIORITIES = frozenset(PDF_QUEUES)

# The dotted paths of job functions are a contract with jobs already in Redis: never rename them.
GENERATE_PDF = "workers.pdf_job.generate_pdf"
DELIVER_WEBHOOK = "workers.webhook_job.deliver_webhook"
