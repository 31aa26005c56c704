"""The stream endpoints and POST /v1/sse-token in process, on moto (spec 7, 1.1): who may open a
stream, what a finished run's stream sends (it ends by itself, so the test client may read it
whole), reconnects after the end, and the open-stream caps. Live streams of running runs are in
tests/ddblocal/test_streams_live.py (real HTTP, real concurrency)."""

from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from straitruns.adapters.clock import FrozenClock
from straitruns.adapters.store.stream_slots import TOTAL_SCOPE
from straitruns.adapters.tokens import TokenSigner
from straitruns.domain.auth import Principal
from straitruns.domain.statuses import RunStatus
from straitruns.services.streams import StreamKind
from straitruns.wiring import Services
from tests.support.app import RUN_TOKEN_SECRET, ApiClient, api_client, make_services
from tests.support.streams import Frame, SseReader, finish, sdk_chunk, sdk_event, stream_url

SSE_TTL = 3600


def frames_of(response: Any) -> list[Frame]:
    assert response.status_code == 200, response.text
    return list(SseReader(response))


def get_stream(api: ApiClient, run_id: str, chunks: bool = False, **request: Any) -> Any:
    request.setdefault("headers", api.auth)
    return api.http.get(stream_url(run_id, chunks), **request)


def sse_token(api: ApiClient, key: str | None = None) -> str:
    response = api.http.post("/v1/sse-token", headers={"Authorization": f"Bearer {key or api.key}"})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def finished_run(api: ApiClient, status: RunStatus = RunStatus.CANCELED) -> str:
    run_id = str(api.run()["id"])
    finish(api.services, run_id, status)
    return run_id


# --- POST /v1/sse-token -------------------------------------------------------------------------


def test_sse_token_is_a_jwt_of_the_keys_project_valid_for_the_configured_time(api: ApiClient) -> None:
    response = api.http.post("/v1/sse-token", headers=api.auth)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expires_at"}
    claims = jwt.decode(
        body["token"],
        RUN_TOKEN_SECRET,
        algorithms=["HS256"],
        issuer="strait:sse-token",
        options={"verify_exp": False},
    )
    assert claims["sub"] == api.project_id
    assert body["expires_at"] == "2026-11-28T13:00:00.000000Z"  # the frozen clock + 3600 s


def test_sse_token_needs_runs_read(api: ApiClient) -> None:
    key = api.new_key(api.project_id, scopes=["jobs:read"])

    response = api.http.post("/v1/sse-token", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 403


def test_sse_token_needs_a_credential(api: ApiClient) -> None:
    assert api.http.post("/v1/sse-token").status_code == 401


def test_admin_names_the_project_of_an_sse_token(api: ApiClient) -> None:
    named = api.http.post("/v1/sse-token", headers={**api.admin, "X-Project-Id": api.project_id})
    unnamed = api.http.post("/v1/sse-token", headers=api.admin)

    assert named.status_code == 200
    assert jwt.decode(named.json()["token"], options={"verify_signature": False})["sub"] == api.project_id
    assert unnamed.status_code == 400


def test_sse_token_body_takes_no_fields(api: ApiClient) -> None:
    empty = api.http.post("/v1/sse-token", headers=api.auth, json={})
    unknown = api.http.post("/v1/sse-token", headers=api.auth, json={"ttl": 5})

    assert (empty.status_code, unknown.status_code) == (200, 422)


# --- a finished run's stream --------------------------------------------------------------------


def test_finished_run_stream_replays_its_history_then_ends(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    sdk_event(api.services, run_id, "working", step="one")
    sdk_event(api.services, run_id, "half", event_type="progress", percent=50)
    finish(api.services, run_id, RunStatus.CANCELED)

    response = get_stream(api, run_id)
    frames = frames_of(response)

    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert frames[0] == Frame(comment="keepalive"), "the first bytes go out at once"
    sent = [frame for frame in frames if frame.comment is None]
    assert [(frame.id, frame.event) for frame in sent] == [
        ("1", "status_change"),
        ("2", "event"),
        ("3", "progress"),
        ("4", "status_change"),
        (None, "end"),
    ]
    assert sent[0].json() | {"timestamp": None} == {
        "type": "status_change",
        "run_id": run_id,
        "from": None,
        "to": "queued",
        "attempt": 1,
        "timestamp": None,
    }
    assert sent[1].json()["data"] == {"step": "one"}
    assert sent[2].json()["event_type"] == "progress"
    assert (sent[3].json()["from"], sent[3].json()["to"]) == ("queued", "canceled")
    assert sent[4].json() == {"type": "end", "status": "canceled"}


def test_stream_resumes_after_the_last_event_id_header(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    for n in range(3):
        sdk_event(api.services, run_id, f"line {n}")
    finish(api.services, run_id)

    frames = frames_of(get_stream(api, run_id, headers={**api.auth, "Last-Event-ID": "2"}))

    assert [frame.id for frame in frames if frame.id] == ["3", "4", "5"]
    assert frames[-1].event == "end"


def test_last_event_id_header_wins_over_the_query(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    for n in range(3):
        sdk_event(api.services, run_id, f"line {n}")
    finish(api.services, run_id)

    frames = frames_of(
        get_stream(api, run_id, headers={**api.auth, "Last-Event-ID": "3"}, params={"last_event_id": "1"})
    )

    assert [frame.id for frame in frames if frame.id] == ["4", "5"]


@pytest.mark.parametrize("where", ["header", "query"])
def test_reconnect_after_the_end_is_204(api: ApiClient, where: str) -> None:
    run_id = finished_run(api)
    request: dict[str, Any] = (
        {"headers": {**api.auth, "Last-Event-ID": "2"}}
        if where == "header"
        else {"params": {"last_event_id": "2"}, "headers": api.auth}
    )

    response = get_stream(api, run_id, **request)

    assert response.status_code == 204
    assert response.content == b""


def test_reconnect_to_a_finished_run_before_its_last_event_still_streams(api: ApiClient) -> None:
    run_id = finished_run(api)

    frames = frames_of(get_stream(api, run_id, headers={**api.auth, "Last-Event-ID": "1"}))

    assert [frame.id for frame in frames if frame.id] == ["2"]


def test_chunk_stream_of_a_finished_run_sends_every_chunk_in_order_then_ends(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    sdk_chunk(api.services, run_id, "Hel", stream_id="answer")
    sdk_chunk(api.services, run_id, "thinking", stream_id="notes")
    sdk_chunk(api.services, run_id, "lo", stream_id="answer", done=True)
    finish(api.services, run_id, RunStatus.CANCELED)

    every = [frame for frame in frames_of(get_stream(api, run_id, chunks=True)) if frame.comment is None]
    answer = [
        frame
        for frame in frames_of(get_stream(api, run_id, chunks=True, params={"stream_id": "answer"}))
        if frame.comment is None
    ]

    assert [(frame.id, frame.event) for frame in every] == [
        ("1", "chunk"),
        ("2", "chunk"),
        ("3", "chunk"),
        (None, "end"),
    ]
    assert [frame.json()["chunk"] for frame in every[:3]] == ["Hel", "thinking", "lo"]
    assert every[2].json() | {"timestamp": None} == {
        "type": "stream_chunk",
        "stream_id": "answer",
        "chunk": "lo",
        "done": True,
        "sequence": 3,
        "timestamp": None,
    }
    assert [frame.id for frame in answer] == ["1", "3", None]
    assert answer[-1].json() == {"type": "end", "status": "canceled"}


def test_chunk_stream_never_carries_events_and_event_stream_never_carries_chunks(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    sdk_chunk(api.services, run_id, "x")
    finish(api.services, run_id)

    events = frames_of(get_stream(api, run_id))
    chunks = frames_of(get_stream(api, run_id, chunks=True))

    assert {frame.event for frame in events} == {None, "status_change", "end"}
    assert {frame.event for frame in chunks} == {None, "chunk", "end"}


def test_expired_chunks_are_not_sent(api: ApiClient, clock: FrozenClock) -> None:
    run_id = str(api.run()["id"])
    sdk_chunk(api.services, run_id, "old")
    clock.advance(25 * 3600)
    sdk_chunk(api.services, run_id, "new")
    finish(api.services, run_id)

    frames = [frame for frame in frames_of(get_stream(api, run_id, chunks=True)) if frame.id]

    assert [(frame.id, frame.json()["chunk"]) for frame in frames] == [("2", "new")]


def test_chunk_reconnect_after_the_end_is_204(api: ApiClient) -> None:
    run_id = str(api.run()["id"])
    sdk_chunk(api.services, run_id, "x")
    finish(api.services, run_id)

    response = get_stream(api, run_id, chunks=True, headers={**api.auth, "Last-Event-ID": "1"})

    assert response.status_code == 204


# --- who may open a stream ----------------------------------------------------------------------


def test_stream_with_an_sse_token_in_the_query(api: ApiClient) -> None:
    run_id = finished_run(api)

    frames = frames_of(api.http.get(stream_url(run_id), params={"token": sse_token(api)}))

    assert frames[-1].event == "end"


def test_sse_token_of_another_project_is_404(api: ApiClient) -> None:
    run_id = finished_run(api)
    _, other_key = api.new_project("other")

    response = api.http.get(stream_url(run_id), params={"token": sse_token(api, other_key)})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_expired_sse_token_is_401(api: ApiClient, clock: FrozenClock) -> None:
    run_id = finished_run(api)
    token = sse_token(api)
    clock.advance(SSE_TTL)

    response = api.http.get(stream_url(run_id), params={"token": token})

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


def test_forged_sse_token_is_401(api: ApiClient) -> None:
    run_id = finished_run(api)
    forged = jwt.encode(
        {"iss": "strait:sse-token", "sub": api.project_id, "exp": 4102444800},
        "not-the-key-0123456789abcdefghijkl",
    )

    assert api.http.get(stream_url(run_id), params={"token": forged}).status_code == 401


def test_api_key_in_the_token_query_is_401(api: ApiClient) -> None:
    run_id = finished_run(api)

    response = api.http.get(stream_url(run_id), params={"token": api.key})

    assert response.status_code == 401


def test_run_token_in_the_token_query_is_401(api: ApiClient, clock: FrozenClock) -> None:
    run_id = finished_run(api)
    run_token = TokenSigner(lambda: RUN_TOKEN_SECRET).run_token(
        run_id, 1, 1, clock.now(), clock.now() + timedelta(hours=1)
    )

    assert api.http.get(stream_url(run_id), params={"token": run_token}).status_code == 401


def test_admin_secret_in_the_token_query_is_401(api: ApiClient) -> None:
    run_id = finished_run(api)
    admin_secret = api.admin["Authorization"].removeprefix("Bearer ")

    assert api.http.get(stream_url(run_id), params={"token": admin_secret}).status_code == 401


def test_stream_without_credentials_is_401(api: ApiClient) -> None:
    run_id = finished_run(api)

    assert api.http.get(stream_url(run_id)).status_code == 401


def test_stream_needs_runs_read(api: ApiClient) -> None:
    run_id = finished_run(api)
    key = api.new_key(api.project_id, scopes=["jobs:read"])

    response = api.http.get(stream_url(run_id), headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 403


@pytest.mark.parametrize("chunks", [False, True])
def test_stream_of_another_projects_run_or_a_bad_id_is_404(api: ApiClient, chunks: bool) -> None:
    run_id = finished_run(api)
    _, other_key = api.new_project("other")

    other = api.http.get(stream_url(run_id, chunks), headers={"Authorization": f"Bearer {other_key}"})
    malformed = get_stream(api, "not-a-run-id", chunks)
    missing = get_stream(api, "run_01M8HJNDFVVFRZ2J7H4C96CJDZ", chunks)

    assert (other.status_code, malformed.status_code, missing.status_code) == (404, 404, 404)


# --- caps on open streams -----------------------------------------------------------------------


@pytest.fixture
def capped(moto_clients: tuple[Any, Any], clock: FrozenClock) -> ApiClient:
    """The API with room for 2 open streams per project and 3 in all."""
    dynamodb, sqs = moto_clients
    services = make_services(
        dynamodb,
        sqs,
        clock,
        sse_max_connections_per_project=2,
        sse_max_connections=3,
        sse_max_connection_secs=300,
    )
    return api_client(services, clock)


def hold_streams(services: Services, project_id: str, run_id: str, count: int) -> list[Any]:
    """Opens `count` streams as a reader of the project would (each holds a slot until closed)."""
    reader = Principal(is_admin=False, project_id=project_id, scopes=frozenset({"runs:read"}))
    opened = [services.streams.open(reader, run_id, StreamKind.EVENTS, None) for _ in range(count)]
    assert all(stream is not None for stream in opened)
    return opened


def test_stream_beyond_the_projects_cap_is_503_with_retry_after(capped: ApiClient) -> None:
    run_id = finished_run(capped)
    held = hold_streams(capped.services, capped.project_id, run_id, 2)

    refused = get_stream(capped, run_id)
    capped.services.streams.close(held[0])
    admitted = get_stream(capped, run_id)

    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "5"
    assert refused.json()["code"] == "service_unavailable"
    assert admitted.status_code == 200


def test_stream_beyond_the_total_cap_is_503_for_every_project(capped: ApiClient) -> None:
    run_id = finished_run(capped)
    other_project, other_key = capped.new_project("other")
    other_api = ApiClient(capped.http, capped.services, capped.clock, other_project, other_key)
    other_run = finished_run(other_api)
    hold_streams(capped.services, capped.project_id, run_id, 2)
    hold_streams(capped.services, other_project, other_run, 1)

    refused = get_stream(other_api, other_run)

    assert refused.status_code == 503


def test_a_finished_stream_gives_its_slot_back(capped: ApiClient) -> None:
    run_id = finished_run(capped)

    statuses = [get_stream(capped, run_id).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert capped.services.streams.limiter.open_streams(capped.project_id) == 0
    assert capped.services.streams.limiter.open_streams(TOTAL_SCOPE) == 0


def test_a_slot_never_given_back_stops_counting_two_windows_later(
    capped: ApiClient, clock: FrozenClock
) -> None:
    run_id = finished_run(capped)
    hold_streams(capped.services, capped.project_id, run_id, 2)  # an instance that crashed
    window = capped.services.streams.limiter.window_secs

    clock.advance(window)
    still_counted = get_stream(capped, run_id).status_code
    clock.advance(window)
    admitted = get_stream(capped, run_id).status_code

    assert (still_counted, admitted) == (503, 200)


def test_test_client_reads_whole_responses(capped: ApiClient) -> None:
    """Guard for this module: the in-process client buffers a stream until it ends, so only streams
    that end by themselves (finished runs) are read here."""
    assert isinstance(capped.http, TestClient)


@pytest.mark.parametrize("chunks", [False, True])
def test_cors_preflight_of_a_stream_allows_last_event_id_from_any_origin(
    api: ApiClient, chunks: bool
) -> None:
    response = api.http.options(
        stream_url("run_01M8HJNDFVVFRZ2J7H4C96CJDZ", chunks),
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "last-event-id",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "Last-Event-ID" in response.headers["access-control-allow-headers"]
    assert "GET" in response.headers["access-control-allow-methods"]


def test_stream_response_allows_any_origin_to_read_it(api: ApiClient) -> None:
    response = get_stream(api, finished_run(api))

    assert response.headers["access-control-allow-origin"] == "*"
