"""The management reads of what runs recorded (spec 5 items 13-18, 28; spec 1.3): paging with
cursors that never skip or repeat, bounded work and response size, project scoping, the debug
bundle and its caps, and event sequences allocated but still being written (spec 2.3)."""

from collections.abc import Callable
from typing import Any

import pytest

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store.runs import event_item
from straitruns.domain import limits
from straitruns.domain.ids import IdKind
from straitruns.domain.models import Event, EventLevel
from straitruns.services.event_log import EventLog
from straitruns.wiring import Services
from tests.support.app import ApiClient, api_client, make_services
from tests.support.in_run import Sdk, read, start_run

KIB = 1024
Writer = Callable[[Sdk, int], Any]

# list -> how job code writes its n-th item
WRITERS: dict[str, Writer] = {
    "events": lambda sdk, n: sdk.ok("log", {"message": f"m{n}"}),
    "checkpoints": lambda sdk, n: sdk.ok("checkpoint", {"state": {"n": n}}),
    "usage": lambda sdk, n: sdk.ok("usage", {"provider": "p", "model": f"m{n}", "prompt_tokens": n}),
    "tool-calls": lambda sdk, n: sdk.ok("tool-call", {"tool_name": f"t{n}"}),
    "outputs": lambda sdk, n: sdk.ok("output", {"key": f"o{n}", "value": n}),
    "state": lambda sdk, n: sdk.ok("state", {"key": f"k{n:02d}", "value": n}),
}


def _all_pages(
    api: ApiClient, run_id: str, what: str, limit: int, **filters: str
) -> tuple[list[Any], list[Any]]:
    """Follows X-Next-Cursor from the first page; returns (items, responses)."""
    items: list[Any] = []
    responses: list[Any] = []
    params: dict[str, Any] = {"limit": limit, **filters}
    for _ in range(50):
        response = api.http.get(f"/v1/runs/{run_id}/{what}", params=params, headers=api.auth)
        assert response.status_code == 200, response.text
        responses.append(response)
        items.extend(response.json())
        cursor = response.headers.get("x-next-cursor")
        if cursor is None:
            return items, responses
        params["cursor"] = cursor
    raise AssertionError("paging did not end")


@pytest.mark.parametrize("what", sorted(WRITERS))
def test_following_the_cursor_lists_every_item_once_in_order(api: ApiClient, what: str) -> None:
    _, sdk = start_run(api)
    written = []
    for n in range(5):
        written.append(WRITERS[what](sdk, n))
        api.clock.advance(0.001)
    everything = read(api, sdk.run_id, what)

    paged, responses = _all_pages(api, sdk.run_id, what, limit=2)

    assert paged == everything
    assert everything[-5:] == written
    assert [len(response.json()) for response in responses] == [2] * (len(everything) // 2) + (
        [len(everything) % 2] if len(everything) % 2 else []
    )
    assert "x-next-cursor" not in responses[-1].headers
    first = responses[0]
    assert first.headers["link"].startswith(f"</v1/runs/{sdk.run_id}/{what}?")
    assert first.headers["link"].endswith('>; rel="next"')


def test_cursor_of_another_list_or_garbage_is_400(api: ApiClient) -> None:
    _, sdk = start_run(api)
    for n in range(3):
        WRITERS["usage"](sdk, n)
    cursor = api.http.get(f"/v1/runs/{sdk.run_id}/usage?limit=1", headers=api.auth).headers["x-next-cursor"]

    for what, value in (("events", cursor), ("usage", "%%%"), ("usage", "bm90LWEtY3Vyc29y")):
        response = api.http.get(f"/v1/runs/{sdk.run_id}/{what}", params={"cursor": value}, headers=api.auth)
        assert (response.status_code, response.json()["error"]) == (400, "invalid cursor"), what


@pytest.mark.parametrize("limit", ["0", "-1", "two", "1.5"])
def test_limit_that_is_not_a_positive_integer_is_400(api: ApiClient, limit: str) -> None:
    _, sdk = start_run(api)

    assert api.http.get(f"/v1/runs/{sdk.run_id}/events?limit={limit}", headers=api.auth).status_code == 400


def test_limit_over_1000_is_clamped(api: ApiClient) -> None:
    _, sdk = start_run(api)

    assert len(read(api, sdk.run_id, "events", limit=5000)) == 3


def test_date_time_cursor_keeps_what_was_created_strictly_after_it(api: ApiClient) -> None:
    _, sdk = start_run(api)
    sdk.ok("log", {"message": "before"})
    cut = api.clock.now()
    sdk.ok("log", {"message": "at the cut"})
    api.clock.advance(1)
    later = sdk.ok("log", {"message": "after"})

    listed = read(api, sdk.run_id, "events", cursor=cut.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    assert listed == [later]


def test_unknown_level_filter_is_422(api: ApiClient) -> None:
    _, sdk = start_run(api)

    response = api.http.get(f"/v1/runs/{sdk.run_id}/events?level=loud", headers=api.auth)

    assert response.status_code == 422


@pytest.mark.parametrize("what", [*sorted(WRITERS), "debug-bundle"])
def test_another_projects_run_is_404_and_a_key_without_runs_read_is_403(api: ApiClient, what: str) -> None:
    _, sdk = start_run(api)
    _, other_key = api.new_project("other")
    writer_only = api.new_key(api.project_id, scopes=["jobs:trigger"])

    other = api.http.get(f"/v1/runs/{sdk.run_id}/{what}", headers={"Authorization": f"Bearer {other_key}"})
    no_scope = api.http.get(
        f"/v1/runs/{sdk.run_id}/{what}", headers={"Authorization": f"Bearer {writer_only}"}
    )
    malformed = api.http.get(f"/v1/runs/run_nope/{what}", headers=api.auth)

    assert (other.status_code, no_scope.status_code, malformed.status_code) == (404, 403, 404)


def test_debug_bundle_holds_the_run_and_everything_it_recorded(api: ApiClient) -> None:
    _, sdk = start_run(api)
    for n in range(2):
        for writer in WRITERS.values():
            writer(sdk, n)
        api.clock.advance(0.001)

    bundle = read(api, sdk.run_id, "debug-bundle")

    assert bundle["run"] == api.http.get(f"/v1/runs/{sdk.run_id}", headers=api.auth).json()
    for name, what in (
        ("events", "events"),
        ("checkpoints", "checkpoints"),
        ("usage", "usage"),
        ("tool_calls", "tool-calls"),
        ("outputs", "outputs"),
    ):
        assert bundle[name] == read(api, sdk.run_id, what), name
    assert bundle["truncated"] is False
    assert set(bundle) == {"run", "events", "checkpoints", "usage", "tool_calls", "outputs", "truncated"}


def test_debug_bundle_stays_within_5_mb(api: ApiClient) -> None:
    _, sdk = start_run(api)
    big = {"blob": "x" * (250 * KIB)}
    for _ in range(22):  # 5.5 MB of checkpoints
        sdk.ok("checkpoint", {"state": big})
    sdk.ok("usage", {"provider": "p", "model": "m"})

    response = api.http.get(f"/v1/runs/{sdk.run_id}/debug-bundle", headers=api.auth)

    assert response.status_code == 200
    assert len(response.content) <= limits.RESPONSE_BYTES
    bundle = response.json()
    assert bundle["truncated"] is True
    assert 0 < len(bundle["checkpoints"]) < 22
    assert bundle["usage"] == []


def test_a_page_of_large_items_ends_early_within_5_mb_and_the_cursor_gets_the_rest(api: ApiClient) -> None:
    _, sdk = start_run(api)
    for n in range(22):
        sdk.ok("state", {"key": f"k{n:02d}", "value": {"blob": "x" * (250 * KIB)}})

    paged, responses = _all_pages(api, sdk.run_id, "state", limit=1000)

    assert [entry["key"] for entry in paged] == [f"k{n:02d}" for n in range(22)]
    assert len(responses) > 1
    assert all(len(response.content) <= limits.RESPONSE_BYTES for response in responses)


@pytest.fixture
def small_budget(moto_clients: tuple[Any, Any], clock: FrozenClock) -> ApiClient:
    """The API with STRAIT_LIST_READ_BUDGET = 5."""
    services = make_services(*moto_clients, clock, list_read_budget=5)
    return api_client(services, clock)


def test_filtered_list_reads_at_most_the_budget_and_continues_with_a_cursor(small_budget: ApiClient) -> None:
    api = small_budget
    _, sdk = start_run(api)
    for n in range(8):
        sdk.ok("log", {"message": f"m{n}"})
    wanted = sdk.ok("log", {"message": "the one", "level": "error"})

    paged, responses = _all_pages(api, sdk.run_id, "events", limit=10, level="error")

    assert paged == [wanted]
    assert [len(response.json()) for response in responses] == [0, 0, 1]


# Sequences allocated but still being written (spec 2.3) ------------------------------------------


class FakeTime:
    """A monotonic clock whose sleep moves it on, and an optional action at the first sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0
        self.on_first_sleep: Callable[[], None] | None = None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if self.on_first_sleep is not None:
            action, self.on_first_sleep = self.on_first_sleep, None
            action()
        self.now += seconds
        self.slept += seconds


def _log_event(services: Services, run_id: str, sequence: int) -> Event:
    return Event(
        id=services.ids.new(IdKind.EVENT),
        run_id=run_id,
        sequence=sequence,
        type="log",
        level=EventLevel.INFO,
        message=f"event {sequence}",
        created_at=services.clock.now(),
    )


def _allocate(services: Services, run_id: str) -> int:
    """Takes the next sequence as an SDK writer does (on the run's state item), without writing
    its event (yet)."""
    response = services.table.client.update_item(
        TableName=services.table.name,
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "ST"}},
        UpdateExpression="ADD seq :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["seq"]["N"])


def test_reader_waits_for_a_number_still_being_written_and_keeps_the_order(api: ApiClient) -> None:
    # Given sequence 4 allocated, and 5 written before it
    run, _ = start_run(api)
    services = api.services
    hole = _allocate(services, run.id)
    services.engine.append_event(run.id, lambda seq: _log_event(services, run.id, seq))
    time = FakeTime()
    # When the writer of 4 finishes while the reader waits
    time.on_first_sleep = lambda: services.table.batch_write([event_item(_log_event(services, run.id, hole))])
    log = EventLog(services.event_log.store, services.clock, sleep=time.sleep, monotonic=time.monotonic)

    events = log.events_after(run.id, 3, 10)

    # Then 4 comes before 5, each once
    assert [event.sequence for event in events] == [4, 5]
    assert 0 < time.slept < limits.SEQUENCE_GAP_WAIT_SECS


def test_reader_skips_a_number_whose_writer_failed_after_a_bounded_wait(api: ApiClient) -> None:
    run, _ = start_run(api)
    services = api.services
    _allocate(services, run.id)  # a writer that never writes
    services.engine.append_event(run.id, lambda seq: _log_event(services, run.id, seq))
    time = FakeTime()
    log = EventLog(services.event_log.store, services.clock, sleep=time.sleep, monotonic=time.monotonic)

    events = log.events_after(run.id, 0, 10)

    assert [event.sequence for event in events] == [1, 2, 3, 5]
    assert limits.SEQUENCE_GAP_WAIT_SECS <= time.slept <= limits.SEQUENCE_GAP_WAIT_SECS + 0.1


def test_reader_does_not_wait_for_an_old_hole(api: ApiClient) -> None:
    run, _ = start_run(api)
    services = api.services
    _allocate(services, run.id)
    services.engine.append_event(run.id, lambda seq: _log_event(services, run.id, seq))
    assert isinstance(services.clock, FrozenClock)
    services.clock.advance(limits.SEQUENCE_GAP_WAIT_SECS + 1)
    time = FakeTime()
    log = EventLog(services.event_log.store, services.clock, sleep=time.sleep, monotonic=time.monotonic)

    assert [event.sequence for event in log.events_after(run.id, 0, 10)] == [1, 2, 3, 5]
    assert time.slept == 0
