"""Schema evolution: each published version must stay backward and forward compatible with the one
before, by Avro's resolution rules, so that national systems can upgrade one at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from hub.schema_registry import Contract, EventSchema

Direction = Literal["backward", "forward"]


@dataclass(frozen=True)
class Incompatibility:
    event_type: str
    old_version: int
    new_version: int
    direction: Direction  # backward: new reader, old data; forward: old reader, new data
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.event_type} v{self.old_version} -> v{self.new_version}: "
            f"not {self.direction} compatible: {self.detail}"
        )


def _parse(schema: EventSchema) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema.standalone()))


def _check(reader: EventSchema, writer: EventSchema) -> str | None:
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(_parse(reader), _parse(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return None
    return f"at {', '.join(sorted(result.locations))}: {'; '.join(sorted(result.messages))}"


def check_contract(contract: Contract) -> list[Incompatibility]:
    """Every incompatibility between consecutive versions; empty when the contract may be published."""
    problems: list[Incompatibility] = []
    for old, new in zip(contract.versions, contract.versions[1:], strict=False):
        for event_type, old_schema in old.messages.items():
            new_schema = new.messages.get(event_type)
            if new_schema is None:
                problems.append(
                    Incompatibility(event_type, old.version, new.version, "backward", "record was removed")
                )
                continue
            pairs: tuple[tuple[Direction, EventSchema, EventSchema], ...] = (
                ("backward", new_schema, old_schema),
                ("forward", old_schema, new_schema),
            )
            for direction, reader, writer in pairs:
                detail = _check(reader, writer)
                if detail is not None:
                    problems.append(Incompatibility(event_type, old.version, new.version, direction, detail))
    return problems
