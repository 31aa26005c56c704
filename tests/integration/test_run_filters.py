"""GET /v1/runs filters (spec 5 item 1) and GET /v1/runs/dlq (item 2): each filter alone and in
combination returns exactly the matching runs, newest first.

Runs are triggered one second apart (the clock is frozen otherwise), so "newest first" is the
reverse of creation order; runs of one bulk trigger share a created_at and are ordered by id.
"""

from typing import Any

import pytest

from straitruns.domain.ids import IdKind
from straitruns.domain.models import Run, TriggeredBy
from straitruns.domain.statuses import RunStatus
from straitruns.services.run_state import status_change_event
from tests.support.app import ApiClient


@pytest.fixture(params=[1, 8], ids=["1-shard", "8-shards"])
def index_shards(request: pytest.FixtureRequest) -> int:
    """Every filter, cursors included, with one write shard and with eight (docs/data-model.md)."""
    shards: int = request.param
    return shards


S = RunStatus
DEAD_LETTER_PATH = (S.DEQUEUED, S.EXECUTING, S.DEAD_LETTER)


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [run["id"] for run in response.json()]


def _newest_first(*run_ids: str) -> list[str]:
    """Expected order of runs created one after the other in the given order."""
    return list(reversed(run_ids))


def _trigger(api: ApiClient, job: str = "job", **body: Any) -> str:
    api.clock.advance(1)
    return str(api.run(body, job=job)["id"])


def _bulk(api: ApiClient, items: list[dict[str, Any]], job: str = "job") -> tuple[str, list[str]]:
    if job not in api.jobs:
        api.create_job(job)
    api.clock.advance(1)
    response = api.http.post(
        f"/v1/jobs/{api.jobs[job]}/trigger/bulk", json={"items": items}, headers=api.auth
    )
    assert response.status_code == 201, response.text
    return response.json()["batch_id"], [run["id"] for run in response.json()["runs"]]


def _move(api: ApiClient, run_id: str, *statuses: RunStatus) -> None:
    """Walks the run through `statuses` as the engine would (each step writes its event)."""
    run = api.services.runs.get(run_id)
    assert run is not None
    for status in statuses:
        run = api.services.state.change(run, status, "test")


def _store_run(api: ApiClient, job: str = "job", **fields: Any) -> str:
    """A run written through the store, for fields a trigger cannot set (triggered_by)."""
    if job not in api.jobs:
        api.create_job(job)
    api.clock.advance(1)
    services = api.services
    run = Run.model_validate(
        {
            "id": services.ids.new(IdKind.RUN),
            "job_id": api.jobs[job],
            "project_id": api.project_id,
            "status": S.QUEUED,
            "created_by": "admin",
            "created_at": api.clock.now(),
            **fields,
        }
    )
    services.runs.create(run, status_change_event(services.ids, api.clock, run, None, "created", 1))
    return run.id


# status ---------------------------------------------------------------------------------------


def test_status_filter_returns_only_runs_in_that_status_newest_first(api: ApiClient) -> None:
    a, b, c, d = (_trigger(api) for _ in range(4))
    _move(api, b, S.CANCELED)
    _move(api, d, S.CANCELED)

    assert _ids(api.list_runs(status="canceled")) == _newest_first(b, d)
    assert _ids(api.list_runs(status="queued")) == _newest_first(a, c)
    assert _ids(api.list_runs(status="completed")) == []


def test_status_filter_follows_a_run_through_its_transitions(api: ApiClient) -> None:
    a = _trigger(api)
    b = _trigger(api)
    _move(api, a, S.DEQUEUED, S.EXECUTING)

    assert _ids(api.list_runs(status="executing")) == [a]
    assert _ids(api.list_runs(status="dequeued")) == []
    assert _ids(api.list_runs(status="queued")) == [b]


def test_unknown_status_is_400(api: ApiClient) -> None:
    response = api.list_runs(status="finished")

    assert response.status_code == 400, response.text


# metadata -------------------------------------------------------------------------------------


def test_metadata_key_alone_means_has_the_key(api: ApiClient) -> None:
    prod = _trigger(api, metadata={"env": "prod"})
    dev = _trigger(api, metadata={"env": "dev", "team": "a"})
    _trigger(api, metadata={"team": "a"})
    _trigger(api)

    assert _ids(api.list_runs(metadata_key="env")) == _newest_first(prod, dev)


def test_metadata_key_and_value_match_the_pair(api: ApiClient) -> None:
    first = _trigger(api, metadata={"env": "prod"})
    _trigger(api, metadata={"env": "dev"})
    _trigger(api, metadata={"region": "prod"})
    second = _trigger(api, metadata={"env": "prod", "team": "b"})

    assert _ids(api.list_runs(metadata_key="env", metadata_value="prod")) == _newest_first(first, second)
    assert _ids(api.list_runs(metadata_key="env", metadata_value="staging")) == []


def test_metadata_value_without_key_is_400(api: ApiClient) -> None:
    response = api.list_runs(metadata_value="prod")

    assert response.status_code == 400, response.text


# triggered_by, batch, job, tags, time window ----------------------------------------------------


def test_triggered_by_filter(api: ApiClient) -> None:
    manual = _trigger(api)
    retry_a = _store_run(api, triggered_by=TriggeredBy.RETRY)
    _store_run(api, triggered_by=TriggeredBy.SPAWN)
    retry_b = _store_run(api, triggered_by=TriggeredBy.RETRY)

    assert _ids(api.list_runs(triggered_by="retry")) == _newest_first(retry_a, retry_b)
    assert _ids(api.list_runs(triggered_by="manual")) == [manual]


def test_batch_filter_returns_the_runs_of_one_bulk_trigger_by_id_descending(api: ApiClient) -> None:
    batch, members = _bulk(api, [{"payload": {"i": i}} for i in range(5)])
    _bulk(api, [{"payload": {"i": i}} for i in range(3)])
    _trigger(api)

    # One bulk trigger shares one created_at: equal times are ordered by id.
    assert _ids(api.list_runs(batch_id=batch)) == sorted(members, reverse=True)


def test_job_filter(api: ApiClient) -> None:
    first = _trigger(api, job="alpha")
    _trigger(api, job="beta")
    second = _trigger(api, job="alpha")

    assert _ids(api.list_runs(job_id=api.jobs["alpha"])) == _newest_first(first, second)


def test_tag_key_alone_and_tag_pair(api: ApiClient) -> None:
    gold = _trigger(api, tags={"tier": "gold"})
    silver = _trigger(api, tags={"tier": "silver"})
    _trigger(api, tags={"owner": "gold"})

    assert _ids(api.list_runs(tag_key="tier")) == _newest_first(gold, silver)
    assert _ids(api.list_runs(tag_key="tier", tag_value="gold")) == [gold]


def test_created_after_and_before_are_strict(api: ApiClient) -> None:
    runs = []
    for _ in range(5):
        api.clock.advance(1)
        runs.append(api.run({}))
    ids = [run["id"] for run in runs]
    times = [run["created_at"] for run in runs]

    assert _ids(api.list_runs(created_after=times[1])) == _newest_first(*ids[2:])
    assert _ids(api.list_runs(created_before=times[3])) == _newest_first(*ids[:3])
    assert _ids(api.list_runs(created_after=times[1], created_before=times[3])) == [ids[2]]
    assert _ids(api.list_runs(created_after=times[4])) == []


# payload_contains -------------------------------------------------------------------------------


def test_payload_contains_top_level_key(api: ApiClient) -> None:
    plain = _trigger(api, payload={"kind": "x"})
    _trigger(api, payload={"kind": "y"})
    richer = _trigger(api, payload={"kind": "x", "more": [1, 2]})
    _trigger(api, payload={"other": {"kind": "x"}})

    assert _ids(api.list_runs(payload_contains={"kind": "x"})) == _newest_first(plain, richer)


def test_payload_contains_nested_object(api: ApiClient) -> None:
    match = _trigger(api, payload={"order": {"id": 7, "total": "9.50"}})
    _trigger(api, payload={"order": {"id": 8}})
    _trigger(api, payload={"order": 7})
    _trigger(api, payload={"id": 7})
    _trigger(api, payload={"order": [{"id": 7}]})

    assert _ids(api.list_runs(payload_contains={"order": {"id": 7}})) == [match]


def test_payload_contains_array_element(api: ApiClient) -> None:
    first = _trigger(api, payload={"items": ["y", "x"]})
    _trigger(api, payload={"items": ["y"]})
    _trigger(api, payload={"items": "x"})
    _trigger(api, payload={"other": ["x"]})
    second = _trigger(api, payload={"items": ["x"]})

    assert _ids(api.list_runs(payload_contains={"items": ["x"]})) == _newest_first(first, second)
    assert _ids(api.list_runs(payload_contains={"items": ["x", "y"]})) == [first]


def test_payload_contains_array_of_objects(api: ApiClient) -> None:
    both = _trigger(api, payload={"items": [{"sku": "b"}, {"sku": "a", "qty": 2}]})
    _trigger(api, payload={"items": [{"sku": "b"}]})
    _trigger(api, payload={"items": {"sku": "a"}})
    only_a = _trigger(api, payload={"items": [{"sku": "a"}]})

    assert _ids(api.list_runs(payload_contains={"items": [{"sku": "a"}]})) == _newest_first(both, only_a)
    assert _ids(api.list_runs(payload_contains={"items": [{"sku": "a"}, {"sku": "b"}]})) == [both]
    assert _ids(api.list_runs(payload_contains={"items": [{"sku": "a", "qty": 2}]})) == [both]


def test_payload_contains_compares_numbers_by_value(api: ApiClient) -> None:
    integer = _trigger(api, payload={"n": 1})
    fraction = _trigger(api, payload={"n": 1.0})
    _trigger(api, payload={"n": 2})
    _trigger(api, payload={"n": "1"})

    expected = _newest_first(integer, fraction)
    assert _ids(api.list_runs(payload_contains={"n": 1})) == expected
    assert _ids(api.list_runs(payload_contains={"n": 1.0})) == expected
    assert _ids(api.list_runs(payload_contains='{"n": 1e0}')) == expected
    assert _ids(api.list_runs(payload_contains='{"n": 1.000}')) == expected


def test_payload_contains_never_equates_a_boolean_with_one(api: ApiClient) -> None:
    one = _trigger(api, payload={"flag": 1})
    true = _trigger(api, payload={"flag": True})
    zero = _trigger(api, payload={"flag": 0})
    false = _trigger(api, payload={"flag": False})

    assert _ids(api.list_runs(payload_contains={"flag": True})) == [true]
    assert _ids(api.list_runs(payload_contains={"flag": 1})) == [one]
    assert _ids(api.list_runs(payload_contains={"flag": False})) == [false]
    assert _ids(api.list_runs(payload_contains={"flag": 0})) == [zero]


def test_payload_contains_finds_a_leaf_beyond_the_indexed_ones(api: ApiClient) -> None:
    # Given payloads with 30 leaves before the one searched for (only 24 are indexed)
    wide = {f"f{i:02d}": i for i in range(30)}
    small = _trigger(api, payload={"needle": "here"})
    deep = _trigger(api, payload={**wide, "needle": "here"})
    _trigger(api, payload={**wide, "needle": "elsewhere"})
    nested = _trigger(api, payload={**wide, "box": {"list": [{"needle": "here"}]}})

    # When / Then
    assert _ids(api.list_runs(payload_contains={"needle": "here"})) == _newest_first(small, deep)
    query = {"box": {"list": [{"needle": "here"}]}}
    assert _ids(api.list_runs(payload_contains=query)) == [nested]
    assert _ids(api.list_runs(payload_contains={"needle": "here", "f29": 29})) == [deep]


def test_payload_contains_that_is_not_json_or_not_an_object_is_400(api: ApiClient) -> None:
    assert api.list_runs(payload_contains="{not json").status_code == 400
    assert api.list_runs(payload_contains="[1]").status_code == 400


# combinations -----------------------------------------------------------------------------------


def test_status_and_metadata_combine_with_and(api: ApiClient) -> None:
    _trigger(api, metadata={"env": "prod"})
    canceled_prod = _trigger(api, metadata={"env": "prod"})
    canceled_dev = _trigger(api, metadata={"env": "dev"})
    canceled_plain = _trigger(api)
    for run_id in (canceled_prod, canceled_dev, canceled_plain):
        _move(api, run_id, S.CANCELED)

    pair = api.list_runs(status="canceled", metadata_key="env", metadata_value="prod")
    assert _ids(pair) == [canceled_prod]
    key_only = api.list_runs(status="canceled", metadata_key="env")
    assert _ids(key_only) == _newest_first(canceled_prod, canceled_dev)


def test_job_and_payload_contains_combine_with_and(api: ApiClient) -> None:
    wanted = _trigger(api, job="alpha", payload={"k": 1})
    _trigger(api, job="alpha", payload={"k": 2})
    _trigger(api, job="beta", payload={"k": 1})

    response = api.list_runs(job_id=api.jobs["alpha"], payload_contains={"k": 1})
    assert _ids(response) == [wanted]


def test_batch_and_status_combine_with_and(api: ApiClient) -> None:
    batch, members = _bulk(api, [{} for _ in range(4)])
    _move(api, members[1], S.CANCELED)
    _move(api, members[3], S.CANCELED)
    _trigger(api)

    canceled = api.list_runs(batch_id=batch, status="canceled")
    assert _ids(canceled) == sorted([members[1], members[3]], reverse=True)
    queued = api.list_runs(batch_id=batch, status="queued")
    assert _ids(queued) == sorted([members[0], members[2]], reverse=True)


def test_tag_pair_and_time_window_combine_with_and(api: ApiClient) -> None:
    early = api.run({"tags": {"tier": "gold"}})
    api.clock.advance(1)
    later = _trigger(api, tags={"tier": "gold"})
    _trigger(api, tags={"tier": "silver"})

    response = api.list_runs(tag_key="tier", tag_value="gold", created_after=early["created_at"])
    assert _ids(response) == [later]


def test_triggered_by_and_status_combine_with_and(api: ApiClient) -> None:
    retry_queued = _store_run(api, triggered_by=TriggeredBy.RETRY)
    retry_canceled = _store_run(api, triggered_by=TriggeredBy.RETRY)
    manual_canceled = _trigger(api)
    _move(api, retry_canceled, S.CANCELED)
    _move(api, manual_canceled, S.CANCELED)

    assert _ids(api.list_runs(triggered_by="retry", status="canceled")) == [retry_canceled]
    assert _ids(api.list_runs(triggered_by="retry", status="queued")) == [retry_queued]


def test_metadata_pair_and_payload_contains_combine_with_and(api: ApiClient) -> None:
    wanted = _trigger(api, metadata={"env": "prod"}, payload={"order": {"id": 7}})
    _trigger(api, metadata={"env": "dev"}, payload={"order": {"id": 7}})
    _trigger(api, metadata={"env": "prod"}, payload={"order": {"id": 8}})

    response = api.list_runs(metadata_key="env", metadata_value="prod", payload_contains={"order": {"id": 7}})
    assert _ids(response) == [wanted]


def test_filters_never_show_another_projects_runs(api: ApiClient) -> None:
    mine = _trigger(api, metadata={"env": "prod"}, payload={"k": 1})
    other_project, other_key = api.new_project("other")
    job = api.http.post(
        "/v1/jobs",
        json={"slug": "job", "name": "job", "endpoint_url": "http://127.0.0.1:9/run"},
        headers={"Authorization": f"Bearer {other_key}"},
    )
    assert job.status_code == 201, job.text
    theirs = api.http.post(
        f"/v1/jobs/{job.json()['id']}/trigger",
        json={"metadata": {"env": "prod"}, "payload": {"k": 1}},
        headers={"Authorization": f"Bearer {other_key}"},
    )
    assert theirs.status_code == 201, theirs.text

    assert _ids(api.list_runs(metadata_key="env", metadata_value="prod")) == [mine]
    assert _ids(api.list_runs(payload_contains={"k": 1})) == [mine]
    assert other_project != api.project_id


# dead letters -----------------------------------------------------------------------------------


def test_dlq_lists_only_dead_letter_runs_newest_first(api: ApiClient) -> None:
    first = _trigger(api)
    _trigger(api)
    canceled = _trigger(api)
    failed = _trigger(api)
    second = _trigger(api)
    _move(api, first, *DEAD_LETTER_PATH)
    _move(api, second, *DEAD_LETTER_PATH)
    _move(api, canceled, S.CANCELED)
    _move(api, failed, S.DEQUEUED, S.EXECUTING, S.FAILED)

    response = api.http.get("/v1/runs/dlq", params={"project_id": api.project_id}, headers=api.auth)

    assert _ids(response) == _newest_first(first, second)
    assert {run["status"] for run in response.json()} == {"dead_letter"}
    assert _ids(api.list_runs(status="dead_letter")) == _newest_first(first, second)


def test_dlq_filters_by_job(api: ApiClient) -> None:
    alpha_old = _trigger(api, job="alpha")
    beta = _trigger(api, job="beta")
    alpha_new = _trigger(api, job="alpha")
    _trigger(api, job="alpha")
    for run_id in (alpha_old, beta, alpha_new):
        _move(api, run_id, *DEAD_LETTER_PATH)

    params = {"project_id": api.project_id, "job_id": api.jobs["alpha"]}
    response = api.http.get("/v1/runs/dlq", params=params, headers=api.auth)

    assert _ids(response) == _newest_first(alpha_old, alpha_new)


def test_dlq_pages_with_a_cursor(api: ApiClient) -> None:
    dead = [_trigger(api) for _ in range(3)]
    for run_id in dead:
        _move(api, run_id, *DEAD_LETTER_PATH)

    seen: list[str] = []
    params: dict[str, str] = {"project_id": api.project_id, "limit": "2"}
    while True:
        response = api.http.get("/v1/runs/dlq", params=params, headers=api.auth)
        seen += _ids(response)
        if "x-next-cursor" not in response.headers:
            break
        params["cursor"] = response.headers["x-next-cursor"]

    assert seen == _newest_first(*dead)


def test_payload_contains_pages_once_through_indexed_and_overflowing_runs(api: ApiClient) -> None:
    # Given matches found through the leaf index, through the overflow mark, or through both
    # (a wide payload whose searched leaf is among the indexed ones)
    wide = {f"f{i:02d}": i for i in range(30)}
    matches = [
        _trigger(api, payload={"needle": "here"}),
        _trigger(api, payload={"needle": "here", **wide}),
        _trigger(api, payload={**wide, "needle": "here"}),
        _trigger(api, payload={"needle": "here", "x": 1}),
        _trigger(api, payload={**wide, "needle": "here", "y": 2}),
    ]
    _trigger(api, payload={**wide, "needle": "there"})

    # When the matches are listed one per page
    seen: list[str] = []
    params: dict[str, Any] = {"payload_contains": {"needle": "here"}, "limit": "1"}
    for _ in range(20):
        response = api.list_runs(**params)
        seen += _ids(response)
        if "x-next-cursor" not in response.headers:
            break
        params["cursor"] = response.headers["x-next-cursor"]

    # Then each appears once, newest first
    assert seen == _newest_first(*matches)
