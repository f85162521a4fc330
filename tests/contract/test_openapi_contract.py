"""Schemathesis against the service's own OpenAPI schema, on a live server: no 5xx, no response
that breaks the schema, with a fixed seed so a failure reproduces."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis.errors import Unsatisfiable
from live_server import LiveServer
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.specs.openapi.schemas import OpenApiSchema

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenApiSchema]:
    folder: Path = tmp_path_factory.mktemp("contract")
    # Small limits keep whatever valid training jobs the generator submits short.
    with LiveServer.in_folder(
        folder,
        workers=1,
        DNN_MAX_ITERATIONS="20",
        DNN_MAX_LAYER_WIDTH="16",
        DNN_MAX_HIDDEN_LAYERS="3",
        DNN_MAX_DATASET_CELLS="10000",
    ) as server:
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        schema.config.base_url = server.url
        yield schema


def test_api_honours_its_schema(api_schema: OpenApiSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    calls = 0
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @seed(20261127)
        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(excluded_checks=[positive_data_acceptance])

        try:
            check()
        except Unsatisfiable:
            # No invalid input exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label} ({mode.value} data): {exc}")
    assert not failures, "\n\n".join(failures)
    assert calls >= 500, f"only {calls} cases were generated"
