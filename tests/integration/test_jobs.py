"""Jobs (spec 2.2, 8): create with defaults, read by id or slug, list, update (versions), delete
(cancels the job's runs), and triggering disabled and paused jobs."""

import json
import re
from typing import Any

import httpx

from straitruns.adapters.clock import FrozenClock
from tests.support.app import ApiClient, assert_error

START = "2026-11-28T12:00:00.000000Z"  # the FrozenClock's start
ENDPOINT = "http://127.0.0.1:9/run"


def queued_run_ids(api: ApiClient) -> list[str]:
    """Run ids of every message now visible on the run queue (each is received once)."""
    sqs, url = api.services.queue.client, api.services.queue.queue_url
    found: list[str] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        found.extend(json.loads(message["Body"])["run_id"] for message in messages)
    return found


def patch(api: ApiClient, job_ref: str, body: dict[str, Any]) -> httpx.Response:
    return api.http.patch(f"/v1/jobs/{job_ref}", json=body, headers=api.auth)


# Create and read ---------------------------------------------------------------------------


def test_create_returns_201_with_the_defaults_of_the_spec(api: ApiClient) -> None:
    body = {"slug": "report", "name": "Nightly report", "endpoint_url": ENDPOINT}

    response = api.http.post("/v1/jobs", json=body, headers=api.auth)

    assert response.status_code == 201, response.text
    assert response.headers["x-request-id"]
    job = response.json()
    assert re.match(r"^job_[0-9A-HJKMNP-TV-Z]{26}$", job["id"])
    assert re.match(r"^jver_[0-9A-HJKMNP-TV-Z]{26}$", job["version_id"])
    assert job == {
        "id": job["id"],
        "project_id": api.project_id,
        "slug": "report",
        "name": "Nightly report",
        "endpoint_url": ENDPOINT,
        "enabled": True,
        "paused": False,
        "max_attempts": 3,
        "timeout_secs": 300,
        "run_ttl_secs": 86_400,
        "retry_backoff": "exponential",
        "retry_initial_delay_secs": 1,
        "retry_max_delay_secs": 3600,
        "max_concurrency": None,
        "max_concurrency_per_key": None,
        "poison_pill_threshold": 0,
        "tags": {},
        "indexed_payload_paths": [],
        "default_run_metadata": {},
        "version": 1,
        "version_id": job["version_id"],
        "created_at": START,
        "updated_at": START,
    }


SETTINGS = {
    "enabled": True,
    "paused": True,
    "max_attempts": 7,
    "timeout_secs": 840,
    "run_ttl_secs": 60,
    "retry_backoff": "linear",
    "retry_initial_delay_secs": 5,
    "retry_max_delay_secs": 50,
    "max_concurrency": 4,
    "max_concurrency_per_key": 2,
    "poison_pill_threshold": 3,
    "tags": {"team": "data"},
    "indexed_payload_paths": ["order.id", "items[]"],
    "default_run_metadata": {"source": "job"},
}


def test_create_accepts_every_setting(api: ApiClient) -> None:
    job = api.create_job("configured", **SETTINGS)
    assert {name: job[name] for name in SETTINGS} == SETTINGS


def test_get_by_id_and_by_slug_return_the_same_job(api: ApiClient) -> None:
    job = api.create_job("lookup")

    by_id = api.http.get(f"/v1/jobs/{job['id']}", headers=api.auth)
    by_slug = api.http.get("/v1/jobs/lookup", headers=api.auth)

    assert by_id.status_code == 200, by_id.text
    assert by_slug.status_code == 200, by_slug.text
    assert by_id.json() == job
    assert by_slug.json() == job


def test_get_of_a_missing_job_is_404(api: ApiClient) -> None:
    for ref in ("job_01JD0000000000000000000000", "no-such-slug"):
        assert_error(api.http.get(f"/v1/jobs/{ref}", headers=api.auth), 404, "not_found")


def test_list_returns_the_projects_jobs_oldest_first(api: ApiClient, clock: FrozenClock) -> None:
    created = []
    for slug in ("first", "second", "third"):
        created.append(api.create_job(slug)["id"])
        clock.advance(1)

    response = api.http.get("/v1/jobs", headers=api.auth)

    assert response.status_code == 200, response.text
    assert [job["id"] for job in response.json()] == created


def test_list_pages_follow_the_next_cursor_without_gaps(api: ApiClient) -> None:
    created = [api.create_job(f"paged-{index}")["id"] for index in range(5)]  # one instant: ordered by id

    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    for _ in range(5):
        page = api.http.get("/v1/jobs", params=params, headers=api.auth)
        assert page.status_code == 200, page.text
        seen.extend(job["id"] for job in page.json())
        if "x-next-cursor" not in page.headers:
            break
        params = {"limit": "2", "cursor": page.headers["x-next-cursor"]}

    assert seen == created


# Update ------------------------------------------------------------------------------------


def test_update_applies_the_given_fields_and_keeps_the_others(api: ApiClient) -> None:
    job = api.create_job("editable", max_attempts=5)

    response = patch(api, job["id"], {"name": "Renamed", "timeout_secs": 60})

    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["name"] == "Renamed"
    assert updated["timeout_secs"] == 60
    assert updated["max_attempts"] == 5
    assert updated["slug"] == "editable"
    assert api.http.get(f"/v1/jobs/{job['id']}", headers=api.auth).json() == updated


def test_update_grows_the_version_by_one_and_changes_version_id(api: ApiClient) -> None:
    job = api.create_job("versioned")

    first = patch(api, job["id"], {"name": "v2"}).json()
    second = patch(api, "versioned", {"name": "v3"}).json()

    assert [job["version"], first["version"], second["version"]] == [1, 2, 3]
    assert len({job["version_id"], first["version_id"], second["version_id"]}) == 3


def test_update_moves_updated_at_with_the_clock(api: ApiClient, clock: FrozenClock) -> None:
    job = api.create_job("timed")
    clock.advance(90)

    updated = patch(api, job["id"], {"name": "later"}).json()

    assert updated["created_at"] == START
    assert updated["updated_at"] == "2026-11-28T12:01:30.000000Z"


def test_update_to_a_taken_slug_is_409(api: ApiClient) -> None:
    api.create_job("taken")
    job = api.create_job("free")

    assert_error(patch(api, job["id"], {"slug": "taken"}), 409, "conflict")
    assert api.http.get(f"/v1/jobs/{job['id']}", headers=api.auth).json()["slug"] == "free"


def test_update_with_an_unknown_field_is_422(api: ApiClient) -> None:
    job = api.create_job("strict")
    body = assert_error(patch(api, job["id"], {"colour": "red"}), 422, "validation_failed")
    assert [detail["field"] for detail in body["details"]] == ["colour"]


def test_create_with_a_taken_slug_is_409(api: ApiClient) -> None:
    api.create_job("unique")
    body = {"slug": "unique", "name": "again", "endpoint_url": ENDPOINT}

    response = api.http.post("/v1/jobs", json=body, headers=api.auth)

    assert_error(response, 409, "conflict")
    assert len(api.http.get("/v1/jobs", headers=api.auth).json()) == 1


# Delete ------------------------------------------------------------------------------------


def test_delete_is_204_and_the_job_is_then_404(api: ApiClient) -> None:
    job = api.create_job("doomed")

    response = api.http.delete(f"/v1/jobs/{job['id']}", headers=api.auth)

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-request-id"]
    assert_error(api.http.get(f"/v1/jobs/{job['id']}", headers=api.auth), 404, "not_found")
    assert_error(api.http.get("/v1/jobs/doomed", headers=api.auth), 404, "not_found")
    assert_error(api.http.delete(f"/v1/jobs/{job['id']}", headers=api.auth), 404, "not_found")


def test_deleting_a_job_cancels_its_queued_and_delayed_runs(api: ApiClient) -> None:
    job = api.create_job("short-lived")
    queued = api.run(job="short-lived")
    delayed = api.run({"scheduled_at": "2026-11-29T12:00:00Z"}, job="short-lived")
    assert [queued["status"], delayed["status"]] == ["queued", "delayed"]

    assert api.http.delete(f"/v1/jobs/{job['id']}", headers=api.auth).status_code == 204

    for original in (queued, delayed):
        run = api.http.get(f"/v1/runs/{original['id']}", headers=api.auth).json()
        assert run["status"] == "canceled"
        assert run["finished_at"] == START
        assert run["error_class"] == "canceled"


def test_deleting_a_job_records_a_status_change_event_on_each_run(api: ApiClient) -> None:
    job = api.create_job("evented")
    run = api.run(job="evented")

    api.http.delete(f"/v1/jobs/{job['id']}", headers=api.auth)

    events = api.services.event_log.events_after(run["id"], 0, 10)
    assert [(event.sequence, event.type) for event in events] == [(1, "status_change"), (2, "status_change")]
    data = json.loads(events[1].data or "{}")
    assert (data["from"], data["to"]) == ("queued", "canceled")


def test_deleting_a_job_leaves_other_jobs_runs_alone(api: ApiClient) -> None:
    kept = api.run(job="kept")
    job = api.create_job("gone")
    api.run(job="gone")

    api.http.delete(f"/v1/jobs/{job['id']}", headers=api.auth)

    assert api.http.get(f"/v1/runs/{kept['id']}", headers=api.auth).json()["status"] == "queued"


# Disabled and paused jobs ------------------------------------------------------------------


def test_triggering_a_disabled_job_is_409(api: ApiClient) -> None:
    job = api.create_job("off", enabled=False)

    assert_error(api.trigger(job["id"]), 409, "conflict")
    assert api.list_runs(job_id=job["id"]).json() == []


def test_bulk_triggering_a_disabled_job_is_409(api: ApiClient) -> None:
    job = api.create_job("off-bulk", enabled=False)
    response = api.http.post(f"/v1/jobs/{job['id']}/trigger/bulk", json={"items": [{}]}, headers=api.auth)
    assert_error(response, 409, "conflict")


def test_triggering_a_paused_job_creates_a_queued_run_that_is_not_sent(api: ApiClient) -> None:
    job = api.create_job("resting", paused=True)

    response = api.trigger(job["id"])

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    assert response.json()["id"] not in queued_run_ids(api)


def test_unpausing_a_job_sends_its_parked_runs(api: ApiClient) -> None:
    job = api.create_job("resuming", paused=True)
    parked = [api.trigger(job["id"]).json()["id"] for _ in range(2)]
    assert queued_run_ids(api) == []

    response = patch(api, job["id"], {"paused": False})

    assert response.status_code == 200, response.text
    assert response.json()["paused"] is False
    assert sorted(queued_run_ids(api)) == sorted(parked)


def test_unpaused_runs_are_sent_only_once(api: ApiClient) -> None:
    job = api.create_job("once", paused=True)
    run_id = api.trigger(job["id"]).json()["id"]
    patch(api, job["id"], {"paused": False})
    assert queued_run_ids(api) == [run_id]

    patch(api, job["id"], {"paused": True})
    patch(api, job["id"], {"paused": False})

    assert queued_run_ids(api) == []
