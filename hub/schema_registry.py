"""The published contract: every version of every Avro schema under ``schemas/avro/v<N>/``.

Each named type lives in its own file ``<full name>.avsc`` so that fastavro resolves references by name.
Each event record is parsed once; its Parsing Canonical Form gives the CRC-64-AVRO fingerprint that
single-object encoding puts in front of every message, so no registry server is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro.schema

from hub.errors import SchemaError

EVENT_NAMESPACE = "lintas.events"
#: Records the hub itself writes (receipts); versioned and checked like events.
HUB_NAMESPACE = "lintas.hub"
_VERSION_DIR = re.compile(r"^v(\d+)$")


def default_schema_root() -> Path:
    """``schemas/avro`` beside the packages, in a checkout and in an installed wheel alike."""
    return Path(__file__).resolve().parent.parent / "schemas" / "avro"


@dataclass(frozen=True)
class EventSchema:
    """One top-level message record (an event, or a hub record) in one contract version."""

    event_type: str
    version: int
    path: Path
    parsed: Any = field(repr=False)  # fastavro's parsed form, handed back to fastavro only
    canonical_form: str = field(repr=False)
    fingerprint: bytes  # 8 bytes, little-endian, as single-object encoding writes it

    def standalone(self) -> dict[str, Any]:
        """The schema as one JSON document, each named type defined at its first use: what another
        Avro library (or a national system's developer) needs."""
        named = _read_named_types(self.path.parent)
        standalone: dict[str, Any] = _inline_named(named[self.path.name.removesuffix(".avsc")], named, set())
        return standalone


_CRC64_EMPTY = 0xC15D213AA4D7A795


@cache
def _crc64_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


def crc64_avro_fingerprint(canonical_form: str) -> bytes:
    """CRC-64-AVRO of a Parsing Canonical Form, in wire (little-endian) order, as the Avro
    specification computes it (runs once per schema, so plain Python is fast enough)."""
    table = _crc64_table()
    fp = _CRC64_EMPTY
    for byte in canonical_form.encode("utf-8"):
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp.to_bytes(8, "little")


def _read_named_types(directory: Path) -> dict[str, Any]:
    """Raw JSON of every named type in a version folder, by full name (the file name)."""
    types: dict[str, Any] = {}
    for path in sorted(directory.glob("*.avsc")):
        try:
            types[path.name.removesuffix(".avsc")] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{path}: not valid JSON: {exc}") from exc
    return types


def _inline_named(node: Any, named: Mapping[str, Any], defined: set[str]) -> Any:
    """Replace the first reference to each named type by its definition; Avro forbids a second."""
    if isinstance(node, str):
        if node in named and node not in defined:
            defined.add(node)
            return _inline_named(named[node], named, defined)
        return node
    if isinstance(node, list):
        return [_inline_named(item, named, defined) for item in node]
    if isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed"):
            namespace = node.get("namespace")
            defined.add(f"{namespace}.{node['name']}" if namespace else node["name"])
        return {
            key: _inline_named(value, named, defined)
            if key in ("type", "items", "values", "fields")
            else value
            for key, value in node.items()
        }
    return node


@dataclass(frozen=True)
class ContractVersion:
    version: int
    directory: Path
    events: Mapping[str, EventSchema]
    hub_records: Mapping[str, EventSchema]

    @property
    def messages(self) -> dict[str, EventSchema]:
        """Every record that is written on its own, by short name."""
        return {**self.events, **self.hub_records}

    def named_types(self) -> dict[str, Any]:
        """Raw JSON of every named type in this version, by full name, in file-name order."""
        return _read_named_types(self.directory)


def _load_records(version: int, directory: Path, namespace: str) -> dict[str, EventSchema]:
    events: dict[str, EventSchema] = {}
    for path in sorted(directory.glob(f"{namespace}.*.avsc")):
        if json.loads(path.read_text(encoding="utf-8")).get("type") != "record":
            continue
        event_type = path.name.removesuffix(".avsc").rsplit(".", 1)[1]
        try:
            parsed = fastavro.schema.load_schema(str(path))
        except Exception as exc:  # fastavro raises several unrelated types for a bad schema
            raise SchemaError(f"{path}: cannot be parsed: {exc}") from exc
        canonical = fastavro.schema.to_parsing_canonical_form(parsed)
        events[event_type] = EventSchema(
            event_type=event_type,
            version=version,
            path=path,
            parsed=parsed,
            canonical_form=canonical,
            fingerprint=crc64_avro_fingerprint(canonical),
        )
    return events


def _load_version(version: int, directory: Path) -> ContractVersion:
    events = _load_records(version, directory, EVENT_NAMESPACE)
    if not events:
        raise SchemaError(f"{directory}: holds no {EVENT_NAMESPACE}.*.avsc event schema")
    return ContractVersion(
        version=version,
        directory=directory,
        events=events,
        hub_records=_load_records(version, directory, HUB_NAMESPACE),
    )


@dataclass(frozen=True)
class Contract:
    """All published versions, oldest first."""

    root: Path
    versions: tuple[ContractVersion, ...]

    @property
    def latest(self) -> ContractVersion:
        return self.versions[-1]

    def all_event_schemas(self) -> Iterator[EventSchema]:
        for version in self.versions:
            yield from version.events.values()

    def all_message_schemas(self) -> Iterator[EventSchema]:
        for version in self.versions:
            yield from version.messages.values()


def load_contract(root: Path | None = None) -> Contract:
    root = root or default_schema_root()
    found: list[tuple[int, Path]] = []
    if root.is_dir():
        for child in root.iterdir():
            match = _VERSION_DIR.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
    if not found:
        raise SchemaError(f"{root}: no contract version folder (v1, v2, ...) found")
    found.sort()
    numbers = [number for number, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise SchemaError(f"{root}: versions must run v1..vN without gaps, found {numbers}")
    return Contract(root=root, versions=tuple(_load_version(n, d) for n, d in found))


@cache
def default_contract() -> Contract:
    """The contract shipped with this installation, parsed once per process."""
    return load_contract()
