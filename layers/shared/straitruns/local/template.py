"""Read the table and queue definitions from template.yaml, their single source of truth.

The local stack and the tests build DynamoDB Local and the SQS queues from the specs returned here,
so an index or a queue setting is declared once, in the template, and nowhere else.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

TEMPLATE_ENV = "STRAIT_TEMPLATE"

# SQS's own defaults: CloudFormation leaves an omitted attribute at these values, so do we.
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30
SQS_DEFAULT_MESSAGE_RETENTION_PERIOD = 345_600

Template = dict[str, Any]
KeyType = Literal["HASH", "RANGE"]
ProjectionType = Literal["ALL", "KEYS_ONLY", "INCLUDE"]
AttributeType = Literal["S", "N", "B"]

_KEY_TYPES: dict[str, KeyType] = {"HASH": "HASH", "RANGE": "RANGE"}
_PROJECTION_TYPES: dict[str, ProjectionType] = {"ALL": "ALL", "KEYS_ONLY": "KEYS_ONLY", "INCLUDE": "INCLUDE"}
_ATTRIBUTE_TYPES: dict[str, AttributeType] = {"S": "S", "N": "N", "B": "B"}


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
    """The run queue, the dead-letter queue its redrive policy targets, and the receive count
    after which a message moves there."""

    run_queue: QueueSpec
    dead_letter_queue: QueueSpec
    max_receive_count: int


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
    )


def queue_specs(template: Template, run_queue_logical_id: str = "RunQueue") -> QueueSpecs:
    """The run queue and the dead-letter queue its RedrivePolicy targets (found through the
    policy's `!GetAtt <Queue>.Arn`). Raises TemplateError if either is missing or malformed."""
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
    )


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


def _choice[T](value: object, allowed: dict[str, T], where: str) -> T:
    if not isinstance(value, str) or value not in allowed:
        raise TemplateError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return allowed[value]
