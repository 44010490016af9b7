"""RQ's key names as jobs.queues gives them to our pipelines and Lua scripts: the ones RQ's objects use."""

from __future__ import annotations

from rq import Queue, SimpleWorker, Worker

from jobs.queues import PDF_QUEUES, rq_intermediate_key, rq_queue_key, rq_scheduled_key, rq_workers_key


def test_rq_key_names_are_those_of_rqs_queue_objects(runtime) -> None:
    for name in PDF_QUEUES:
        queue = Queue(name, connection=runtime.redis)
        assert rq_queue_key(name) == queue.key
        assert rq_intermediate_key(name) == queue.intermediate_queue.key
        assert rq_scheduled_key(name) == queue.scheduled_job_registry.key


def test_rq_queue_key_lists_what_rq_enqueued(runtime) -> None:
    queue = Queue("normal", connection=runtime.redis)
    job = queue.enqueue("builtins.len", "abc")
    assert runtime.redis.lrange(rq_queue_key("normal"), 0, -1) == [job.id.encode()]


def test_rq_workers_key_holds_the_workers_rq_counts(runtime) -> None:
    queue = Queue("high", connection=runtime.redis)
    worker = SimpleWorker([queue], connection=runtime.redis)
    worker.register_birth()
    try:
        assert runtime.redis.scard(rq_workers_key("high")) == Worker.count(queue=queue) == 1
    finally:
        worker.register_death()
    assert runtime.redis.scard(rq_workers_key("high")) == 0
