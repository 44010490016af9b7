"""Queue names: one place, as notifications-api's QueueNames."""

from __future__ import annotations

from dataclasses import dataclass

from rq import Queue
from rq.intermediate_queue import IntermediateQueue
from rq.registry import ScheduledJobRegistry
from rq.worker_registration import WORKERS_BY_QUEUE_KEY

HIGH = "high"
NORMAL = "normal"
LOW = "low"
# Every PDF worker listens to these in this order, so high is always taken before normal before low.
PDF_QUEUES: tuple[str, ...] = (HIGH, NORMAL, LOW)
PRIORITIES = frozenset(PDF_QUEUES)
# The webhook sender's delivery queue: a plain Redis list of webhook_deliveries ids (not an RQ
# queue). The relay RPUSHes, `workers.webhook_sender` pops. An entry is "<id>" (the sender claims the
# next attempt) or "<id>:<attempt>" (that attempt was claimed when the row was written: see
# `jobs.outcome`).
WEBHOOK_READY = "pdfjobs:webhooks:ready"


@dataclass(frozen=True)
class ReadyEntry:
    """One entry of WEBHOOK_READY: a delivery id, and the attempt already claimed for it, if any."""

    delivery_id: int
    claimed: int | None = None

    def encode(self) -> str:
        """The entry as it stands on the list."""
        return str(self.delivery_id) if self.claimed is None else f"{self.delivery_id}:{self.claimed}"

    @classmethod
    def decode(cls, raw: bytes | str) -> ReadyEntry:
        """Parse an entry; raises ValueError when it is neither "<id>" nor "<id>:<attempt>"."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        delivery_id, colon, claimed = text.partition(":")
        return cls(int(delivery_id), int(claimed) if colon else None)


# RQ's Redis key names, from RQ's public API, for pipelines and Lua scripts that read RQ's data in
# the same round trip as ours (tests/jobs/test_queues.py pins each against RQ's own objects).


def rq_queue_key(name: str) -> str:
    """The Redis list in which RQ keeps the ids of queue `name`'s jobs (`Queue(name).key`, which RQ
    builds from this public class attribute; a Queue object needs a connection, a key name does not)."""
    return Queue.redis_queue_namespace_prefix + name


def rq_intermediate_key(name: str) -> str:
    """The Redis list in which RQ parks a job of queue `name` between its pop and its start."""
    return IntermediateQueue.get_intermediate_queue_key(rq_queue_key(name))


def rq_scheduled_key(name: str) -> str:
    """The sorted set of queue `name`'s jobs waiting for a time (RQ's delayed retries)."""
    return ScheduledJobRegistry(name).key


def rq_workers_key(name: str) -> str:
    """The Redis set of the workers listening to queue `name` (what `Worker.count(queue=...)` counts)."""
    return WORKERS_BY_QUEUE_KEY % name


# The dotted paths of job functions are a contract with jobs already in Redis: never rename them.
GENERATE_PDF = "workers.pdf_job.generate_pdf"
