"""A throttled or failing store gives 503 with Retry-After, never a 500, and leaves nothing half-written."""

from typing import Any

from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from tests.support.app import ApiClient


class ThrottlingClient:
    """Wraps a DynamoDB client; the named operations fail with a throttling error."""

    def __init__(self, client: Any, failing: set[str]) -> None:
        self._client = client
        self.failing = failing

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self.failing:
            return attribute

        def throttled(**_: Any) -> Any:
            error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
            raise ClientError(error, name)

        return throttled


def test_reading_a_run_from_a_throttled_store_is_503_with_retry_after(api: ApiClient) -> None:
    run = api.run()
    real = api.services.table.client
    api.services.table.client = ThrottlingClient(real, {"batch_get_item"})

    response = api.http.get(f"/v1/runs/{run['id']}", headers=api.auth)

    assert response.status_code == 503
    assert response.json()["code"] == "service_unavailable"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Request-Id"] == response.json()["request_id"]


def test_a_trigger_whose_write_is_throttled_is_503_and_creates_no_run(api: ApiClient) -> None:
    job = api.create_job("throttled")
    real = api.services.table.client
    api.services.table.client = ThrottlingClient(real, {"batch_write_item"})

    response = api.trigger(job["id"], {"payload": {"a": 1}, "metadata": {"k": "v"}})

    api.services.table.client = real
    assert response.status_code == 503
    listed = api.list_runs(job_id=job["id"])
    assert listed.json() == []
    assert api.list_runs(metadata_key="k", metadata_value="v").json() == []


def test_an_unexpected_store_error_is_a_500_without_internals(api: ApiClient) -> None:
    run = api.run()
    real = api.services.table.client

    class Broken(ThrottlingClient):
        def __getattr__(self, name: str) -> Any:
            if name == "batch_get_item":

                def fail(**_: Any) -> Any:
                    raise RuntimeError("secret internal detail")

                return fail
            return getattr(self._client, name)

    api.services.table.client = Broken(real, set())
    http = TestClient(api.http.app, raise_server_exceptions=False)

    response = http.get(f"/v1/runs/{run['id']}", headers=api.auth)

    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
    assert response.headers["X-Request-Id"] == response.json()["request_id"]
