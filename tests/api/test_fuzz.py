"""schemathesis from the app's own /api/openapi.json: valid and invalid requests to every operation, no 5xx.

The document has each product's submit schema, so valid submits are accepted jobs (202) for every
product; invalid ones must be 4xx. A 5xx fails the test and prints the request as a curl command.
The run is small and repeatable (derandomized, about 180 requests); `make fuzz` runs the schemathesis
CLI with every phase and a fresh seed against the real service (tests/e2e/fuzz_run.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import auth

pytestmark = pytest.mark.sqlite_only  # not about SQL: SQLite only (tests/conftest.py)

# (valid, invalid) examples per operation: mostly submits (each accepted sync submit waits SYNC_TIMEOUT,
# 1 s, for a PDF no worker renders here); invalid examples cost schemathesis the most time to make.
EXAMPLES = {"/api/reports/generate-async": (80, 25), "/api/reports/generate": (6, 6)}
OTHERS = (5, 3)


@pytest.fixture
def fuzz_app(runtime):  # noqa: ANN001, ANN201
    """The app with room for every generated job (the queue limit's 503 is not under test)."""
    from api import create_app

    runtime.settings = runtime.settings.with_changes(max_queue_size=1_000_000, sync_timeout=1,
                                                     job_watch_interval=0.2)
    return create_app(runtime=runtime)


def test_fuzz_every_operation_sees_no_server_error_and_accepts_every_product(fuzz_app) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    products = set(schema.raw_schema["components"]["schemas"]["SubmitRequest"]["discriminator"]["mapping"])
    accepted: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in zip((GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
                                  EXAMPLES.get(operation.path, OTHERS), strict=True):
            try:
                _run(operation.as_strategy(mode, headers=auth()), examples, _check(accepted, statuses))
            except Unsatisfiable:  # nothing to make invalid: an operation without parameters or body
                assert mode == GenerationMode.NEGATIVE, operation.label
    errors = sum(count for status, count in statuses.items() if status >= 500)
    print(f"fuzz: {sum(statuses.values())} requests, statuses {dict(sorted(statuses.items()))}, "  # noqa: T201
          f"accepted jobs per product {dict(accepted)}, {errors} server errors")
    assert not [status for status in statuses if status >= 500]
    assert set(accepted) == products, (accepted, products)


def _check(accepted: Counter[str], statuses: Counter[int]) -> Callable:
    def check(case) -> None:  # noqa: ANN001
        response = case.call()
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            pytest.fail(f"{response.status_code} for: {case.as_curl_command()}\n{response.text[:500]}")
        if response.status_code == 202 and isinstance(case.body, dict) and case.path.startswith("/api/reports"):
            accepted[case.body["productId"]] += 1

    return check


def _run(strategy, examples: int, check: Callable) -> None:  # noqa: ANN001
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case) -> None:  # noqa: ANN001
        check(case)

    run()
