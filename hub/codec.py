"""Avro single-object encoding of Lintas events.

Wire format (Avro specification, "Single object encoding"): the two marker bytes ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer's schema, then the Avro binary body. The fingerprint
finds the writer's schema among every published contract version; the body is then resolved to this
installation's newest version of the same record, so old writers and new readers work together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, Final, NoReturn, TypeVar

import fastavro
from fastavro.logical_readers import LOGICAL_READERS

from hub.contract import CONTRACT_VERSION, EVENT_MODELS, Alert, Receipt
from hub.errors import InvalidEvent, SchemaError, UndecodableEvent, UnknownSchema
from hub.events import Event, parse_event
from hub.schema_registry import Contract, EventSchema, default_contract

MARKER: Final = b"\xc3\x01"
_HubRecord = TypeVar("_HubRecord", Receipt, Alert)
HEADER_SIZE: Final = len(MARKER) + 8


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class _Reader:
    writer: EventSchema
    reader: EventSchema

    @property
    def needs_resolution(self) -> bool:
        return self.writer.fingerprint != self.reader.fingerprint


class Codec:
    """Encodes and decodes events; every schema is parsed once, when the codec is made.

    Events are written, and read back, in ``reader_version``: the contract version the models in
    ``hub.contract`` were generated from. Bytes written with any other published version, older or
    newer, are resolved to it, so a newer contract folder is all an older hub needs to read a
    national system that upgraded first.
    """

    def __init__(
        self,
        contract: Contract | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
        reader_version: int = CONTRACT_VERSION,
    ) -> None:
        self.contract = contract or default_contract()
        self._clock = clock
        self.reader_version = reader_version
        if not 1 <= reader_version <= len(self.contract.versions):
            raise SchemaError(f"{self.contract.root}: contract v{reader_version} is not published there")
        own = self.contract.versions[reader_version - 1].messages
        self._writers: dict[str, EventSchema] = dict(own)
        self._readers: dict[bytes, _Reader] = {}
        for schema in self.contract.all_message_schemas():
            # A record this version lacks is still read with the schema it was written in.
            reader = own.get(schema.event_type, schema)
            self._readers[schema.fingerprint] = _Reader(writer=schema, reader=reader)

    # -- the wire header, usable without decoding the body (routing reads it cheaply) --------------

    @staticmethod
    def fingerprint_of(data: bytes) -> bytes:
        """The writer's fingerprint, after checking the header; raises :class:`UndecodableEvent`."""
        if not data:
            raise UndecodableEvent("<bytes>", "empty message")
        if len(data) < HEADER_SIZE:
            raise UndecodableEvent(
                "<bytes>", f"truncated header: {len(data)} bytes, a header needs {HEADER_SIZE}"
            )
        if data[:2] != MARKER:
            raise UndecodableEvent(
                "<bytes>",
                f"wrong marker {data[:2].hex()}: not Avro single-object encoding (expected c301)",
            )
        return data[2:HEADER_SIZE]

    def schema_of(self, data: bytes) -> EventSchema:
        """The published schema these bytes were written with."""
        return self._reader_for(data).writer

    def _reader_for(self, data: bytes) -> _Reader:
        fingerprint = self.fingerprint_of(data)
        found = self._readers.get(fingerprint)
        if found is None:
            raise UnknownSchema("<fingerprint>", f"{fingerprint.hex()} matches no published schema version")
        return found

    # -- events --------------------------------------------------------------------------------------

    def encode(self, event: Event | Receipt | Alert) -> bytes:
        """Bytes of a checked event (or hub record), written in the reader's contract version."""
        return self.encode_record(type(event).__name__, event.model_dump())

    def encode_record(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Bytes of a plain record of the named message type, for hot paths that build the
        record themselves; fastavro still checks every type and code as it writes."""
        schema = self._writers[name]
        buffer = BytesIO()
        buffer.write(MARKER)
        buffer.write(schema.fingerprint)
        try:
            fastavro.schemaless_writer(buffer, schema.parsed, record)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidEvent(name, f"cannot be written as Avro: {exc}") from exc
        return buffer.getvalue()

    def decode_record(self, data: bytes) -> tuple[EventSchema, dict[str, Any]]:
        """The raw record, resolved to the reader's version, without the contract's rules."""
        found = self._reader_for(data)
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = fastavro.schemaless_reader(
                body,
                found.writer.parsed,
                found.reader.parsed if found.needs_resolution else None,
            )
        except Exception as exc:  # fastavro signals corrupt bodies with many exception types
            raise _explained(found.writer, data, exc) from exc
        if body.tell() != len(data):
            raise UndecodableEvent("<bytes>", f"{len(data) - body.tell()} unexpected bytes after the record")
        if not isinstance(record, dict):
            raise UndecodableEvent("<bytes>", "body is not a record")
        return found.reader, record

    def decode(self, data: bytes) -> Event:
        """A checked event from bytes; raises :class:`InvalidEvent` (or a subclass) naming the field."""
        schema, record = self.decode_record(data)
        return self.checked(schema, record)

    def checked(self, schema: EventSchema, record: Mapping[str, Any]) -> Event:
        """The checked event of a record :meth:`decode_record` returned (the rest of :meth:`decode`)."""
        if schema.event_type not in EVENT_MODELS:
            raise InvalidEvent("<fingerprint>", f"{schema.event_type} is not an event")
        return parse_event(record, now=self._clock())

    def now(self) -> datetime:
        """The time the contract's rules are checked against (events may not come from the future)."""
        return self._clock()

    def decode_as(self, data: bytes, model: type[_HubRecord]) -> _HubRecord:
        """A record the hub writes (receipt, alert) from bytes, refusing any other message type."""
        schema, record = self.decode_record(data)
        if schema.event_type != model.__name__:
            raise InvalidEvent("<fingerprint>", f"{schema.event_type} is not a {model.__name__}")
        return model.model_validate(record)

    def decode_receipt(self, data: bytes) -> Receipt:
        return self.decode_as(data, Receipt)

    def decode_alert(self, data: bytes) -> Alert:
        return self.decode_as(data, Alert)


# -- what is wrong with a body fastavro could not read (the error path only) ----------------------


def _explained(writer: EventSchema, data: bytes, exc: Exception) -> UndecodableEvent:
    """The first fault in a body that fastavro refused, with its field path, found by walking the
    bytes against the writer's schema; fastavro's own error when the walk finds none (a failure of
    schema resolution, say)."""
    try:
        _BodyWalker(data, HEADER_SIZE, writer.parsed.get("__named_schemas", {})).record(writer.parsed)
    except _BodyFault as fault:
        kind = "truncated" if fault.truncated else "corrupt"
        return UndecodableEvent(fault.path, f"{kind} body for {writer.event_type}: {fault.reason}")
    except RecursionError:
        pass
    if isinstance(exc, EOFError | StopIteration):
        return UndecodableEvent("<bytes>", f"truncated body: {len(data)} bytes end inside the record")
    return UndecodableEvent("<bytes>", f"corrupt body for {writer.event_type}: {exc!r}")


class _BodyFault(Exception):
    """Where, and why, an Avro body breaks its schema (``truncated``: it ends too soon)."""

    def __init__(self, path: str, reason: str, *, truncated: bool = False) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
        self.truncated = truncated


_PRIMITIVES: Final = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_VARINT_BYTES: Final = {"int": 5, "long": 10}
_ARTICLE: Final = {"int": "an int", "long": "a long"}


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


class _BodyWalker:
    """Reads an Avro binary body against a parsed schema the way the specification defines it,
    keeping only the position, and raises :class:`_BodyFault` at the first byte that breaks it.

    Pure and slow (plain Python): for explaining a failure, never for decoding. It is stricter than
    fastavro where fastavro is lenient (a negative enum or union index, an int beyond 32 bits, an
    over-long varint, a boolean byte other than 0 or 1), since the first of those is the likeliest
    cause of a failure further on.
    """

    def __init__(self, data: bytes, start: int, named: Mapping[str, Any]) -> None:
        self.data = data
        self.pos = start
        self.named = named

    # -- primitives --------------------------------------------------------------------------------

    def _fault(self, path: str, reason: str, *, truncated: bool = False) -> NoReturn:
        raise _BodyFault(path or "<body>", reason, truncated=truncated)

    def varint(self, path: str, kind: str = "long", what: str | None = None) -> int:
        """A zigzag varint; ``kind`` is its Avro type (``int`` or ``long``), ``what`` what it counts."""
        data, pos, shift, raw = self.data, self.pos, 0, 0
        limit = _VARINT_BYTES[kind]
        for used in range(1, limit + 1):
            if pos >= len(data):
                self._fault(
                    path,
                    f"the message ends inside {what or _ARTICLE[kind]} (at byte {pos})",
                    truncated=True,
                )
            byte = data[pos]
            pos += 1
            raw |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
            if used == limit:
                self._fault(path, f"{what or _ARTICLE[kind]} runs over the {limit} bytes of a varint {kind}")
        self.pos = pos
        value = (raw >> 1) ^ -(raw & 1)
        if kind == "int" and not -(2**31) <= value < 2**31:
            self._fault(path, f"int {value} does not fit in 32 bits")
        if not -(2**63) <= value < 2**63:
            self._fault(path, f"long {value} does not fit in 64 bits")
        return value

    def take(self, path: str, size: int, what: str) -> bytes:
        left = len(self.data) - self.pos
        if size > left:
            self._fault(path, f"{what} runs past the end of the message ({left} bytes left)", truncated=True)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def sized(self, path: str, kind: str) -> bytes:
        """The content of a ``bytes`` or ``string``: a length, then that many bytes."""
        length = self.varint(path, "long", f"a {kind} length")
        if length < 0:
            self._fault(path, f"{kind} length {length} is negative")
        return self.take(path, length, f"{kind} length {length}")

    # -- schemas -------------------------------------------------------------------------------------

    def record(self, schema: Mapping[str, Any], path: str = "") -> None:
        for field in schema["fields"]:
            self.value(field["type"], f"{path}.{field['name']}" if path else field["name"])

    def value(self, schema: Any, path: str) -> Any:
        """Walk one value; returns it for primitives (logical types are checked as fastavro reads them)."""
        if isinstance(schema, list):
            branch = self.varint(path, "long", "a union branch index")
            if not 0 <= branch < len(schema):
                self._fault(path, f"union branch {branch} out of range ({len(schema)} branches)")
            return self.value(schema[branch], path)
        if isinstance(schema, str):
            if schema in _PRIMITIVES:
                return self.primitive(schema, path)
            return self.value(self.named[schema], path)
        kind = schema["type"]
        if isinstance(kind, list | dict) or (kind not in _PRIMITIVES and kind in self.named):
            return self.value(kind, path)
        match kind:
            case "record" | "error":
                self.record(schema, path)
            case "enum":
                index = self.varint(path, "long", "an enum index")
                symbols = schema["symbols"]
                if not 0 <= index < len(symbols):
                    self._fault(
                        path,
                        f"enum index {index} is outside {_short(schema['name'])}'s {len(symbols)} symbols",
                    )
            case "fixed":
                size = schema["size"]
                raw = self.take(path, size, f"fixed {_short(schema['name'])} of {size} bytes")
                self.logical(schema, "fixed", raw, path)
            case "array":
                items = schema["items"]
                self.blocks(
                    path, lambda index: self.value(items, f"{path}[{index}]"), empty=self.empty(items)
                )
            case "map":

                def entry(index: int) -> None:
                    key = self.text(self.sized(path, "map key"), f"{path}[{index}]")
                    self.value(schema["values"], f"{path}[{key!r}]")

                self.blocks(path, entry, empty=False)
            case _:
                value = self.primitive(kind, path)
                self.logical(schema, kind, value, path)
                return value
        return None

    def primitive(self, kind: str, path: str) -> Any:
        match kind:
            case "null":
                return None
            case "boolean":
                (byte,) = self.take(path, 1, "a boolean")
                if byte > 1:
                    self._fault(path, f"boolean byte {byte:#04x} is neither 0 nor 1")
                return bool(byte)
            case "int" | "long":
                return self.varint(path, kind)
            case "float":
                return self.take(path, 4, "a float")
            case "double":
                return self.take(path, 8, "a double")
            case "bytes":
                return self.sized(path, "bytes")
            case "string":
                return self.text(self.sized(path, "string"), path)
        raise AssertionError(f"unknown Avro type {kind!r}")  # pragma: no cover

    def text(self, raw: bytes, path: str) -> str:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fault(path, f"string is not valid UTF-8 ({exc.reason} at byte {exc.start} of {len(raw)})")

    def empty(self, schema: Any) -> bool:
        """Whether every value of ``schema`` takes no byte at all (null, and records of nulls)."""
        if isinstance(schema, str):
            return schema == "null" or (schema in self.named and self.empty(self.named[schema]))
        if isinstance(schema, list):
            return False
        kind = schema["type"]
        if kind == "record":
            return all(self.empty(field["type"]) for field in schema["fields"])
        if kind == "fixed":
            return bool(schema["size"] == 0)
        return isinstance(kind, str | dict) and kind not in ("enum", "array", "map") and self.empty(kind)

    def blocks(self, path: str, item: Callable[[int], None], *, empty: bool) -> None:
        """Array and map blocks: a count (negative: followed by the block's size in bytes), the
        items, until a count of zero. Items that take no bytes (``empty``) are not walked."""
        index = 0
        while True:
            count = self.varint(path, "long", "a block count")
            if count == 0:
                return
            if count < 0:
                count = -count
                size = self.varint(path, "long", "a block size")
                if size < 0:
                    self._fault(path, f"block size {size} is negative")
            if empty:
                index += count
                continue
            left = len(self.data) - self.pos
            if count > left:  # each item takes at least one byte
                self._fault(
                    path,
                    f"a block of {count} items runs past the end of the message ({left} bytes left)",
                    truncated=True,
                )
            for _ in range(count):
                item(index)
                index += 1

    def logical(self, schema: Mapping[str, Any], kind: str, value: Any, path: str) -> None:
        """Convert as fastavro does, so that a value it cannot represent is named here."""
        logical = schema.get("logicalType")
        reader = LOGICAL_READERS.get(f"{kind}-{logical}") if logical else None
        if reader is None:
            return
        try:
            reader(value, dict(schema), None)
        except (ValueError, OverflowError, ArithmeticError, TypeError):
            shown = repr(value) if len(repr(value)) <= 48 else f"{repr(value)[:45]}..."
            self._fault(path, f"{shown} is not a valid {logical}")
