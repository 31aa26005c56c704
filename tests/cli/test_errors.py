"""Failures are one message and an exit code: 1 for the API or the network, 2 for usage. Never a
traceback."""

import httpx
import pytest

from strait_runs_cli.main import main
from tests.cli.fake_api import FakeApi, error_response


def test_an_api_error_exits_1_with_its_message_code_and_request_id() -> None:
    api = FakeApi()
    api.on(
        "GET", "/v1/runs/run_1", error_response(401, "invalid API key", "authentication_required", "req_42")
    )

    result = api.invoke("runs", "get", "run_1")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: invalid API key (HTTP 401 authentication_required, request id req_42)"
    )
    assert "Traceback" not in result.output


def test_a_validation_error_lists_its_details_under_the_message() -> None:
    api = FakeApi()
    body = {
        "error": "invalid body",
        "message": "invalid body",
        "code": "validation_failed",
        "request_id": "req_7",
        "details": [{"field": "scheduled_at", "error": "more than 30 days ahead"}],
    }
    api.on("POST", "/v1/runs/run_1/reschedule", httpx.Response(422, json=body))

    result = api.invoke("runs", "reschedule", "run_1", "--at", "2030-01-01T00:00:00Z")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: invalid body (HTTP 422 validation_failed, request id req_7)",
        "  scheduled_at: more than 30 days ahead",
    ]


def test_an_unreachable_api_exits_1_with_one_line() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    api = FakeApi()
    api.on("GET", "/v1/runs/run_1", refuse)

    result = api.invoke("runs", "get", "run_1")

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: cannot reach the API at http://api.test: [Errno 111] Connection refused"
    ]


def test_a_proxy_page_instead_of_json_exits_1_with_an_excerpt() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs/run_1", httpx.Response(502, text="<html>Bad Gateway</html>"))

    result = api.invoke("runs", "get", "run_1")

    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: <html>Bad Gateway</html> (HTTP 502)"


def test_terminal_escape_sequences_in_an_api_message_are_shown_not_obeyed() -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs/run_1", error_response(404, "run \x1b[2Jnot found\nsecond line", "not_found"))

    result = api.invoke("runs", "get", "run_1")

    assert "\x1b" not in result.stderr
    assert "run \\x1b[2Jnot found\\x0asecond line" in result.stderr


def test_a_run_id_stays_one_path_segment() -> None:
    api = FakeApi()

    api.invoke("runs", "get", "../jobs")

    [request] = api.requests
    assert request.url.raw_path == b"/v1/runs/..%2Fjobs"


def test_no_api_key_is_a_usage_error_that_says_how_to_give_one() -> None:
    api = FakeApi()

    result = api.invoke("runs", "get", "run_1", env={"STRAIT_API_KEY": ""})

    assert result.exit_code == 2
    assert "no API key: pass --api-key, set STRAIT_API_KEY" in result.stderr
    assert api.requests == []


def test_an_api_url_that_is_not_http_is_a_usage_error() -> None:
    result = FakeApi().invoke("--api-url", "localhost:8080", "runs", "get", "run_1")

    assert result.exit_code == 2
    assert "must be an http:// or https:// URL" in result.stderr


def test_an_unknown_option_is_a_usage_error() -> None:
    result = FakeApi().invoke("runs", "list", "--bogus")

    assert result.exit_code == 2
    assert "No such option '--bogus'" in result.stderr


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--help"], 0),
        (["runs", "list", "--bogus"], 2),
        (["--api-url", "http://127.0.0.1:1", "--api-key", "strait_x", "runs", "get", "run_1"], 1),
    ],
)
def test_the_console_script_exits_with_the_same_codes(
    args: list[str], code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(args)

    assert exited.value.code == code
    assert "Traceback" not in capsys.readouterr().err
