"""Avro single-object encoding of Lintas events.

Wire format (Avro specification, "Single object encoding"): the two marker bytes ``C3 01``, the 8-byte
little-endian CRC-64-AVRO fingerprint of the writer's schema, then the Avro binary body. The fingerprint
finds the writer's schema among every published contract version; the body is then resolved to this
installation's newest version of the same record, so old writers and new readers work together.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import fastavro
from fastavro.logical_readers import LOGICAL_READERS

from hub.contract import CONTRACT_VERSION, EVENT_MODELS, Alert, Receipt
from hub.errors import InvalidEvent, SchemaError, UndecodableEvent, UnknownSchema
from hub.events import Event, parse_event
from hub.schema_registry import Contract, EventSchema, default_contract

if TYPE_CHECKING:
    from hub.wire.codec import Wire

MARKER: Final = b"\xc3\x01"
_UNSET: Final = object()
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


#: A uuid as ``str(uuid.UUID(...))`` writes it: lowercase, hyphenated.
_CANONICAL_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _uuids_as_text(node: Any) -> Any:
    """A parsed schema with the uuid logical type dropped (and fastavro's own keys), to parse again."""
    if isinstance(node, list):
        return [_uuids_as_text(branch) for branch in node]
    if not isinstance(node, dict):
        return node
    if node.get("logicalType") == "uuid":
        return node["type"]
    return {
        key: _uuids_as_text(value) if key in ("type", "items", "values", "fields") else value
        for key, value in node.items()
        if key not in ("__fastavro_parsed", "__named_schemas")
    }


def _uuid_paths(parsed: Mapping[str, Any]) -> tuple[tuple[str, ...], ...] | None:
    """The field paths, through records and unions, of every uuid in a parsed record schema; None
    when a uuid sits inside an array or a map."""
    named = parsed.get("__named_schemas", {})
    paths: list[tuple[str, ...]] = []

    def visit(node: Any, path: tuple[str, ...], seen: frozenset[str], inside: bool) -> bool:
        if isinstance(node, list):
            return all(visit(branch, path, seen, inside) for branch in node)
        if isinstance(node, str):
            if node in named and node not in seen:
                return visit(named[node], path, seen | {node}, inside)
            return True
        if node.get("logicalType") == "uuid":
            if inside:
                return False
            paths.append(path)
            return True
        kind = node["type"]
        if kind == "record":
            return all(
                visit(f["type"], (*path, f["name"]), seen | {node["name"]}, inside) for f in node["fields"]
            )
        if kind == "array":
            return visit(node["items"], path, seen, True)
        if kind == "map":
            return visit(node["values"], path, seen, True)
        return visit(kind, path, seen, inside)  # a primitive, or a named or nested type

    return tuple(paths) if visit(parsed, (), frozenset(), False) else None


def _canonical_uuids(record: Mapping[str, Any], paths: tuple[tuple[str, ...], ...]) -> bool:
    """Whether every uuid on ``paths`` is absent (a null branch) or written as ``str()`` writes it."""
    for path in paths:
        value: Any = record
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
            if value is None:
                break
        if value is not None and not (isinstance(value, str) and _CANONICAL_UUID.fullmatch(value)):
            return False
    return True


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
        self._record_unions = {name: _record_unions(schema.parsed) for name, schema in own.items()}
        self._readers: dict[bytes, _Reader] = {}
        self._wire: object = _UNSET
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

    def encode_decoded(self, name: str, record: Mapping[str, Any]) -> bytes:
        """:meth:`encode_record` for a record as :meth:`decode_record` returns it (or changed from
        one): its values are already of their types, so the branch of each optional record field is
        named for fastavro rather than found by matching the value against every branch."""
        unions = self._record_unions[name]
        if unions:
            record = {**record}
            for field_name, branch in unions:
                value = record[field_name]
                if isinstance(value, dict):
                    record[field_name] = (branch, value)
        return self.encode_record(name, record)

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

    def quick_reader(self, apart: Mapping[str, Sequence[tuple[str, ...]]] | None = None) -> QuickReader:
        """A reader of records with each uuid as its text, and with the given runs of adjacent
        top-level fields of each record type read apart, so that their bytes can be replaced."""
        return QuickReader(self, apart or {})

    def decode(self, data: bytes) -> Event:
        """A checked event from bytes; raises :class:`InvalidEvent` (or a subclass) naming the field.

        A v2 event (``hub.wire``) is read as a reader without keys reads it: its sealed sections, and
        those the hub withheld, read as empty (the signature was verified by the hub when it accepted
        it; :class:`hub.wire.codec.Wire` verifies and opens with a country's keys)."""
        wire = self._wire_reader()
        if wire is not None and wire.is_v2(data):
            return wire.open(data, verify=False).event
        schema, record = self.decode_record(data)
        return self.checked(schema, record)

    def _wire_reader(self) -> Wire | None:
        if self._wire is _UNSET:
            from hub.wire.codec import Wire  # the wire format is built on this codec

            try:
                self._wire = Wire(self)
            except (InvalidEvent, SchemaError):  # a contract folder without v2
                self._wire = None
        return self._wire  # type: ignore[return-value]

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


def _record_unions(parsed: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The top-level fields of a record whose type is a union of null and one record: each with the
    record's full name (how fastavro is told which branch a value takes)."""
    named = parsed.get("__named_schemas", {})
    unions = []
    for field in parsed["fields"]:
        branches = field["type"]
        if not isinstance(branches, list):
            continue
        records = [b for b in branches if b != "null"]
        if len(records) != 1 or len(branches) != 2:
            continue
        (branch,) = records
        definition = named.get(branch, branch) if isinstance(branch, str) else branch
        if isinstance(definition, dict) and definition.get("type") == "record":
            unions.append((field["name"], definition["name"]))
    return tuple(unions)


# -- quick reads: uuids as text, some fields read apart -------------------------------------------

#: Where some top-level fields of a record sit in its bytes: (start, end) of each run read apart.
Spans = dict[tuple[str, ...], tuple[int, int]]


@dataclass(frozen=True)
class _Plan:
    schema: EventSchema  # the reader's schema, as decode_record returns it
    first: Any  # fastavro's parsed schema of the first piece (the whole record, when nothing is apart)
    resolved_to: Any  # the reader's, when the writer's version differs (nothing is then read apart)
    rest: tuple[tuple[Any, tuple[str, ...] | None], ...]  # later pieces, each with its run (or None)
    uuid_paths: tuple[tuple[str, ...], ...]
    runs: dict[tuple[str, ...], Any]  # each run's piece, to write the values that replace it


class QuickReader:
    """Reads what :meth:`Codec.decode_record` reads, or says it cannot, for a hot path.

    Each uuid is kept as its text, and a record is returned only when every uuid is written as
    ``str()`` of the uuid writes it, so the record is the same but for ``str`` in place of ``UUID``.
    The given runs of adjacent top-level fields are read as pieces of their own, so their byte spans
    are known (when the writer's version is the reader's): a change to those fields alone is then
    written by replacing their bytes, without encoding the rest again. ``None`` from :meth:`read`
    means only "not quickly": :meth:`Codec.decode_record` then reads the bytes or says what is wrong.
    """

    def __init__(self, codec: Codec, apart: Mapping[str, Sequence[tuple[str, ...]]]) -> None:
        self._plans: dict[bytes, _Plan] = {}
        for fingerprint, found in codec._readers.items():
            plan = _plan(found, apart.get(found.reader.event_type, ()))
            if plan is not None:
                self._plans[fingerprint] = plan

    def read(self, data: bytes) -> tuple[EventSchema, dict[str, Any], Spans | None] | None:
        """The schema, the record, and the spans of the runs read apart (``None`` when the record was
        resolved from another version); ``None`` when the bytes cannot be read quickly."""
        plan = self._plans.get(data[2:HEADER_SIZE])
        if plan is None or data[:2] != MARKER:
            return None
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        read = fastavro.schemaless_reader
        spans: Spans | None = None if plan.resolved_to is not None else {}
        try:
            record: Any = read(body, plan.first, plan.resolved_to)
            for piece, run in plan.rest:
                start = body.tell()
                record.update(read(body, piece, None))
                if run is not None and spans is not None:
                    spans[run] = (start, body.tell())
        except Exception:  # decode_record says what is wrong
            return None
        if body.tell() != len(data) or not isinstance(record, dict):
            return None
        if not _canonical_uuids(record, plan.uuid_paths):
            return None
        return plan.schema, record, spans

    def encode_run(self, data: bytes, run: tuple[str, ...], values: Mapping[str, Any]) -> bytes:
        """The bytes of a run's fields with ``values``, as they sit in a record of ``data``'s schema."""
        buffer = BytesIO()
        fastavro.schemaless_writer(buffer, self._plans[data[2:HEADER_SIZE]].runs[run], values)
        return buffer.getvalue()


def _plan(found: _Reader, runs: Sequence[tuple[str, ...]]) -> _Plan | None:
    paths = _uuid_paths(found.reader.parsed)
    if paths is None:
        return None
    writer = _uuids_as_text(found.writer.parsed)
    if found.needs_resolution:
        resolved_to = fastavro.parse_schema(_uuids_as_text(found.reader.parsed))
        return _Plan(found.reader, fastavro.parse_schema(writer), resolved_to, (), paths, {})
    # Pieces: the runs, and what lies between them; each a record of its own fields.
    names = [field["name"] for field in writer["fields"]]
    starts = {names.index(run[0]): run for run in runs if run and run[0] in names}
    groups: list[tuple[list[Any], tuple[str, ...] | None]] = []
    index = 0
    while index < len(names):
        run = starts.get(index)
        if run is not None and tuple(names[index : index + len(run)]) == run:
            groups.append((writer["fields"][index : index + len(run)], run))
            index += len(run)
            continue
        if not groups or groups[-1][1] is not None:
            groups.append(([], None))
        groups[-1][0].append(writer["fields"][index])
        index += 1
    definitions = _definitions(writer)
    base = writer["name"]
    pieces = [
        (fastavro.parse_schema(_piece(f"{base}_{i}", fields, definitions)), run)
        for i, (fields, run) in enumerate(groups)
    ]
    (first, _), rest = pieces[0], tuple(pieces[1:])
    return _Plan(
        found.reader, first, None, rest, paths, {run: piece for piece, run in pieces if run is not None}
    )


def _definitions(node: Any, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type defined in a schema (in fastavro's parsed form: full names), by name."""
    found = {} if found is None else found
    if isinstance(node, list):
        for branch in node:
            _definitions(branch, found)
    elif isinstance(node, dict):
        if node.get("type") in ("record", "enum", "fixed") and "name" in node:
            found.setdefault(node["name"], node)
        for key in ("type", "items", "values"):
            if key in node:
                _definitions(node[key], found)
        for field in node.get("fields", ()):
            _definitions(field["type"], found)
    return found


def _piece(name: str, fields: Sequence[Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """A record of ``fields`` alone, each named type defined at its first use within it."""
    defined: set[str] = set()

    def inline(node: Any) -> Any:
        if isinstance(node, str):
            if node in definitions and node not in defined:
                return inline(definitions[node])
            return node
        if isinstance(node, list):
            return [inline(branch) for branch in node]
        if node.get("type") in ("record", "enum", "fixed") and "name" in node:
            if node["name"] in defined:
                return node["name"]
            defined.add(node["name"])
        copy = {
            key: inline(value) if key in ("type", "items", "values") else value for key, value in node.items()
        }
        if "fields" in node:
            copy["fields"] = [{**field, "type": inline(field["type"])} for field in node["fields"]]
        return copy

    return {"type": "record", "name": name, "fields": [{**f, "type": inline(f["type"])} for f in fields]}


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
