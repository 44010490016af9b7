"""api.warm_up: each gunicorn worker loads its templates and connections before its first request, and starts
even when SQL and Redis are down (the requests then answer 503)."""

from __future__ import annotations

import logging

import pytest

from api import warm_up
from jobs.runtime import Runtime
from tests.conftest import take_database_down, unreachable_redis


def test_templates_are_loaded_before_the_first_request(app, runtime: Runtime) -> None:  # noqa: ANN001
    assert "templates" not in runtime.__dict__  # built at first use otherwise (functools.cached_property)
    warm_up(app)
    assert "templates" in runtime.__dict__
    assert "minatBakatUmum" in [template.product_id for template in runtime.templates.all()]


def test_a_worker_comes_up_while_sql_and_redis_are_down(app, runtime: Runtime,  # noqa: ANN001
                                                        caplog: pytest.LogCaptureFixture) -> None:
    take_database_down(runtime)
    runtime.redis = unreachable_redis(runtime.settings)
    with caplog.at_level(logging.WARNING):
        warm_up(app)
    events = [record.getMessage().split()[0] for record in caplog.records]
    assert "event=sql_unavailable_at_start" in events and "event=redis_unavailable_at_start" in events
    assert "templates" in runtime.__dict__
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["status"] == "not_ready"
