"""template.yaml against the code it deploys: the store's index names and key attributes, the
functions (API functions and their endpoint groups; the dispatcher and scheduler and their event
sources), the runtime, the configuration names and the layer's pins."""

import ast
import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Match

from straitruns.adapters.store import keys
from straitruns.api.app import GROUPS, create_app
from straitruns.domain.limits import TIMEOUT_SECS_RANGE
from straitruns.local.template import TableSpec, Template, load_template, table_spec
from straitruns.settings import Settings

REPO = Path(__file__).resolve().parents[2]
FUNCTION_TYPE = "AWS::Serverless::Function"
# The straitruns.entry factory each kind of function's app.py calls, by the type of its events.
HANDLER_OF_EVENT_TYPE = {
    "Api": "http_handler",
    "SQS": "sqs_dispatch_handler",
    "Schedule": "schedule_handler",
    "DynamoDB": "stream_effects_handler",
}
# A function behind a streaming API (its routes in the API's OpenAPI DefinitionBody) serves its group's
# ASGI app with uvicorn (run.sh) under the Lambda Web Adapter (docs/streams.md).
STREAM_APP_FACTORY = "asgi_app"
STREAM_HANDLER = "run.sh"
STREAMING_URI = re.compile(
    r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:lambda:path/2021-11-15/functions/"
    r"\$\{(?P<function>\w+)\.Arn\}/response-streaming-invocations"
)

# Run lists sort by creation (`csk`); the scheduler's timer index sorts by wake-up time.
SORT_ATTRIBUTE_OF = dict.fromkeys(keys.INDEX_PARTITION_ATTRIBUTE, keys.SORT_ATTRIBUTE) | {
    keys.BY_WAKE: keys.WAKE_SORT_ATTRIBUTE
}


@cache
def template() -> Template:
    return load_template()


@cache
def table() -> TableSpec:
    return table_spec(template())


def functions() -> dict[str, dict[str, Any]]:
    """Logical id -> properties of every AWS::Serverless::Function."""
    return {
        logical_id: resource.get("Properties", {})
        for logical_id, resource in template()["Resources"].items()
        if resource.get("Type") == FUNCTION_TYPE
    }


def function_property(properties: dict[str, Any], name: str) -> Any:
    """A function's property, or the template's Globals.Function default."""
    return properties.get(name, template().get("Globals", {}).get("Function", {}).get(name))


def event_types(properties: dict[str, Any]) -> set[str]:
    """The types of a function's events (Api, SQS, Schedule...)."""
    return {event.get("Type") for event in properties.get("Events", {}).values()}


def stream_routes() -> dict[str, list[tuple[str, str]]]:
    """Logical id of each function a streaming integration invokes -> its (METHOD, path) routes, read
    from the DefinitionBody of every AWS::Serverless::Api."""
    routes: dict[str, list[tuple[str, str]]] = {}
    for resource in template()["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Api":
            continue
        paths = resource["Properties"].get("DefinitionBody", {}).get("paths", {})
        for path, operations in paths.items():
            for method, operation in operations.items():
                integration = operation.get("x-amazon-apigateway-integration", {})
                match = STREAMING_URI.fullmatch(str(integration.get("uri", {}).get("Fn::Sub", "")))
                if integration.get("responseTransferMode") == "STREAM" and match:
                    routes.setdefault(match["function"], []).append((method.upper(), path))
    return routes


def api_functions() -> list[str]:
    """Logical ids of the functions API Gateway invokes (through Api events or a streaming API)."""
    return sorted(
        logical_id
        for logical_id, properties in functions().items()
        if "Api" in event_types(properties) or logical_id in stream_routes()
    )


def event_functions() -> list[str]:
    """Logical ids of the functions an event source (SQS, a schedule) invokes."""
    return sorted(set(functions()) - set(api_functions()))


def app_handler_calls(group: str) -> list[tuple[str, list[Any]]]:
    """(factory, constant arguments) of each straitruns.entry handler factory called in
    functions/<group>/app.py."""
    tree = ast.parse((REPO / "functions" / group / "app.py").read_text(encoding="utf-8"))
    return [
        (node.func.id, [arg.value for arg in node.args if isinstance(arg, ast.Constant)])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in {*HANDLER_OF_EVENT_TYPE.values(), STREAM_APP_FACTORY}
    ]


def event_properties(logical_id: str, event_type: str) -> list[dict[str, Any]]:
    """The properties of each event of `event_type` of a function."""
    return [
        event.get("Properties", {})
        for event in functions()[logical_id].get("Events", {}).values()
        if event.get("Type") == event_type
    ]


def group_of(properties: dict[str, Any]) -> str:
    """`functions/<group>/` of a function's CodeUri."""
    match = re.fullmatch(r"functions/([a-z_]+)/?", properties["CodeUri"])
    assert match, f"CodeUri {properties['CodeUri']!r} is not functions/<group>/"
    return match.group(1)


def api_events(logical_id: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every API Gateway event of a function, streaming routes included."""
    return [
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for event in functions()[logical_id].get("Events", {}).values()
        if event.get("Type") == "Api"
    ] + stream_routes().get(logical_id, [])


@cache
def every_route() -> list[tuple[str, str]]:
    """(METHOD, path) of every route of every group, as the OpenAPI document lists them."""
    document = create_app(lambda: None).openapi()  # type: ignore[arg-type,return-value]
    return [(method.upper(), path) for path, operations in document["paths"].items() for method in operations]


def serves(group: str, method: str, path: str) -> bool:
    """Whether the group's app routes METHOD path (path parameters filled with a sample) to a handler."""
    app = create_app(lambda: None, [group])  # type: ignore[arg-type,return-value]
    scope = {"type": "http", "method": method, "path": _concrete(path), "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


def group_routes(group: str) -> list[tuple[str, str]]:
    """(METHOD, path) of every documented route the group's app serves."""
    return [(method, path) for method, path in every_route() if serves(group, method, path)]


def _pattern(template_path: str) -> re.Pattern[str]:
    """An API Gateway resource path as a regex: `{name}` is one segment, `{name+}` the rest."""
    parts = re.split(r"({[^}]+})", template_path)
    regex = "".join(
        ".+" if part.endswith("+}") else "[^/]+" if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "sample_id", path)


def _reaches(events: list[tuple[str, str]], method: str, path: str) -> bool:
    return any(
        event_method in (method, "ANY") and _pattern(event_path).fullmatch(_concrete(path))
        for event_method, event_path in events
    )


# --- the table -----------------------------------------------------------------------------


def test_store_indexes_are_the_template_indexes() -> None:
    assert sorted(keys.INDEX_PARTITION_ATTRIBUTE) == sorted(table().index_names)


@pytest.mark.parametrize("index_name", sorted(keys.INDEX_PARTITION_ATTRIBUTE))
def test_index_keys_match_the_store_attributes(index_name: str) -> None:
    key_schema = {
        element.key_type: element.attribute_name for element in table().index(index_name).key_schema
    }

    assert key_schema == {
        "HASH": keys.INDEX_PARTITION_ATTRIBUTE[index_name],
        "RANGE": SORT_ATTRIBUTE_OF[index_name],
    }


def test_every_index_name_constant_is_a_template_index() -> None:
    constants = {value for name, value in vars(keys).items() if name.startswith("BY_")}

    assert constants <= set(table().index_names)


def test_index_key_attributes_are_declared_as_strings() -> None:
    declared = {definition.name: definition.type for definition in table().attribute_definitions}
    used = {*keys.INDEX_PARTITION_ATTRIBUTE.values(), *SORT_ATTRIBUTE_OF.values()}

    assert {name: declared.get(name) for name in used} == dict.fromkeys(used, "S")


def test_ttl_attribute_is_the_store_expiry_attribute() -> None:
    assert table().ttl_attribute == keys.TTL_ATTRIBUTE


# --- the functions -------------------------------------------------------------------------


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_function_code_is_an_app_of_functions(logical_id: str) -> None:
    properties = functions()[logical_id]
    app_file = REPO / "functions" / group_of(properties) / "app.py"

    streamed = logical_id in stream_routes()
    assert function_property(properties, "Handler") == (STREAM_HANDLER if streamed else "app.handler")
    assert app_file.is_file(), f"{logical_id} points to {app_file}, which does not exist"


@pytest.mark.parametrize("logical_id", api_functions())
def test_api_function_code_is_an_endpoint_group(logical_id: str) -> None:
    group = group_of(functions()[logical_id])

    assert group in GROUPS, f"{group} is not an endpoint group of straitruns.api.app.GROUPS"


@pytest.mark.parametrize("logical_id", api_functions())
def test_api_function_app_serves_its_own_group(logical_id: str) -> None:
    group = group_of(functions()[logical_id])

    calls = app_handler_calls(group)

    if logical_id in stream_routes():
        assert calls == [(STREAM_APP_FACTORY, [group])], (
            f"functions/{group}/app.py must be `app = asgi_app({group!r})`"
        )
        return
    assert calls == [("http_handler", [group])], (
        f"functions/{group}/app.py must be `handler = http_handler({group!r})`"
    )


@pytest.mark.parametrize("logical_id", event_functions())
def test_event_function_app_calls_the_handler_of_its_event_source(logical_id: str) -> None:
    properties = functions()[logical_id]
    group = group_of(properties)
    types = event_types(properties)
    assert len(types) == 1, f"{logical_id} mixes event types {sorted(types)}"
    expected = HANDLER_OF_EVENT_TYPE.get(types.pop())

    calls = app_handler_calls(group)

    assert calls == [(expected, [])], f"functions/{group}/app.py must be `handler = {expected}()`"


def test_dispatcher_function_takes_run_queue_batches_reporting_item_failures() -> None:
    sqs_events = event_properties("DispatcherFunction", "SQS")

    assert [event["Queue"] for event in sqs_events] == [{"Fn::GetAtt": ["RunQueue", "Arn"]}]
    assert sqs_events[0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= sqs_events[0].get("BatchSize", 10) <= 10


def test_scheduler_function_runs_on_a_schedule_one_at_a_time() -> None:
    schedules = event_properties("SchedulerFunction", "Schedule")

    assert [event["Schedule"] for event in schedules] == ["rate(1 minute)"]
    assert functions()["SchedulerFunction"].get("ReservedConcurrentExecutions") == 1


def test_dispatcher_outlasts_the_longest_attempt_and_the_queue_hides_a_message_as_long() -> None:
    timeout = function_property(functions()["DispatcherFunction"], "Timeout")
    visibility = template()["Resources"]["RunQueue"]["Properties"]["VisibilityTimeout"]

    assert timeout > TIMEOUT_SECS_RANGE[1]
    assert visibility >= timeout, "Lambda refuses an SQS source whose visibility timeout is shorter"


def test_every_endpoint_group_is_deployed() -> None:
    deployed = {group_of(functions()[logical_id]) for logical_id in api_functions()}

    assert set(GROUPS) <= deployed


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_function_runtime_is_python_3_12(logical_id: str) -> None:
    assert function_property(functions()[logical_id], "Runtime") == "python3.12"


@pytest.mark.parametrize("logical_id", api_functions())
def test_every_route_of_a_group_is_reachable_through_its_function(logical_id: str) -> None:
    properties = functions()[logical_id]
    events = api_events(logical_id)
    routes = group_routes(group_of(properties))
    assert routes, f"the group of {logical_id} serves no documented route"

    unreachable = [f"{method} {path}" for method, path in routes if not _reaches(events, method, path)]

    assert unreachable == [], f"API Gateway sends these to no event of {logical_id}"


@pytest.mark.parametrize("logical_id", api_functions())
def test_every_api_event_of_a_function_reaches_a_route_of_its_group(logical_id: str) -> None:
    properties = functions()[logical_id]
    group = group_of(properties)

    orphans = [
        f"{method} {path}"
        for method, path in api_events(logical_id)
        if "+}" not in path and method != "ANY" and not serves(group, method, path)
    ]

    assert orphans == [], f"{logical_id} routes these to an app that does not serve them"


def test_every_documented_route_is_served_by_some_group() -> None:
    unserved = [
        f"{method} {path}"
        for method, path in every_route()
        if not any(serves(group, method, path) for group in GROUPS)
    ]

    assert unserved == []


# --- configuration and dependencies --------------------------------------------------------


def test_every_strait_variable_of_the_template_is_a_setting() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    settings = {f"STRAIT_{name.upper()}" for name in Settings.model_fields}

    assert {name for name in variables if name.startswith("STRAIT_")} - settings == set()


def test_functions_talk_to_aws_in_their_own_region() -> None:
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]

    assert variables.get("STRAIT_REGION") == {"Ref": "AWS::Region"}


def _requirement(line: str) -> str:
    """`Name==1.2` with the name normalised (PEP 503), so spelling differences do not count."""
    name, _, version = line.strip().partition("==")
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version.strip()}"


def test_layer_requirements_pin_the_project_dependencies() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = (REPO / "layers" / "shared" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    layer = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]

    assert all("==" in line for line in layer), "every layer requirement is pinned with =="
    assert sorted(map(_requirement, layer)) == sorted(map(_requirement, project["dependencies"]))


# --- the streams (spec 7, docs/streams.md) -----------------------------------------------------


def test_stream_routes_are_served_by_the_stream_function_and_group() -> None:
    streams = ["/v1/runs/{runID}/stream", "/v1/runs/{runID}/stream/chunks"]

    assert stream_routes() == {
        "RunsStreamFunction": [(method, path) for path in streams for method in ("GET", "OPTIONS")]
    }
    assert group_of(functions()["RunsStreamFunction"]) == "runs_stream"


def test_stream_api_is_regional() -> None:
    api = template()["Resources"]["StreamApi"]["Properties"]

    assert api["EndpointConfiguration"]["Type"] == "REGIONAL"


def test_stream_function_runs_under_the_web_adapter_in_streaming_mode() -> None:
    properties = functions()["RunsStreamFunction"]
    variables = properties["Environment"]["Variables"]
    run_sh = REPO / "functions" / "runs_stream" / STREAM_HANDLER

    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert variables["PORT"]
    assert '--port "${PORT' in run_sh.read_text(encoding="utf-8")
    assert run_sh.stat().st_mode & 0o111, "run.sh must be executable"
    assert "LambdaAdapterLayerArm64" in str(properties["Layers"])


def test_stream_function_outlasts_a_connection_and_has_reserved_concurrency() -> None:
    properties = functions()["RunsStreamFunction"]
    bound = float(properties["Environment"]["Variables"]["STRAIT_SSE_MAX_CONNECTION_SECS"])

    assert function_property(properties, "Timeout") > bound
    assert bound < 15 * 60, "API Gateway ends a streamed response after 15 minutes"
    assert "ReservedConcurrentExecutions" in properties


def test_api_gateway_may_invoke_the_stream_function() -> None:
    permissions = [
        resource["Properties"]
        for resource in template()["Resources"].values()
        if resource.get("Type") == "AWS::Lambda::Permission"
    ]

    assert [(p["FunctionName"], p["Principal"]) for p in permissions] == [
        ({"Ref": "RunsStreamFunction"}, "apigateway.amazonaws.com")
    ]
    assert "${StreamApi}" in permissions[0]["SourceArn"]["Fn::Sub"]
