"""Read the table, queue and function definitions from template.yaml, their single source of truth.

The local stack and the tests build DynamoDB Local and the SQS queues from the specs returned here,
and the local event sources play the functions' events as declared here, so an index, a queue
setting or an event source property is declared once, in the template, and nowhere else.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from straitruns.local.event_filters import FilterPattern, FilterPatternError, parse_pattern

TEMPLATE_ENV = "STRAIT_TEMPLATE"

# SQS's own defaults: CloudFormation leaves an omitted attribute at these values, so do we.
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30
SQS_DEFAULT_MESSAGE_RETENTION_PERIOD = 345_600

# The account moto reports in the local queues' ARNs; the local functions' ARNs name the same one.
LOCAL_ACCOUNT_ID = "123456789012"
# Lambda's own defaults for a function that sets neither property, nor has it in Globals.
LAMBDA_DEFAULT_TIMEOUT_SECS = 3
LAMBDA_DEFAULT_MEMORY_MB = 128
# Lambda's defaults and bounds for a DynamoDB Streams event source mapping.
STREAM_DEFAULT_BATCH_SIZE = 100
STREAM_MAX_BATCH_SIZE = 10_000
STREAM_MAX_RETRY_ATTEMPTS = 10_000
STREAM_INFINITE_RETRIES = -1

Template = dict[str, Any]
KeyType = Literal["HASH", "RANGE"]
ProjectionType = Literal["ALL", "KEYS_ONLY", "INCLUDE"]
AttributeType = Literal["S", "N", "B"]
StreamViewType = Literal["KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES"]
StartingPosition = Literal["TRIM_HORIZON", "LATEST"]

_KEY_TYPES: dict[str, KeyType] = {"HASH": "HASH", "RANGE": "RANGE"}
_PROJECTION_TYPES: dict[str, ProjectionType] = {"ALL": "ALL", "KEYS_ONLY": "KEYS_ONLY", "INCLUDE": "INCLUDE"}
_ATTRIBUTE_TYPES: dict[str, AttributeType] = {"S": "S", "N": "N", "B": "B"}
_STREAM_VIEW_TYPES: dict[str, StreamViewType] = {
    "KEYS_ONLY": "KEYS_ONLY",
    "NEW_IMAGE": "NEW_IMAGE",
    "OLD_IMAGE": "OLD_IMAGE",
    "NEW_AND_OLD_IMAGES": "NEW_AND_OLD_IMAGES",
}
_STARTING_POSITIONS: dict[str, StartingPosition] = {"TRIM_HORIZON": "TRIM_HORIZON", "LATEST": "LATEST"}
_FUNCTION_TYPE = "AWS::Serverless::Function"
_SQS_BATCH_MAX = 10
# Event source mapping properties that change what is delivered, and that the local stream event
# source does not play: a template setting one fails loudly instead of being played differently.
_UNPLAYED_STREAM_PROPERTIES = (
    "MaximumBatchingWindowInSeconds",
    "MaximumRecordAgeInSeconds",
    "ParallelizationFactor",
    "StartingPositionTimestamp",
    "TumblingWindowInSeconds",
)


class TemplateError(ValueError):
    """The template lacks a resource or property the local stack needs, or holds one in a shape
    this module cannot read."""


@dataclass(frozen=True, slots=True)
class AttributeDefinition:
    name: str
    type: AttributeType


@dataclass(frozen=True, slots=True)
class KeyElement:
    attribute_name: str
    key_type: KeyType


@dataclass(frozen=True, slots=True)
class Projection:
    projection_type: ProjectionType
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GlobalSecondaryIndex:
    name: str
    key_schema: tuple[KeyElement, ...]
    projection: Projection


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A DynamoDB table as the template declares it."""

    attribute_definitions: tuple[AttributeDefinition, ...]
    key_schema: tuple[KeyElement, ...]
    global_secondary_indexes: tuple[GlobalSecondaryIndex, ...]
    ttl_attribute: str | None
    # The table's stream (its StreamSpecification), None when it declares none.
    stream_view_type: StreamViewType | None = None

    @property
    def index_names(self) -> tuple[str, ...]:
        return tuple(index.name for index in self.global_secondary_indexes)

    def index(self, name: str) -> GlobalSecondaryIndex:
        """Return the index called `name`; raise KeyError if the table declares none by that name."""
        for index in self.global_secondary_indexes:
            if index.name == name:
                return index
        raise KeyError(f"the table declares no index {name!r} (it has {', '.join(self.index_names)})")


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One SQS queue as the template declares it (SQS defaults filled in)."""

    logical_id: str
    visibility_timeout: int
    message_retention_period: int


@dataclass(frozen=True, slots=True)
class QueueSpecs:
    """The run queue, the dead-letter queue its redrive policy targets, the receive count after
    which a message moves there, and the queue the effects function's stream event source sends
    the records it discards to (None when the template declares no such function)."""

    run_queue: QueueSpec
    dead_letter_queue: QueueSpec
    max_receive_count: int
    effects_failure_queue: QueueSpec | None = None


@dataclass(frozen=True, slots=True)
class LambdaFunction:
    """A function of the template, as a local invocation presents it to the handler."""

    logical_id: str
    name: str
    timeout_secs: int
    memory_mb: int

    def arn(self, region: str) -> str:
        return f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{self.name}"


@dataclass(frozen=True, slots=True)
class SqsEventSource:
    """A function's SQS event: which queue, how many messages a batch holds, and whether the
    function reports partial batch failures."""

    function: LambdaFunction
    queue_logical_id: str
    batch_size: int
    report_batch_item_failures: bool


@dataclass(frozen=True, slots=True)
class ScheduleEventSource:
    """A function's EventBridge schedule event."""

    function: LambdaFunction
    rule_name: str
    schedule: str

    def rule_arn(self, region: str) -> str:
        return f"arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{self.rule_name}"


@dataclass(frozen=True, slots=True)
class DynamoDBStreamEventSource:
    """A function's DynamoDB Streams event (its event source mapping), Lambda's defaults filled in.

    `maximum_retry_attempts` is STREAM_INFINITE_RETRIES (-1) for "until the record expires";
    `filter_patterns` are the FilterCriteria's patterns (a record passes if any matches, or if
    there are none); `on_failure_queue_logical_id` is the SQS queue of DestinationConfig.OnFailure.
    """

    function: LambdaFunction
    event_id: str
    table_logical_id: str
    batch_size: int
    starting_position: StartingPosition
    bisect_batch_on_function_error: bool
    maximum_retry_attempts: int
    report_batch_item_failures: bool
    filter_patterns: tuple[FilterPattern, ...]
    on_failure_queue_logical_id: str | None


class CloudFormationLoader(yaml.SafeLoader):
    """A SafeLoader that reads CloudFormation short-form intrinsics as their long form:
    `!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]}, `!Sub s` -> {"Fn::Sub": s}."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    key = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        scalar = loader.construct_scalar(node)
        # Logical ids cannot contain dots, so the first dot separates the resource from the attribute.
        return {key: scalar.split(".", 1) if tag_suffix == "GetAtt" else scalar}
    if isinstance(node, yaml.SequenceNode):
        return {key: loader.construct_sequence(node, deep=True)}
    if isinstance(node, yaml.MappingNode):
        return {key: loader.construct_mapping(node, deep=True)}
    raise TemplateError(f"cannot read !{tag_suffix} at {node.start_mark}")


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def repo_root() -> Path:
    """The repository this package is checked out in (layers/shared/straitruns/local -> repo)."""
    return Path(__file__).resolve().parents[4]


def template_path() -> Path:
    """The template to read: `$STRAIT_TEMPLATE` if set, else template.yaml at the repository root."""
    configured = os.environ.get(TEMPLATE_ENV)
    return Path(configured) if configured else repo_root() / "template.yaml"


def parse_template(text: str) -> Template:
    """Parse template text; raise TemplateError if it is not YAML or has no Resources mapping."""
    try:
        # Safe despite yaml.load: CloudFormationLoader is a SafeLoader with only the intrinsic tags added.
        document = yaml.load(text, Loader=CloudFormationLoader)
    except yaml.YAMLError as error:
        raise TemplateError(f"the template is not valid YAML: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError("the template has no Resources mapping")
    return document


def load_template(path: Path | str | None = None) -> Template:
    """Read and parse the template at `path` (default: template_path()).

    Raises FileNotFoundError if the file is missing and TemplateError if it cannot be parsed.
    """
    return parse_template(Path(path or template_path()).read_text(encoding="utf-8"))


def table_spec(template: Template, logical_id: str = "RunsTable") -> TableSpec:
    """The DynamoDB table declared as `logical_id`: attributes, keys, GSIs and TTL attribute
    (None when TTL is absent or disabled). Raises TemplateError if it is missing or malformed."""
    properties = _properties(template, logical_id, "AWS::DynamoDB::Table")
    where = f"{logical_id}.Properties"
    return TableSpec(
        attribute_definitions=tuple(
            _attribute_definition(item, f"{where}.AttributeDefinitions[{n}]")
            for n, item in enumerate(
                _sequence(properties.get("AttributeDefinitions"), f"{where}.AttributeDefinitions")
            )
        ),
        key_schema=_key_schema(properties.get("KeySchema"), f"{where}.KeySchema"),
        global_secondary_indexes=tuple(
            _global_secondary_index(item, f"{where}.GlobalSecondaryIndexes[{n}]")
            for n, item in enumerate(
                _sequence(properties.get("GlobalSecondaryIndexes", []), f"{where}.GlobalSecondaryIndexes")
            )
        ),
        ttl_attribute=_ttl_attribute(
            properties.get("TimeToLiveSpecification"), f"{where}.TimeToLiveSpecification"
        ),
        stream_view_type=_stream_view_type(
            properties.get("StreamSpecification"), f"{where}.StreamSpecification"
        ),
    )


def queue_specs(
    template: Template, run_queue_logical_id: str = "RunQueue", effects_function_id: str = "EffectsFunction"
) -> QueueSpecs:
    """The run queue, the dead-letter queue its RedrivePolicy targets (found through the policy's
    `!GetAtt <Queue>.Arn`), and the on-failure queue of `effects_function_id`'s DynamoDB event, if
    the template declares that function. Raises TemplateError if one is missing or malformed."""
    properties = _properties(template, run_queue_logical_id, "AWS::SQS::Queue")
    where = f"{run_queue_logical_id}.Properties.RedrivePolicy"
    redrive = _mapping(properties.get("RedrivePolicy"), where)
    target = redrive.get("deadLetterTargetArn")
    if not (
        isinstance(target, dict)
        and isinstance(target.get("Fn::GetAtt"), list)
        and len(target["Fn::GetAtt"]) == 2
        and target["Fn::GetAtt"][1] == "Arn"
    ):
        raise TemplateError(
            f"{where}.deadLetterTargetArn must be !GetAtt <QueueLogicalId>.Arn, got {target!r}"
        )
    dead_letter_logical_id = _string(target["Fn::GetAtt"][0], f"{where}.deadLetterTargetArn")
    return QueueSpecs(
        run_queue=_queue_spec(template, run_queue_logical_id),
        dead_letter_queue=_queue_spec(template, dead_letter_logical_id),
        max_receive_count=_integer(redrive.get("maxReceiveCount"), f"{where}.maxReceiveCount"),
        effects_failure_queue=_effects_failure_queue(template, effects_function_id),
    )


def _effects_failure_queue(template: Template, function_id: str) -> QueueSpec | None:
    if function_id not in template.get("Resources", {}):
        return None
    queue_id = dynamodb_stream_event_source(template, function_id).on_failure_queue_logical_id
    if queue_id is None:
        raise TemplateError(f"{function_id}'s DynamoDB event has no DestinationConfig.OnFailure queue")
    return _queue_spec(template, queue_id)


# --- the functions and their event sources ---------------------------------------------------------


def sqs_event_source(
    template: Template, function_id: str, queue_id: str, name_prefix: str = "strait-runs"
) -> SqsEventSource:
    """The SQS event of `function_id` on the queue `queue_id`. Raises TemplateError if there is none."""
    function = lambda_function(template, function_id, name_prefix)
    for properties in _events(template, function_id, "SQS").values():
        if properties.get("Queue") != {"Fn::GetAtt": [queue_id, "Arn"]}:
            continue
        batch_size = properties.get("BatchSize", _SQS_BATCH_MAX)
        if not isinstance(batch_size, int) or not 1 <= batch_size <= _SQS_BATCH_MAX:
            raise TemplateError(f"{function_id}: the SQS BatchSize must be 1..{_SQS_BATCH_MAX} locally")
        return SqsEventSource(
            function=function,
            queue_logical_id=queue_id,
            batch_size=batch_size,
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
        )
    raise TemplateError(f"{function_id} has no SQS event on {queue_id}")


def schedule_event_source(
    template: Template, function_id: str, name_prefix: str = "strait-runs"
) -> ScheduleEventSource:
    """The (first) Schedule event of `function_id`, its rule named `<name_prefix>-<function id><event
    id>` as SAM names it (minus the suffix). Raises TemplateError if there is none."""
    function = lambda_function(template, function_id, name_prefix)
    for event_id, properties in _events(template, function_id, "Schedule").items():
        rule_name = f"{name_prefix}-{function_id}{event_id}"
        return ScheduleEventSource(function, rule_name, str(properties.get("Schedule", "")))
    raise TemplateError(f"{function_id} has no Schedule event")


def dynamodb_stream_event_source(
    template: Template, function_id: str, event_id: str | None = None, name_prefix: str = "strait-runs"
) -> DynamoDBStreamEventSource:
    """The DynamoDB event `event_id` of `function_id` (default: its only one), with Lambda's defaults
    for what it leaves out. Raises TemplateError if there is none, if its Stream is not
    `!GetAtt <Table>.StreamArn`, if a property is out of Lambda's bounds or a filter pattern is not
    one Lambda accepts, or if it sets a property the local stream event source does not play."""
    function = lambda_function(template, function_id, name_prefix)
    events = _events(template, function_id, "DynamoDB")
    if event_id is None and len(events) > 1:
        raise TemplateError(f"{function_id} has {len(events)} DynamoDB events: name one")
    chosen = event_id if event_id is not None else next(iter(events), None)
    if chosen is None or chosen not in events:
        raise TemplateError(f"{function_id} has no DynamoDB event {chosen or ''}".rstrip())
    properties = events[chosen]
    where = f"{function_id}.Events.{chosen}.Properties"
    unplayed = [name for name in _UNPLAYED_STREAM_PROPERTIES if name in properties]
    if unplayed or properties.get("Enabled", True) is not True:
        raise TemplateError(f"{where}: the local stream event source does not play {unplayed or ['Enabled']}")
    batch_size = _integer(properties.get("BatchSize", STREAM_DEFAULT_BATCH_SIZE), f"{where}.BatchSize")
    retries = _signed_integer(
        properties.get("MaximumRetryAttempts", STREAM_INFINITE_RETRIES), f"{where}.MaximumRetryAttempts"
    )
    if not 1 <= batch_size <= STREAM_MAX_BATCH_SIZE:
        raise TemplateError(f"{where}.BatchSize must be 1..{STREAM_MAX_BATCH_SIZE}, got {batch_size}")
    if not STREAM_INFINITE_RETRIES <= retries <= STREAM_MAX_RETRY_ATTEMPTS:
        raise TemplateError(
            f"{where}.MaximumRetryAttempts must be -1..{STREAM_MAX_RETRY_ATTEMPTS}, got {retries}"
        )
    return DynamoDBStreamEventSource(
        function=function,
        event_id=chosen,
        table_logical_id=_get_att_target(properties.get("Stream"), "StreamArn", f"{where}.Stream"),
        batch_size=batch_size,
        starting_position=_choice(
            properties.get("StartingPosition"), _STARTING_POSITIONS, f"{where}.StartingPosition"
        ),
        bisect_batch_on_function_error=_boolean(
            properties.get("BisectBatchOnFunctionError", False), f"{where}.BisectBatchOnFunctionError"
        ),
        maximum_retry_attempts=retries,
        report_batch_item_failures="ReportBatchItemFailures"
        in _sequence(properties.get("FunctionResponseTypes", []), f"{where}.FunctionResponseTypes"),
        filter_patterns=_filter_patterns(properties.get("FilterCriteria"), f"{where}.FilterCriteria"),
        on_failure_queue_logical_id=_on_failure_queue(
            template, properties.get("DestinationConfig"), f"{where}.DestinationConfig"
        ),
    )


def lambda_function(template: Template, logical_id: str, name_prefix: str = "strait-runs") -> LambdaFunction:
    """A function's timeout and memory (its own, else the Globals', else Lambda's defaults), named
    `<name_prefix>-<logical id>` (deployed, SAM adds the stack name and a suffix instead)."""
    properties = _function_properties(template, logical_id)
    defaults = template.get("Globals", {}).get("Function", {})
    timeout = properties.get("Timeout", defaults.get("Timeout", LAMBDA_DEFAULT_TIMEOUT_SECS))
    memory = properties.get("MemorySize", defaults.get("MemorySize", LAMBDA_DEFAULT_MEMORY_MB))
    if not isinstance(timeout, int) or not isinstance(memory, int):
        raise TemplateError(f"{logical_id}: Timeout and MemorySize must be integers")
    return LambdaFunction(logical_id, f"{name_prefix}-{logical_id}", timeout, memory)


def _function_properties(template: Template, logical_id: str) -> dict[str, Any]:
    resource = template.get("Resources", {}).get(logical_id)
    if not isinstance(resource, dict) or resource.get("Type") != _FUNCTION_TYPE:
        raise TemplateError(f"the template declares no function {logical_id!r}")
    properties: dict[str, Any] = resource.get("Properties", {})
    return properties


def _events(template: Template, function_id: str, event_type: str) -> dict[str, dict[str, Any]]:
    events = _function_properties(template, function_id).get("Events", {})
    return {
        event_id: event.get("Properties", {})
        for event_id, event in events.items()
        if isinstance(event, dict) and event.get("Type") == event_type
    }


def _filter_patterns(value: object, where: str) -> tuple[FilterPattern, ...]:
    if value is None:
        return ()
    filters = _sequence(_mapping(value, where).get("Filters", []), f"{where}.Filters")
    patterns = []
    for n, item in enumerate(filters):
        text = _string(
            _mapping(item, f"{where}.Filters[{n}]").get("Pattern"), f"{where}.Filters[{n}].Pattern"
        )
        try:
            patterns.append(parse_pattern(text))
        except FilterPatternError as error:
            raise TemplateError(f"{where}.Filters[{n}].Pattern: {error}") from error
    return tuple(patterns)


def _on_failure_queue(template: Template, value: object, where: str) -> str | None:
    if value is None:
        return None
    on_failure = _mapping(value, where).get("OnFailure")
    if on_failure is None:
        return None
    on_failure = _mapping(on_failure, f"{where}.OnFailure")
    if on_failure.get("Type", "SQS") != "SQS":
        raise TemplateError(f"{where}.OnFailure: only an SQS destination is played locally")
    queue_id = _get_att_target(on_failure.get("Destination"), "Arn", f"{where}.OnFailure.Destination")
    _properties(template, queue_id, "AWS::SQS::Queue")
    return queue_id


def _get_att_target(value: object, attribute: str, where: str) -> str:
    """The resource of `!GetAtt <Resource>.<attribute>`."""
    target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    if not (isinstance(target, list) and len(target) == 2 and target[1] == attribute):
        raise TemplateError(f"{where} must be !GetAtt <LogicalId>.{attribute}, got {value!r}")
    return _string(target[0], where)


def _queue_spec(template: Template, logical_id: str) -> QueueSpec:
    properties = _properties(template, logical_id, "AWS::SQS::Queue")
    where = f"{logical_id}.Properties"
    return QueueSpec(
        logical_id=logical_id,
        visibility_timeout=_integer(
            properties.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT), f"{where}.VisibilityTimeout"
        ),
        message_retention_period=_integer(
            properties.get("MessageRetentionPeriod", SQS_DEFAULT_MESSAGE_RETENTION_PERIOD),
            f"{where}.MessageRetentionPeriod",
        ),
    )


def _properties(template: Template, logical_id: str, resource_type: str) -> dict[str, Any]:
    resources = _mapping(template.get("Resources"), "Resources")
    resource = resources.get(logical_id)
    if resource is None:
        raise TemplateError(f"the template declares no resource {logical_id!r}")
    resource = _mapping(resource, logical_id)
    if resource.get("Type") != resource_type:
        raise TemplateError(f"{logical_id} is a {resource.get('Type')!r}, expected {resource_type!r}")
    return _mapping(resource.get("Properties", {}), f"{logical_id}.Properties")


def _attribute_definition(value: object, where: str) -> AttributeDefinition:
    item = _mapping(value, where)
    return AttributeDefinition(
        name=_string(item.get("AttributeName"), f"{where}.AttributeName"),
        type=_choice(item.get("AttributeType"), _ATTRIBUTE_TYPES, f"{where}.AttributeType"),
    )


def _key_schema(value: object, where: str) -> tuple[KeyElement, ...]:
    elements = []
    for n, element in enumerate(_sequence(value, where)):
        item = _mapping(element, f"{where}[{n}]")
        elements.append(
            KeyElement(
                attribute_name=_string(item.get("AttributeName"), f"{where}[{n}].AttributeName"),
                key_type=_choice(item.get("KeyType"), _KEY_TYPES, f"{where}[{n}].KeyType"),
            )
        )
    return tuple(elements)


def _global_secondary_index(value: object, where: str) -> GlobalSecondaryIndex:
    item = _mapping(value, where)
    projection = _mapping(item.get("Projection"), f"{where}.Projection")
    non_key_attributes = _sequence(
        projection.get("NonKeyAttributes", []), f"{where}.Projection.NonKeyAttributes"
    )
    return GlobalSecondaryIndex(
        name=_string(item.get("IndexName"), f"{where}.IndexName"),
        key_schema=_key_schema(item.get("KeySchema"), f"{where}.KeySchema"),
        projection=Projection(
            projection_type=_choice(
                projection.get("ProjectionType"), _PROJECTION_TYPES, f"{where}.Projection.ProjectionType"
            ),
            non_key_attributes=tuple(
                _string(name, f"{where}.Projection.NonKeyAttributes[{n}]")
                for n, name in enumerate(non_key_attributes)
            ),
        ),
    )


def _ttl_attribute(value: object, where: str) -> str | None:
    if value is None:
        return None
    specification = _mapping(value, where)
    enabled = specification.get("Enabled")
    if enabled not in (True, "true", "True"):
        return None
    return _string(specification.get("AttributeName"), f"{where}.AttributeName")


def _stream_view_type(value: object, where: str) -> StreamViewType | None:
    if value is None:
        return None
    specification = _mapping(value, where)
    return _choice(specification.get("StreamViewType"), _STREAM_VIEW_TYPES, f"{where}.StreamViewType")


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TemplateError(f"{where} must be a mapping, got {value!r}")
    return value


def _sequence(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TemplateError(f"{where} must be a list, got {value!r}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise TemplateError(f"{where} must be a literal, non-empty string, got {value!r}")
    return value


def _integer(value: object, where: str) -> int:
    # CloudFormation accepts numbers written as strings, so both forms are read.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise TemplateError(f"{where} must be a literal integer, got {value!r}")


def _signed_integer(value: object, where: str) -> int:
    if isinstance(value, str) and value.startswith("-"):
        return -_integer(value[1:], where)
    return _integer(value, where)


def _boolean(value: object, where: str) -> bool:
    # CloudFormation accepts booleans written as strings, so both forms are read.
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise TemplateError(f"{where} must be true or false, got {value!r}")


def _choice[T](value: object, allowed: dict[str, T], where: str) -> T:
    if not isinstance(value, str) or value not in allowed:
        raise TemplateError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return allowed[value]
