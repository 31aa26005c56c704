"""Concurrent triggers with one idempotency key create exactly one run (spec 8), on DynamoDB Local."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.app import ApiClient

pytestmark = pytest.mark.ddblocal

CALLERS = 20


def test_twenty_concurrent_triggers_with_one_key_create_one_run(local_api: ApiClient, live_url: str) -> None:
    # Given a job, and 20 callers released at the same moment with the same key
    job = local_api.create_job("race")
    barrier = threading.Barrier(CALLERS)

    def trigger(caller: int) -> httpx.Response:
        with httpx.Client(base_url=live_url, timeout=30) as http:
            barrier.wait(timeout=30)  # a barrier nobody else reaches breaks, not hangs
            return http.post(
                f"/v1/jobs/{job['id']}/trigger",
                json={"payload": {"caller": caller}},
                headers={**local_api.auth, "Idempotency-Key": "one-key"},
            )

    # When they all trigger
    with ThreadPoolExecutor(CALLERS) as pool:
        answers = list(pool.map(trigger, range(CALLERS)))

    # Then exactly one run exists, one answer created it, and every answer carries its id
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * (CALLERS - 1) + [201], [a.text for a in answers if a.status_code >= 300]
    run_ids = {answer.json()["id"] for answer in answers}
    assert len(run_ids) == 1
    replayed = [a for a in answers if a.status_code == 200]
    assert all(a.headers.get("Idempotent-Replayed") == "true" for a in replayed)
    listed = local_api.list_runs(job_id=job["id"])
    assert [run["id"] for run in listed.json()] == list(run_ids)
