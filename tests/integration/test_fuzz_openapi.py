"""The OpenAPI document, fuzzed (issue "Hardening from outside", acceptance): schemathesis
generates requests for every operation but the streams from /openapi.json and sends them to the
app on moto, in process, with a valid `*` key (the in-run plane with a run token of an executing
run). No answer may be a 5xx. A fixed seed and a bounded number of examples per operation keep it
repeatable and short."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed

from tests.support.app import ApiClient, moto_api
from tests.support.in_run import start_run

EXAMPLES_PER_OPERATION = 12


@dataclass
class FuzzWorld:
    api: ApiClient
    run_id: str
    run_token: str
    job_slug: str
    statuses: Counter[int] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def fuzz_world() -> Iterator[FuzzWorld]:
    with moto_api() as api:
        run, sdk = start_run(api, job="fuzzed")
        yield FuzzWorld(api, run.id, sdk.token, "fuzzed")


def _real_ids(case: Any, world: FuzzWorld) -> None:
    """Half the generated path ids (by the parity of their length, so runs repeat) are replaced
    by real ones, so operations get past 404 as well as seeing hostile ids."""
    real = {"runID": world.run_id, "jobID": world.job_slug, "projectID": world.api.project_id}
    for name, value in (case.path_parameters or {}).items():
        if name in real and len(str(value)) % 2 == 0:
            case.path_parameters[name] = real[name]


def _operations(world: FuzzWorld) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.api.http.app)
    schema = schema.exclude(path_regex="/stream")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_generated_request_gets_a_server_error(fuzz_world: FuzzWorld) -> None:
    operations = _operations(fuzz_world)
    assert len(operations) > 60  # every plane is in the document

    for operation in operations:
        _fuzz(operation, fuzz_world)
    successes = sum(count for status, count in fuzz_world.statuses.items() if status < 300)
    assert successes > 100, fuzz_world.statuses  # the fuzzer got past validation, not only refusals


def _fuzz(operation: Any, fuzz_world: FuzzWorld) -> None:
    label = operation.label

    @fixed_seed(20261202)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def no_server_error(case: Any) -> None:
        _real_ids(case, fuzz_world)
        token = fuzz_world.run_token if case.path.startswith("/sdk/") else fuzz_world.api.key
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        fuzz_world.statuses[response.status_code] += 1
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:500]}"

    no_server_error()
