"""Generate the pydantic models of ``hub/contract.py`` from the newest contract version.

The Avro files are the single source of truth; the models are derived from them, and a test regenerates
them to prove that the committed module has not drifted (``lintas schemas codegen`` rewrites it).
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hub.errors import SchemaError
from hub.schema_registry import EVENT_NAMESPACE, ContractVersion

CONTRACT_MODULE = Path(__file__).resolve().parent / "contract.py"

_PRIMITIVES = {
    "string": "StrictStr",
    "int": "Int32",
    "long": "Int64",
    "boolean": "StrictBool",
    "double": "float",
    "float": "float",
    "bytes": "bytes",
}
_LOGICAL = {"date": "date", "timestamp-millis": "TimestampMillis", "uuid": "UUID"}

_HEADER = '''"""The Lintas contract as pydantic models. GENERATED from schemas/avro/v{version}: do not edit.

Regenerate with ``lintas schemas codegen``; a test fails when this file and the schemas disagree.
"""

# ruff: noqa: E501

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)


def _utc_millis(value: datetime) -> datetime:
    # Avro timestamp-millis keeps milliseconds in UTC; normalising here makes every valid event
    # round-trip to an equal one.
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


TimestampMillis = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]


class ContractModel(BaseModel):
    """Base of every record: immutable, and unknown fields are an error, never dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Full Avro name of the record this model mirrors.
    avro_name: ClassVar[str]
'''


def _q(text: str) -> str:
    """A double-quoted Python literal (JSON string syntax is valid Python for these texts)."""
    return json.dumps(text, ensure_ascii=False)


def _short(full_name: str) -> str:
    return full_name.rsplit(".", 1)[-1]


def _annotation(node: Any, named: Mapping[str, Any]) -> str:
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _PRIMITIVES[node]
        if node in named:
            return _short(node)
        raise SchemaError(f"unknown type reference {node!r}")
    if isinstance(node, list):
        branches = [branch for branch in node if branch != "null"]
        if len(branches) != 1:
            raise SchemaError(f"only ['null', T] unions are supported, got {node!r}")
        inner = _annotation(branches[0], named)
        return f"{inner} | None" if "null" in node else inner
    if isinstance(node, dict):
        if "logicalType" in node:
            return _LOGICAL[node["logicalType"]]
        if node["type"] == "array":
            return f"tuple[{_annotation(node['items'], named)}, ...]"
        if node["type"] in _PRIMITIVES:
            return _PRIMITIVES[node["type"]]
    raise SchemaError(f"unsupported schema node {node!r}")


def _default(value: Any) -> str:
    if value is None:
        return "None"
    if value == []:
        return "()"
    return _q(value) if isinstance(value, str) else repr(value)


def _references(node: Any, named: Mapping[str, Any]) -> Iterable[str]:
    if isinstance(node, str) and node in named:
        yield node
    elif isinstance(node, list):
        for item in node:
            yield from _references(item, named)
    elif isinstance(node, dict):
        for key in ("type", "items"):
            if key in node:
                yield from _references(node[key], named)


def _enum_source(schema: Mapping[str, Any]) -> list[str]:
    lines = [f"class {schema['name']}(StrEnum):", f'    """{schema["doc"]}"""', ""]
    for symbol in schema["symbols"]:
        attribute = f"{symbol}_" if keyword.iskeyword(symbol) else symbol
        lines.append(f"    {attribute} = {_q(symbol)}")
    return [*lines, "", ""]


def _record_source(full_name: str, schema: Mapping[str, Any], named: Mapping[str, Any]) -> list[str]:
    lines = [f"class {schema['name']}(ContractModel):"]
    if "doc" in schema:
        lines.append(f'    """{schema["doc"]}"""')
    lines += ["", f"    avro_name: ClassVar[str] = {_q(full_name)}", ""]
    for avro_field in schema["fields"]:
        arguments = []
        if "default" in avro_field:
            arguments.append(f"default={_default(avro_field['default'])}")
        if "doc" in avro_field:
            arguments.append(f"description={_q(avro_field['doc'])}")
        annotation = _annotation(avro_field["type"], named)
        field_call = f" = Field({', '.join(arguments)})" if arguments else ""
        lines.append(f"    {avro_field['name']}: {annotation}{field_call}")
    return [*lines, "", ""]


def generate(version: ContractVersion) -> str:
    """Python source of the models for one contract version; deterministic."""
    named = version.named_types()
    enums = [name for name, schema in named.items() if schema["type"] == "enum"]
    records = [name for name, schema in named.items() if schema["type"] == "record"]

    ordered: list[str] = []  # records after the records they contain, so no forward references

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in ordered:
            return
        if name in trail:
            raise SchemaError(f"recursive record {name!r} is not supported")
        for field_schema in named[name]["fields"]:
            for ref in _references(field_schema["type"], named):
                if named[ref]["type"] == "record":
                    visit(ref, (*trail, name))
        ordered.append(name)

    for name in records:
        visit(name, ())

    lines = [_HEADER.format(version=version.version), ""]
    for name in enums:
        lines += _enum_source(named[name])
    for name in ordered:
        lines += _record_source(name, named[name], named)

    events = [name for name in ordered if name.startswith(f"{EVENT_NAMESPACE}.")]
    short_events = [_short(name) for name in events]
    lines.append(f"CONTRACT_VERSION = {version.version}")
    lines += ["", "", "Event = " + " | ".join(short_events), ""]
    lines.append("EVENT_MODELS: dict[str, type[Event]] = {")
    lines += [f"    {_q(name)}: {name}," for name in short_events]
    lines += ["}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"
