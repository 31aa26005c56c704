"""Errors (spec 1.2): the envelope, the status each kind of bad input gets, and that bad input never
causes a 500. Also the limits of spec 1.5 that bodies hit, and exact JSON numbers (spec 1.4)."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.app import ApiClient, assert_error, moto_api


@pytest.fixture(scope="module")
def api() -> Iterator[ApiClient]:
    """One service for the whole module (each test sends bad input, or creates one run it
    alone looks at), so the suite does not pay for a moto table per test."""
    with moto_api() as api:
        yield api


@pytest.fixture(scope="module")
def job(api: ApiClient) -> str:
    return str(api.create_job("job")["id"])


def _post_raw(api: ApiClient, path: str, content: bytes | str | Iterator[bytes]) -> httpx.Response:
    headers = {**api.auth, "Content-Type": "application/json"}
    data = content.encode() if isinstance(content, str) else content
    return api.http.post(path, content=data, headers=headers)


# Body parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ['{"payload": ', '{"a": 1,}', "nul", "{'a': 1}", '{"a" 1}', '"unterminated'],
    ids=["truncated", "trailing-comma", "bad-literal", "single-quotes", "missing-colon", "open-string"],
)
def test_malformed_json_is_400(api: ApiClient, job: str, text: str) -> None:
    assert_error(api.trigger_raw(job, text), 400, "bad_request")


def test_body_that_is_not_utf8_is_400(api: ApiClient, job: str) -> None:
    assert_error(_post_raw(api, f"/v1/jobs/{job}/trigger", b'{"payload": "\xff\xfe"}'), 400, "bad_request")


@pytest.mark.parametrize("text", ["[]", '[{"payload": 1}]', '"a string"', "5", "true", "null"])
def test_body_that_is_not_an_object_is_422_naming_the_body(api: ApiClient, job: str, text: str) -> None:
    assert_error(api.trigger_raw(job, text), 422, "validation_failed", "body")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": "a string"}, "metadata"),
        ({"metadata": {"k": 5}}, "metadata"),
        ({"tags": ["a"]}, "tags"),
        ({"scheduled_at": 1700000000}, "scheduled_at"),
        ({"retry_backoff": "sometimes"}, "retry_backoff"),
        ({"concurrency_key": ["a"]}, "concurrency_key"),
    ],
)
def test_field_of_the_wrong_type_is_422_naming_it(
    api: ApiClient, job: str, body: dict[str, Any], field: str
) -> None:
    assert_error(api.trigger(job, body), 422, "validation_failed", field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": "5"}, "priority"),
        ({"priority": 5.0}, "priority"),
        ({"priority": True}, "priority"),
        ({"debug_mode": 1}, "debug_mode"),
        ({"debug_mode": "true"}, "debug_mode"),
        ({"debug_mode": "yes"}, "debug_mode"),
        ({"idempotency_key": 5}, "idempotency_key"),
        ({"concurrency_key": True}, "concurrency_key"),
        ({"ttl_secs": "3600"}, "ttl_secs"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_no_conversion_between_strings_numbers_and_booleans(
    api: ApiClient, job: str, body: dict[str, Any], field: str
) -> None:
    assert_error(api.trigger(job, body), 422, "validation_failed", field)


def test_string_field_of_a_job_refuses_a_number(api: ApiClient) -> None:
    body = {"slug": "numbers", "name": 5, "endpoint_url": "http://127.0.0.1:9/run"}
    response = api.http.post("/v1/jobs", json=body, headers=api.auth)
    assert_error(response, 422, "validation_failed", "name")


def test_unknown_field_in_a_trigger_is_422_naming_it(api: ApiClient, job: str) -> None:
    assert_error(api.trigger(job, {"payload": {}, "colour": "red"}), 422, "validation_failed", "colour")


def test_unknown_field_in_a_job_create_is_422_naming_it(api: ApiClient) -> None:
    body = {"slug": "extra", "name": "extra", "endpoint_url": "http://127.0.0.1:9/run", "retries": 3}
    response = api.http.post("/v1/jobs", json=body, headers=api.auth)
    assert_error(response, 422, "validation_failed", "retries")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"priority": 11}, "priority"),
        ({"priority": -1}, "priority"),
        ({"ttl_secs": 10}, "ttl_secs"),
        ({"max_attempts_override": 0}, "max_attempts_override"),
        ({"timeout_secs_override": 841}, "timeout_secs_override"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k" * 257}, "idempotency_key"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else str(value),
)
def test_out_of_range_trigger_value_is_422_naming_it(
    api: ApiClient, job: str, body: dict[str, Any], field: str
) -> None:
    assert_error(api.trigger(job, body), 422, "validation_failed", field)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 101}, "max_attempts"),
        ({"timeout_secs": 841}, "timeout_secs"),
        ({"run_ttl_secs": 59}, "run_ttl_secs"),
        ({"slug": "Has Spaces"}, "slug"),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else str(value),
)
def test_out_of_range_job_value_is_422_naming_it(api: ApiClient, fields: dict[str, Any], field: str) -> None:
    body = {"slug": "ranged", "name": "ranged", "endpoint_url": "http://127.0.0.1:9/run", **fields}
    response = api.http.post("/v1/jobs", json=body, headers=api.auth)
    assert_error(response, 422, "validation_failed", field)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_number_in_a_payload_is_422(api: ApiClient, job: str, constant: str) -> None:
    response = api.trigger_raw(job, body_with_payload('{"x": [1, ' + constant + "]}"))
    assert_error(response, 422, "validation_failed")


def body_with_payload(payload_text: str) -> str:
    """A trigger body carrying the payload exactly as written."""
    return '{"payload": ' + payload_text + "}"


def _nested(levels: int) -> str:
    """A JSON value nesting `levels` deep (an array counts one level)."""
    return "[" * levels + "1" + "]" * levels


def test_payload_nesting_64_levels_is_accepted(api: ApiClient, job: str) -> None:
    response = api.trigger_raw(job, body_with_payload(_nested(64)))

    assert response.status_code == 201, response.text
    fetched = api.http.get(f"/v1/runs/{response.json()['id']}", headers=api.auth)
    assert '"payload":' + _nested(64) in fetched.text


def test_payload_nesting_65_levels_is_422_naming_payload(api: ApiClient, job: str) -> None:
    response = api.trigger_raw(job, body_with_payload(_nested(65)))
    assert_error(response, 422, "validation_failed", "payload")


def test_bulk_item_payload_nesting_64_levels_is_accepted(api: ApiClient, job: str) -> None:
    text = '{"items": [' + body_with_payload(_nested(64)) + "]}"
    response = _post_raw(api, f"/v1/jobs/{job}/trigger/bulk", text)
    assert response.status_code == 201, response.text


def test_bulk_item_payload_nesting_65_levels_is_422(api: ApiClient, job: str) -> None:
    text = '{"items": [' + body_with_payload(_nested(65)) + "]}"
    response = _post_raw(api, f"/v1/jobs/{job}/trigger/bulk", text)
    body = assert_error(response, 422, "validation_failed")
    assert "64 levels" in body["error"]


@pytest.mark.parametrize("levels", [200, 5000, 100_000])
def test_very_deep_nesting_is_422_not_malformed(api: ApiClient, job: str, levels: int) -> None:
    response = api.trigger_raw(job, body_with_payload(_nested(levels)))
    assert_error(response, 422, "validation_failed")


# Sizes --------------------------------------------------------------------------------------


def test_request_body_over_1_mib_is_413(api: ApiClient, job: str) -> None:
    text = json.dumps({"payload": {"blob": "x" * (1024 * 1024)}})
    assert_error(api.trigger_raw(job, text), 413, "payload_too_large")


def test_streamed_request_body_over_1_mib_is_413(api: ApiClient, job: str) -> None:
    """Without a Content-Length the limit is enforced while reading."""

    def chunks() -> Iterator[bytes]:
        yield b'{"payload": "'
        for _ in range(20):
            yield b"x" * 64 * 1024
        yield b'"}'

    response = _post_raw(api, f"/v1/jobs/{job}/trigger", chunks())
    assert_error(response, 413, "payload_too_large")


def test_payload_over_256_kib_is_413_naming_payload(api: ApiClient, job: str) -> None:
    text = json.dumps({"payload": {"blob": "x" * (300 * 1024)}})
    body = assert_error(api.trigger_raw(job, text), 413, "payload_too_large", "payload")
    assert "payload" in body["error"]


def test_payload_just_under_256_kib_is_accepted(api: ApiClient, job: str) -> None:
    blob = "x" * (256 * 1024 - len('{"blob":""}'))
    response = api.trigger_raw(job, json.dumps({"payload": {"blob": blob}}))
    assert response.status_code == 201, response.text


def test_metadata_with_33_entries_is_422(api: ApiClient, job: str) -> None:
    metadata = {f"k{index}": "v" for index in range(33)}
    assert_error(api.trigger(job, {"metadata": metadata}), 422, "validation_failed", "metadata")


def test_metadata_with_32_entries_is_accepted(api: ApiClient, job: str) -> None:
    metadata = {f"k{index}": "v" for index in range(32)}
    response = api.trigger(job, {"metadata": metadata})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == metadata


@pytest.mark.parametrize("key", ["has space", "", "k" * 65, "slash/key", "é"])
def test_bad_metadata_key_is_422(api: ApiClient, job: str, key: str) -> None:
    assert_error(api.trigger(job, {"metadata": {key: "v"}}), 422, "validation_failed", "metadata")


def test_metadata_value_over_512_chars_is_422(api: ApiClient, job: str) -> None:
    response = api.trigger(job, {"metadata": {"k": "v" * 513}})
    assert_error(response, 422, "validation_failed", "metadata")


# Routes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/nothing", "/v2/runs", "/"])
def test_unknown_route_is_404(api: ApiClient, path: str) -> None:
    assert_error(api.http.get(path, headers=api.auth), 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/v1/runs"), ("PUT", "/v1/jobs")])
def test_wrong_method_on_a_known_route_is_405(api: ApiClient, method: str, path: str) -> None:
    response = api.http.request(method, path, headers=api.auth)
    assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize(
    "path", ["/v1/runs/nope", "/v1/runs/run_123", "/v1/runs/job_01JD0000000000000000000000"]
)
def test_malformed_run_id_in_a_path_is_404(api: ApiClient, path: str) -> None:
    assert_error(api.http.get(path, headers=api.auth), 404, "not_found")


def test_malformed_batch_id_in_a_path_is_404(api: ApiClient) -> None:
    assert_error(api.http.get("/v1/batches/nope", headers=api.auth), 404, "not_found")


# Optional bodies ----------------------------------------------------------------------------


def test_trigger_accepts_an_empty_body(api: ApiClient, job: str) -> None:
    response = api.http.post(f"/v1/jobs/{job}/trigger", headers=api.auth)

    assert response.status_code == 201, response.text
    assert response.json()["payload"] == {}


def test_create_job_refuses_an_empty_body(api: ApiClient) -> None:
    response = api.http.post("/v1/jobs", headers=api.auth)
    assert_error(response, 422, "validation_failed", "body")


def test_create_job_without_required_fields_names_them(api: ApiClient) -> None:
    response = api.http.post("/v1/jobs", json={}, headers=api.auth)
    assert_error(response, 422, "validation_failed", "slug", "name", "endpoint_url")


# Scheduling ---------------------------------------------------------------------------------


def test_scheduled_at_more_than_30_days_ahead_is_422(api: ApiClient, job: str) -> None:
    response = api.trigger(job, {"scheduled_at": "2026-12-28T12:00:01Z"})  # the clock: 2026-11-28 12:00
    assert_error(response, 422, "validation_failed", "scheduled_at")


def test_scheduled_at_exactly_30_days_ahead_is_accepted(api: ApiClient, job: str) -> None:
    response = api.trigger(job, {"scheduled_at": "2026-12-28T12:00:00Z"})

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "delayed"


@pytest.mark.parametrize("text", ["tomorrow", "2026-11-30", "2026-13-01T00:00:00Z", "2026-11-30T10:00:00"])
def test_scheduled_at_that_is_not_a_date_time_is_422(api: ApiClient, job: str, text: str) -> None:
    assert_error(api.trigger(job, {"scheduled_at": text}), 422, "validation_failed", "scheduled_at")


# Query parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"cursor": "%%%"},
        {"cursor": "bm90LWEtY3Vyc29y"},
        {"status": "bogus"},
        {"metadata_value": "v"},
        {"tag_value": "v"},
        {"payload_contains": "not-json"},
        {"payload_contains": "[1]"},
        {"payload_contains": '"text"'},
        {"created_after": "yesterday"},
    ],
    ids=lambda params: "&".join(f"{k}={v}" for k, v in params.items()),
)
def test_bad_run_list_query_is_400(api: ApiClient, params: dict[str, str]) -> None:
    assert_error(api.list_runs(**params), 400, "bad_request")


def test_limit_over_the_maximum_is_clamped(api: ApiClient, job: str) -> None:
    api.trigger(job)
    response = api.list_runs(limit="100000")

    assert response.status_code == 200, response.text
    assert 1 <= len(response.json()) <= 100


# Idempotency key ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Idempotency-Key", "X-Idempotency-Key"])
def test_idempotency_key_in_header_and_body_disagreeing_is_422(api: ApiClient, job: str, header: str) -> None:
    response = api.trigger(job, {"idempotency_key": "from-body"}, **{header: "from-header"})
    assert_error(response, 422, "validation_failed", "idempotency_key")


def test_idempotency_key_in_header_and_body_agreeing_is_accepted(api: ApiClient, job: str) -> None:
    response = api.trigger(job, {"idempotency_key": "agreed"}, **{"Idempotency-Key": "agreed"})

    assert response.status_code == 201, response.text
    assert response.json()["idempotency_key"] == "agreed"


def test_the_two_idempotency_headers_disagreeing_is_422(api: ApiClient, job: str) -> None:
    response = api.trigger(job, {}, **{"Idempotency-Key": "one", "X-Idempotency-Key": "two"})
    assert_error(response, 422, "validation_failed")


# Bad input never causes a 500 ---------------------------------------------------------------

ODD_BODIES = [
    "",
    " ",
    "{}",
    "[]",
    "[[]]",
    "0",
    "-0",
    "1e999999999",
    '"\\ud800"',
    "\x00",
    "\ufeff{}",
    '{"payload": 1e999999999}',
    '{"payload": -1e-999999999}',
    '{"payload": {"a": 1e400}}',
    '{"payload": 123456789012345678901234567890e-50}',
    '{"payload": 1e99999999999999999999}',
    '{"payload": ' + "9" * 5000 + "}",
    '{"priority": ' + "9" * 5000 + "}",
    '{"payload": {"\\udfff": 1}}',
    '{"payload": "\\u0000"}',
    '{"payload": "\\ud800"}',
    '{"payload": {"": null}}',
    '{"payload": {"a": {"b": [true, false, null]}}, "metadata": {}}',
    '{"payload": null}',
    '{"payload": 1, "payload": 2}',
    '{"metadata": null, "tags": null}',
    '{"metadata": {"k": null}}',
    '{"metadata": {"k": ""}}',
    '{"tags": {"k": {"nested": 1}}}',
    '{"priority": null}',
    '{"priority": 1e1}',
    '{"priority": 99999999999999999999999}',
    '{"priority": -0}',
    '{"ttl_secs": 1e400}',
    '{"scheduled_at": ""}',
    '{"scheduled_at": "0000-00-00T00:00:00Z"}',
    '{"scheduled_at": "9999-12-31T23:59:59Z"}',
    '{"scheduled_at": "0001-01-01T00:00:00+23:59"}',
    '{"scheduled_at": "2026-11-28T12:00:00.1234567890123Z"}',
    '{"idempotency_key": null}',
    '{"idempotency_key": "\\u0000"}',
    '{"retry_backoff": null}',
    '{"retry_backoff": 1}',
    '{"debug_mode": null}',
    '{"max_attempts_override": 1e2}',
    '{"retry_initial_delay_secs": -1}',
    '{"retry_max_delay_secs": 99999999999}',
    '{"__proto__": {}}',
    '{"payload": ' + '{"a":' * 70 + "1" + "}" * 70 + "}",
    "[" * 100000,
    '{"payload": "' + "\\" * 3 + '"}',
]


@pytest.mark.parametrize("text", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_trigger_body_never_causes_a_500(api: ApiClient, job: str, text: str) -> None:
    response = api.trigger_raw(job, text)

    assert response.status_code < 500, response.text
    assert response.headers["x-request-id"]
    if response.status_code >= 400:
        assert_error(response, response.status_code, response.json()["code"])


def test_unexpected_failure_is_a_500_without_internals(
    api: ApiClient, job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("secret internal detail at /var/task/straitruns")

    monkeypatch.setattr(api.services.triggers, "trigger", explode)
    client = TestClient(api.http.app, raise_server_exceptions=False)

    response = client.post(f"/v1/jobs/{job}/trigger", json={}, headers=api.auth)

    body = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "details" not in body


# Exact numbers (spec 1.4) -------------------------------------------------------------------


def test_payload_numbers_come_back_with_every_digit(api: ApiClient, job: str) -> None:
    big = "-1234567890123456789012345678901234567890"
    precise = "3.141592653589793238462643"  # 25 significant digits
    deep = _nested(59)  # inside the payload object: 60 levels
    text = body_with_payload('{"big": ' + big + ', "precise": ' + precise + ', "deep": ' + deep + "}")

    created = api.trigger_raw(job, text)

    assert created.status_code == 201, created.text
    fetched = api.http.get(f"/v1/runs/{created.json()['id']}", headers=api.auth)
    assert fetched.status_code == 200
    for fragment in (f'"big":{big}', f'"precise":{precise}', f'"deep":{deep}'):
        assert fragment in created.text
        assert fragment in fetched.text


def test_number_with_an_exponent_beyond_range_is_422(api: ApiClient, job: str) -> None:
    response = api.trigger_raw(job, '{"payload": {"n": 1e99999999999999999999}}')
    assert_error(response, 422, "validation_failed")


@pytest.mark.parametrize("text", ['{"payload": "\\ud800"}', '{"payload": {"\\udfff": 1}}'])
def test_unpaired_surrogate_escape_is_422(api: ApiClient, job: str, text: str) -> None:
    assert_error(api.trigger_raw(job, text), 422, "validation_failed")
