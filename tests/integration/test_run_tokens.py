"""Run tokens on the in-run plane (spec 1.1): each check, and their order — forged or expired 401,
another run's token 403 (without looking the run up), missing run 404, terminal run 410, stale
generation 401, a call the status does not accept 409."""

from datetime import timedelta

import jwt
import pytest

from straitruns.adapters.tokens import RUN_TOKEN_ISSUER
from straitruns.domain.ids import IdKind
from straitruns.domain.statuses import RunStatus
from tests.support.app import ApiClient
from tests.support.in_run import Sdk, run_token, start_run

OTHER_SECRET = "another-run-token-secret-0123456789abcdef"


def _status(response: object) -> tuple[int, str]:
    status = response.status_code  # type: ignore[attr-defined]
    return status, response.json()["code"]  # type: ignore[attr-defined]


def _claims(api: ApiClient, run_id: str, **changes: object) -> dict[str, object]:
    now = api.clock.now()
    claims: dict[str, object] = {
        "iss": RUN_TOKEN_ISSUER,
        "sub": run_id,
        "attempt": 1,
        "gen": 1,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(changes)
    return claims


def _signed(api: ApiClient, claims: dict[str, object], secret: str | None = None) -> str:
    return jwt.encode(claims, secret or api.services.settings.run_token_secret, algorithm="HS256")


def test_valid_token_of_an_executing_run_is_accepted(api: ApiClient) -> None:
    _, sdk = start_run(api)

    assert sdk.post("log", {"message": "hello"}).status_code == 201


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-jwt", "Basic dXNlcjpwYXNz"],
    ids=["missing", "empty", "malformed", "not-bearer"],
)
def test_missing_or_malformed_token_is_401(api: ApiClient, authorization: str | None) -> None:
    run, _ = start_run(api)
    headers = {"Authorization": authorization} if authorization else {}

    response = api.http.post(f"/sdk/v1/runs/{run.id}/log", json={"message": "x"}, headers=headers)

    assert _status(response) == (401, "authentication_required")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_signed_with_another_key_is_401(api: ApiClient) -> None:
    run, _ = start_run(api)
    forged = Sdk(api.http, run.id, run_token(api.services, run, secret=OTHER_SECRET))

    assert _status(forged.post("log", {"message": "x"})) == (401, "authentication_required")


def test_token_of_another_issuer_is_401(api: ApiClient) -> None:
    run, _ = start_run(api)
    sse_like = _signed(api, _claims(api, run.id, iss="strait:sse-token", gen=run.generation))

    assert _status(Sdk(api.http, run.id, sse_like).post("log", {"message": "x"}))[0] == 401


def test_expired_token_is_401(api: ApiClient) -> None:
    _, sdk = start_run(api)
    api.clock.advance(3600)  # past the attempt's deadline and the grace period

    assert _status(sdk.post("log", {"message": "x"})) == (401, "authentication_required")


def test_token_without_a_generation_is_401(api: ApiClient) -> None:
    run, _ = start_run(api)
    claims = _claims(api, run.id)
    del claims["gen"]

    assert _status(Sdk(api.http, run.id, _signed(api, claims)).post("log", {"message": "x"}))[0] == 401


def test_token_of_another_run_is_403_without_reading_the_run(api: ApiClient) -> None:
    _, sdk = start_run(api)
    other, _ = start_run(api)
    reads_before = api.services.table.meter.calls

    response = api.http.post(f"/sdk/v1/runs/{other.id}/log", json={"message": "x"}, headers=sdk.headers)

    assert _status(response) == (403, "forbidden")
    assert api.services.table.meter.calls == reads_before, "the path's run was looked up"


def test_token_of_another_run_on_a_malformed_path_id_is_403(api: ApiClient) -> None:
    _, sdk = start_run(api)

    response = api.http.get("/sdk/v1/runs/run_nope/payload", headers=sdk.headers)

    assert _status(response) == (403, "forbidden")


def test_token_of_a_run_that_does_not_exist_is_404(api: ApiClient) -> None:
    missing = api.services.ids.new(IdKind.RUN)
    token = _signed(api, _claims(api, missing))

    assert _status(Sdk(api.http, missing, token).post("log", {"message": "x"})) == (404, "not_found")


@pytest.mark.parametrize("ending", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELED])
def test_terminal_run_is_410_for_every_call(api: ApiClient, ending: RunStatus) -> None:
    run, sdk = start_run(api)
    api.services.state.change(run, ending, "test", finished_at=api.clock.now())

    for response in (sdk.post("log", {"message": "x"}), sdk.get("payload"), sdk.post("complete")):
        assert _status(response) == (410, "gone")


def test_terminal_run_is_410_even_for_a_stale_token(api: ApiClient) -> None:
    run, _ = start_run(api)
    stale = Sdk(api.http, run.id, run_token(api.services, run, generation=run.generation - 1))
    api.services.state.change(run, RunStatus.COMPLETED, "test", finished_at=api.clock.now())

    assert _status(stale.post("log", {"message": "x"})) == (410, "gone")


def test_token_of_an_older_generation_is_401(api: ApiClient) -> None:
    run, _ = start_run(api)
    stale = Sdk(api.http, run.id, run_token(api.services, run, generation=run.generation - 1))

    response = stale.post("log", {"message": "x"})

    assert _status(response) == (401, "authentication_required")
    assert "stale" in response.json()["error"]


def test_token_of_a_restarted_attempt_is_401(api: ApiClient) -> None:
    # Given an executing run, put back in the queue with a new generation (restart) and claimed again
    run, sdk = start_run(api)
    requeued = api.services.state.change(run, RunStatus.QUEUED, "restart", generation=run.generation + 1)
    assert requeued.generation == run.generation + 1

    # Then the first attempt's token is stale
    assert _status(sdk.post("log", {"message": "x"}))[0] == 401


def test_stale_token_is_401_before_a_refused_status(api: ApiClient) -> None:
    run, _ = start_run(api)
    paused = api.services.state.change(run, RunStatus.PAUSED, "test")
    stale = Sdk(api.http, run.id, run_token(api.services, paused, generation=paused.generation - 1))

    assert _status(stale.post("complete"))[0] == 401


def test_call_the_status_does_not_accept_is_409(api: ApiClient) -> None:
    run, sdk = start_run(api)
    api.services.state.change(run, RunStatus.PAUSED, "test")

    response = sdk.post("complete")

    assert _status(response) == (409, "conflict")
    assert "paused" in response.json()["error"]


def test_forged_token_is_401_before_the_body_is_read(api: ApiClient) -> None:
    run, _ = start_run(api)
    forged = {"Authorization": f"Bearer {run_token(api.services, run, secret=OTHER_SECRET)}"}

    response = api.http.post(
        f"/sdk/v1/runs/{run.id}/log",
        content=b"{not json",
        headers={**forged, "Content-Type": "application/json"},
    )

    assert response.status_code == 401


def test_another_runs_token_is_403_before_a_bad_body(api: ApiClient) -> None:
    _, sdk = start_run(api)
    other, _ = start_run(api)

    response = api.http.post(f"/sdk/v1/runs/{other.id}/log", json={"level": 5}, headers=sdk.headers)

    assert response.status_code == 403


def test_api_key_is_not_a_run_token(api: ApiClient) -> None:
    run, _ = start_run(api)

    response = api.http.post(f"/sdk/v1/runs/{run.id}/log", json={"message": "x"}, headers=api.auth)

    assert response.status_code == 401
