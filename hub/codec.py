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
from typing import Any, Final, TypeVar

import fastavro

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
        except (EOFError, StopIteration) as exc:
            raise UndecodableEvent(
                "<bytes>", f"truncated body: {len(data)} bytes end inside the record"
            ) from exc
        except Exception as exc:  # fastavro signals corrupt bodies with many exception types
            raise UndecodableEvent("<bytes>", f"corrupt body for {found.writer.event_type}: {exc!r}") from exc
        if body.tell() != len(data):
            raise UndecodableEvent("<bytes>", f"{len(data) - body.tell()} unexpected bytes after the record")
        if not isinstance(record, dict):
            raise UndecodableEvent("<bytes>", "body is not a record")
        return found.reader, record

    def decode(self, data: bytes) -> Event:
        """A checked event from bytes; raises :class:`InvalidEvent` (or a subclass) naming the field."""
        schema, record = self.decode_record(data)
        if schema.event_type not in EVENT_MODELS:
            raise InvalidEvent("<fingerprint>", f"{schema.event_type} is not an event")
        return parse_event(record, now=self._clock())

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
