"""The mapping file: how a national system's export (one row per event) becomes contract events.

A mapping is declarative YAML (``docs/importing.md``): the columns of the row key, the event type, and for
each contract field path (``envelope.case_id``, ``sex``, ``personal.given_names``) where its value comes
from: a column (with a map of the source's labels to the contract's codes, a list separator, date
formats, a prefix, numeric ranges, a default for empty cells) or a constant. Loading checks the mapping
against the contract, so that a wrong field, code or option is reported once, naming its key, instead of
once per row.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.contract import EVENT_MODELS, EventType
from hub.errors import ConfigError
from hub.validation import first_error

__all__ = [
    "DERIVED_FIELDS",
    "REQUIRED_FIELDS",
    "FieldRule",
    "ImportMapping",
    "MappingError",
    "Target",
    "load_mapping",
    "parse_mapping",
    "target_of",
]

Kind = Literal["text", "int", "bool", "date", "datetime", "code", "uuid", "record", "records"]

#: Envelope fields the importer sets itself: the id from the row key, the type from ``event_type``.
DERIVED_FIELDS = {
    "envelope.event_id": "it is derived from the row key (the same row always gets the same id)",
    "envelope.event_type": "it is set by event_type",
}
#: Fields every event needs and no default can sensibly supply.
REQUIRED_FIELDS = (
    "envelope.case_id",
    "envelope.occurred_at",
    "envelope.source_country",
    "envelope.source_agency",
)


class MappingError(ConfigError):
    """A mapping file that cannot be used; the message names the file, the key and the reason."""


class Target(NamedTuple):
    """What a contract field path holds: its kind, whether it is a list, and its code list."""

    kind: Kind
    many: bool
    codes: type[Enum] | None = None


def _strip(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            rest = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


def _kind(annotation: Any) -> tuple[Kind, type[Enum] | None]:
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return "record", None
        if issubclass(annotation, Enum):
            return "code", annotation
        if annotation is AwareDatetime or issubclass(annotation, datetime):
            return "datetime", None
        if issubclass(annotation, date):
            return "date", None
        if issubclass(annotation, bool):
            return "bool", None
        if issubclass(annotation, int):
            return "int", None
        if issubclass(annotation, UUID):
            return "uuid", None
    return "text", None


@cache
def target_of(event_type: str, path: str) -> Target | None:
    """What ``path`` holds in events of ``event_type``; ``None`` when the event has no such field."""
    current: Any = EVENT_MODELS.get(event_type)
    if current is None:
        return None
    parts = path.split(".")
    for index, part in enumerate(parts):
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        annotation = _strip(info.annotation)
        many = get_origin(annotation) is tuple
        if many:
            annotation = _strip(get_args(annotation)[0])
        last = index == len(parts) - 1
        if many and not last:
            return None  # inside a list of records: not addressable by one column
        if last:
            kind, codes = _kind(annotation)
            if many and kind == "record":
                return Target("records", True)
            return Target(kind, many, codes)
        current = annotation
    return None


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Scalar = str | int | float | bool


class FieldRule(_Config):
    """Where one contract field's value comes from. In YAML a bare string is a column name."""

    column: str | None = Field(default=None, min_length=1, description="The source column.")
    constant: Scalar | tuple[Scalar, ...] | None = Field(
        default=None, description="The value of every row, when no column holds it."
    )
    default: Scalar | tuple[Scalar, ...] | None = Field(
        default=None, description="The value when the column's cell is empty."
    )
    values: dict[str, str] = Field(
        default_factory=dict,
        description="Source labels to contract values (codes); labels match ignoring case and spaces "
        "around; a cell not listed is taken as it is.",
    )
    split: str | None = Field(default=None, min_length=1, description="Separator of a list in one cell.")
    format: tuple[str, ...] = Field(
        default=(), description="strptime formats of dates, tried after ISO 8601 (default: date_formats)."
    )
    prefix: str = Field(default="", description="Put before the value (e.g. the country of a case id).")
    ranges: dict[float, str] = Field(
        default_factory=dict,
        description="Numeric lower bounds to codes: a number takes the code of the highest bound "
        "not above it.",
    )

    @model_validator(mode="before")
    @classmethod
    def _column_name(cls, data: Any) -> Any:
        return {"column": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _one_source(self) -> FieldRule:
        if (self.column is None) == (self.constant is None):
            raise ValueError("give exactly one of column and constant")
        if self.column is None and self.default is not None:
            raise ValueError("default: only a column's empty cells take a default")
        return self

    def labels(self) -> dict[str, str]:
        """The value map keyed as cells are looked up (case and surrounding spaces ignored)."""
        return _labels(tuple(self.values.items()))


@cache
def _labels(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return {label.strip().casefold(): value for label, value in pairs}


class ImportMapping(_Config):
    description: str = ""
    row_key: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        min_length=1, description="The columns that identify a row in the source system."
    )
    event_type: FieldRule = Field(
        description="A constant event type (a bare string), or a column with a map of its values."
    )
    timezone: str = Field(default="UTC", description="Of dates and times that carry none.")
    date_formats: tuple[str, ...] = Field(
        default=(), description="strptime formats of every date field without its own."
    )
    sheet: str | None = Field(default=None, description="The worksheet of an XLSX file (default: the first).")
    fields: dict[str, FieldRule] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _constant_event_type(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("event_type"), str):
            return {**data, "event_type": {"constant": data["event_type"]}}
        return data

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def event_types(self) -> tuple[str, ...]:
        """The event types rows can have."""
        rule = self.event_type
        if rule.constant is not None:
            return (str(rule.constant),)
        if rule.values:
            return tuple(dict.fromkeys(rule.values.values()))
        return tuple(EVENT_MODELS)


def _check_codes(key: str, codes: type[Enum], values: Iterable[Any]) -> None:
    known = [str(member.value) for member in codes]
    for value in values:
        if str(value) not in known:
            raise ValueError(
                f"{key}: {value!r} is not a code of {codes.__name__} (expected one of {', '.join(known)})"
            )


def _check_event_type(rule: FieldRule) -> None:
    kinds = [kind.value for kind in EventType if kind.value in EVENT_MODELS]
    if rule.constant is not None:
        _check_codes("event_type.constant", EventType, [rule.constant])
    for label, value in rule.values.items():
        _check_codes(f"event_type.values.{label}", EventType, [value])
    for name in [rule.constant, *rule.values.values()]:
        if name is not None and str(name) not in kinds:
            raise ValueError(f"event_type: {name} is not an event a national system publishes")


def _check_rule(mapping: ImportMapping, path: str, rule: FieldRule) -> None:
    key = f"fields.{path}"
    if path in DERIVED_FIELDS:
        raise ValueError(f"{key}: cannot be mapped: {DERIVED_FIELDS[path]}")
    targets = [found for kind in mapping.event_types() if (found := target_of(kind, path)) is not None]
    if not targets:
        raise ValueError(f"{key}: not a field of {' or '.join(mapping.event_types())}")
    target = targets[0]
    if target.kind == "record":
        raise ValueError(f"{key}: is a record: map its fields ({path}.<field>) instead")
    if target.kind == "records":
        raise ValueError(f"{key}: is a list of records, which one column cannot hold")
    if rule.split is not None and not target.many:
        raise ValueError(f"{key}.split: {path} holds one value, not a list")
    if rule.format and target.kind not in ("date", "datetime"):
        raise ValueError(f"{key}.format: {path} is not a date")
    if rule.ranges and target.kind != "code":
        raise ValueError(f"{key}.ranges: {path} is not a code")
    if isinstance(rule.constant, tuple) and not target.many:
        raise ValueError(f"{key}.constant: {path} holds one value, not a list")
    if target.codes is not None:
        for label, value in rule.values.items():
            _check_codes(f"{key}.values.{label}", target.codes, [value])
        for bound, value in rule.ranges.items():
            _check_codes(f"{key}.ranges.{bound:g}", target.codes, [value])
        for name in ("constant", "default"):
            given = getattr(rule, name)
            if given is not None:
                _check_codes(f"{key}.{name}", target.codes, given if isinstance(given, tuple) else [given])


def _check(mapping: ImportMapping) -> None:
    """The rules that need the contract: raises ``ValueError("<key>: <reason>")``."""
    try:
        mapping.zone()
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timezone: {mapping.timezone!r} is not an IANA time zone") from exc
    _check_event_type(mapping.event_type)
    for path in REQUIRED_FIELDS:
        if path not in mapping.fields:
            raise ValueError(f"fields.{path}: required (every event has one)")
    for path, rule in mapping.fields.items():
        _check_rule(mapping, path, rule)


def parse_mapping(raw: Any, source: str) -> ImportMapping:
    """A mapping from its parsed YAML; ``source`` names it in errors."""
    if not isinstance(raw, Mapping):
        raise MappingError(f"{source}: top level must be a mapping")
    try:
        mapping = ImportMapping.model_validate(raw)
    except ValidationError as exc:
        key, reason = first_error(exc)
        if exc.errors()[0]["type"] == "extra_forbidden":
            reason = "not a key of a mapping (see docs/importing.md)"
        raise MappingError(f"{source}: {key}: {reason}") from exc
    try:
        _check(mapping)
    except ValueError as exc:
        raise MappingError(f"{source}: {exc}") from exc
    return mapping


def load_mapping(path: Path) -> ImportMapping:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"{path}: cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise MappingError(f"{path}: not valid YAML: {exc}") from exc
    return parse_mapping(raw, str(path))
