"""The schemas of wire format v2: the outer records (``schemas/avro/v<N>/wire/``) and one section record
per event type and data category (``schemas/avro/v<N>/sections/``).

A section record holds the event's fields of one category, in the event's order, with the event's own
field definitions; the case core is every field that is neither the envelope, nor a routing fact
(carried in the header), nor of another category. The section files are derived from the event records
(``lintas schemas codegen`` writes them; a test fails when the committed ones differ), so an event and
its sections cannot drift apart, and any Avro library can read a section with its file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import fastavro

from hub.contract import DataCategory
from hub.errors import SchemaError
from hub.minimise import FIELD_CATEGORIES
from hub.schema_registry import (
    Contract,
    ContractVersion,
    EventSchema,
    _inline_named,
    _read_named_types,
    crc64_avro_fingerprint,
    default_contract,
)

WIRE_NAMESPACE: Final = "lintas.wire"
SECTION_NAMESPACE: Final = "lintas.sections"
#: The contract version that introduced the sectioned wire format.
WIRE_VERSION: Final = 2
#: Body fields the sequence rules read: carried in the signed header (lintas.wire.Facts), never in a
#: section, so that the hub decides without decoding a section.
FACT_FIELDS: Final = ("consent_scope", "decision", "transit_country", "transit_change", "target_event_id")
#: Sections in the order an event carries them.
CATEGORY_ORDER: Final = (
    DataCategory.CaseCore,
    DataCategory.AssistanceNeeds,
    DataCategory.Legal,
    DataCategory.Health,
    DataCategory.PersonalIdentity,
)


@dataclass(frozen=True)
class SectionSchema:
    """The record of one event type's fields of one category."""

    event_type: str
    category: DataCategory
    fields: tuple[str, ...]
    schema: EventSchema = field(repr=False)

    @property
    def fingerprint(self) -> bytes:
        return self.schema.fingerprint

    @property
    def full_name(self) -> str:
        return f"{SECTION_NAMESPACE}.{self.event_type}.{self.category.value}"


def section_fields(event_type: str, field_names: Iterable[str]) -> dict[DataCategory, tuple[str, ...]]:
    """The fields of each category of an event with fields ``field_names`` (schema order)."""
    categories = FIELD_CATEGORIES.get(event_type, {})
    split: dict[DataCategory, list[str]] = {}
    for name in field_names:
        if name == "envelope" or name in FACT_FIELDS:
            continue
        split.setdefault(categories.get(name, DataCategory.CaseCore), []).append(name)
    return {category: tuple(split[category]) for category in CATEGORY_ORDER if category in split}


def section_documents(version: ContractVersion) -> dict[str, dict[str, Any]]:
    """The section records of a contract version as JSON documents (named types by reference), by
    full name: what ``sections/`` holds."""
    named = _read_named_types(version.directory)
    documents: dict[str, dict[str, Any]] = {}
    for event_type in sorted(version.events):
        raw = named[f"lintas.events.{event_type}"]
        by_name = {item["name"]: item for item in raw["fields"]}
        for category, names in section_fields(event_type, list(by_name)).items():
            full_name = f"{SECTION_NAMESPACE}.{event_type}.{category.value}"
            documents[full_name] = {
                "type": "record",
                "name": category.value,
                "namespace": f"{SECTION_NAMESPACE}.{event_type}",
                "doc": f"The {category.value} fields of {event_type} (wire format v2).",
                "fields": [by_name[name] for name in names],
            }
    return documents


def write_section_files(version: ContractVersion) -> list[Path]:
    """(Re)write ``sections/`` of a version from its event records; returns the files written."""
    folder = version.directory / "sections"
    folder.mkdir(exist_ok=True)
    documents = section_documents(version)
    for stale in folder.glob("*.avsc"):
        if stale.name.removesuffix(".avsc") not in documents:
            stale.unlink()
    written = []
    for full_name, document in documents.items():
        path = folder / f"{full_name}.avsc"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def _parse(document: Mapping[str, Any], named: Mapping[str, Any], path: Path, version: int) -> EventSchema:
    standalone = _inline_named(dict(document), named, set())
    try:
        parsed = fastavro.parse_schema(standalone, _write_hint=False)
    except Exception as exc:  # fastavro raises several unrelated types for a bad schema
        raise SchemaError(f"{path}: cannot be parsed: {exc}") from exc
    canonical = fastavro.schema.to_parsing_canonical_form(parsed)
    name = str(document["name"])
    return EventSchema(
        event_type=name,
        version=version,
        path=path,
        parsed=parsed,
        canonical_form=canonical,
        fingerprint=crc64_avro_fingerprint(canonical),
    )


@dataclass(frozen=True)
class WireSchemas:
    """Every schema of the wire format of one contract version, parsed once."""

    version: int
    event: EventSchema = field(repr=False)
    header: EventSchema = field(repr=False)
    section: EventSchema = field(repr=False)
    #: (event type, category) -> section schema
    sections: Mapping[tuple[str, DataCategory], SectionSchema] = field(repr=False)
    #: section fingerprint -> section schema
    by_fingerprint: Mapping[bytes, SectionSchema] = field(repr=False)

    def sections_of(self, event_type: str) -> list[SectionSchema]:
        return [schema for (kind, _), schema in self.sections.items() if kind == event_type]


def load_wire_schemas(version: ContractVersion) -> WireSchemas:
    directory = version.directory
    wire_dir = directory / "wire"
    if not wire_dir.is_dir():
        raise SchemaError(f"{directory}: has no wire/ folder (the wire format starts at v{WIRE_VERSION})")
    named = {**_read_named_types(directory), **_read_named_types(wire_dir)}
    outer = {
        name: _parse(
            named[f"{WIRE_NAMESPACE}.{name}"],
            named,
            wire_dir / f"{WIRE_NAMESPACE}.{name}.avsc",
            version.version,
        )
        for name in ("Event", "Header", "Section")
    }
    sections: dict[tuple[str, DataCategory], SectionSchema] = {}
    section_dir = directory / "sections"
    for full_name, document in section_documents(version).items():
        path = section_dir / f"{full_name}.avsc"
        event_type = full_name.split(".")[2]
        category = DataCategory(document["name"])
        schema = _parse(document, named, path, version.version)
        fields = tuple(item["name"] for item in document["fields"])
        sections[(event_type, category)] = SectionSchema(event_type, category, fields, schema)
    by_fingerprint = {schema.fingerprint: schema for schema in sections.values()}
    if len(by_fingerprint) != len(sections):
        raise SchemaError(f"{section_dir}: two section records have the same fingerprint")
    return WireSchemas(
        version.version, outer["Event"], outer["Header"], outer["Section"], sections, by_fingerprint
    )


_LOADED: dict[Path, tuple[WireSchemas, ...]] = {}


def wire_schemas(contract: Contract | None = None) -> tuple[WireSchemas, ...]:
    """The wire schemas of every contract version that has them, oldest first (parsed once per
    schema folder)."""
    contract = contract or default_contract()
    loaded = _LOADED.get(contract.root)
    if loaded is None:
        loaded = _LOADED[contract.root] = tuple(
            load_wire_schemas(version) for version in contract.versions if version.version >= WIRE_VERSION
        )
    return loaded
