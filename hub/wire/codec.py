"""Events in wire format v2: sectioned, sealed, signed (``../DESIGN.md`` §3b).

:class:`Wire` turns a checked event into v2 bytes (:meth:`Wire.seal`: split into sections, seal the
sensitive ones under the case's data key, sign) and v2 bytes back into an event as one country may read
it (:meth:`Wire.open`): every section verified against the origin's signature, each sealed section
opened with the key the reader's country was granted, and every category it cannot read (withheld by
the hub, not granted, or shredded) read as its empty value, which the contract allows for every
categorised field. v1 bytes (one plain record) still decode, and :meth:`Wire.convert_v1` turns them into
v2 for a national system the hub may sign for.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from typing import Any, Final

import fastavro
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.codec import HEADER_SIZE, MARKER, Codec, _uuids_as_text
from hub.contract import EVENT_MODELS, DataCategory, Need
from hub.crypto.keystore import KeyNotGranted, KeysDestroyed, KeyStore, KeyStoreError
from hub.crypto.policy import is_sealed
from hub.crypto.sealing import SealError, open_sealed, section_aad
from hub.crypto.signing import KeyDirectory, SignatureError, Signer
from hub.errors import InvalidEvent, UndecodableEvent
from hub.events import CHILD_BAND_CODES, Event, parse_event
from hub.schema_registry import EventSchema
from hub.wire import format as wire_format
from hub.wire.format import Section, Signature, WireEvent, digest_of, signed_message
from hub.wire.schemas import FACT_FIELDS, SectionSchema, WireSchemas, wire_schemas

#: The signer name of the hub's own key (receipts, alerts, v1 events converted for their sender).
HUB_SIGNER: Final = "HUB"
_CHILD_NEEDS: Final = [Need.ChildProtection.value]


class UnreadableSection(InvalidEvent):
    """A sealed section that the reader's key does not open: tampered, or under another key."""


@dataclass(frozen=True)
class Opened:
    """An event as one reader may see it."""

    event: Event
    signer: str
    key_id: str
    #: categories present and readable
    read: tuple[str, ...]
    #: categories the hub withheld from this copy
    withheld: tuple[str, ...] = ()
    #: sealed categories this reader may not (or no longer) open: shown as erased
    erased: tuple[str, ...] = ()
    #: why each erased category is erased
    reasons: Mapping[str, str] = field(default_factory=dict)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM with a synthetic nonce (HMAC of the key over what is sealed): the same section of
    the same event seals to the same bytes, so a resubmission is recognised as one, while any two
    different plaintexts get different nonces (the GCM nonce is never reused with another text)."""
    nonce = hmac.new(key, _NONCE_DOMAIN + aad + plaintext, hashlib.sha256).digest()[:12]
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


_NONCE_DOMAIN: Final = b"lintas/v2/nonce\x00"


def _record_schema(schema: EventSchema) -> Any:
    return fastavro.parse_schema(_uuids_as_text(schema.parsed), _write_hint=False)


def _empty(event_type: str, name: str, record: Mapping[str, Any]) -> Any:
    """What an event reads in a field whose section it does not have (the child rule included: a
    child's need of child protection is never lost with the needs section)."""
    if name == "needs" and event_type == "VictimIdentified" and str(record["age_band"]) in CHILD_BAND_CODES:
        return list(_CHILD_NEEDS)
    default = EVENT_MODELS[event_type].model_fields[name].get_default()
    return list(default) if isinstance(default, tuple) else default


class Wire:
    """Encodes and opens v2 events; every schema is parsed once."""

    def __init__(
        self,
        codec: Codec | None = None,
        *,
        directory: KeyDirectory | None = None,
        keys: KeyStore | None = None,
    ) -> None:
        self.codec = codec or Codec()
        self.directory = directory
        self.keys = keys
        found = wire_schemas(self.codec.contract)
        if not found:
            raise InvalidEvent("<contract>", "this contract has no v2 wire format")
        self.schemas: WireSchemas = found[-1]
        self.event_fingerprint = self.schemas.event.fingerprint
        self._header_writer = self.schemas.header.parsed
        self._header_reader = _record_schema(self.schemas.header)
        self._section_readers: dict[bytes, Any] = {
            fingerprint: _record_schema(section.schema)
            for fingerprint, section in self.schemas.by_fingerprint.items()
        }
        self._facts = {
            kind: tuple(name for name in FACT_FIELDS if name in model.model_fields)
            for kind, model in EVENT_MODELS.items()
        }

    def is_v2(self, data: bytes) -> bool:
        return data[:2] == MARKER and data[2:HEADER_SIZE] == self.event_fingerprint

    # -- writing -----------------------------------------------------------------------------------

    def seal(
        self,
        event: Event,
        signer: Signer,
        *,
        keys: KeyStore | None = None,
        sensitive: Collection[str] = (),
    ) -> bytes:
        """``event`` as v2 bytes, signed by ``signer``; the sealed categories (PersonalIdentity, and
        ``sensitive``) under the case's data key from ``keys`` (the source country's copy).

        Raises :class:`~hub.crypto.keystore.KeysDestroyed` when the case's keys were destroyed and the
        event carries sealed data: such data can no longer be accepted."""
        record = event.model_dump()
        envelope = record["envelope"]
        kind = str(envelope["event_type"])
        header = self._header(record, kind)
        sections = []
        store = keys or self.keys
        for schema in self.schemas.sections_of(kind):
            category = schema.category.value
            values = {name: record[name] for name in schema.fields}
            filled = tuple(name for name in schema.fields if values[name] != _empty(kind, name, record))
            if category != DataCategory.CaseCore.value and not filled:
                continue  # nothing of this category: no section
            body = self._encode_section(schema, values)
            sealed = is_sealed(category, sensitive)
            key_version = 0
            if sealed:
                if store is None:
                    raise InvalidEvent(category, "sealing needs a key store")
                key = store.data_key(envelope["case_id"], str(envelope["source_country"]))
                aad = section_aad(
                    str(envelope["event_id"]), envelope["case_id"], category, schema.fingerprint
                )
                body, key_version = _seal(key.key, body, aad), key.version
            sections.append(
                Section(category, schema.fingerprint, filled, sealed, key_version, digest_of(body), body)
            )
        signature = Signature(signer.signer, signer.key_id, signer.sign(signed_message(header, sections)))
        return wire_format.write(WireEvent(header, tuple(sections), signature), self.event_fingerprint)

    def _header(self, record: Mapping[str, Any], kind: str) -> bytes:
        facts = dict.fromkeys(FACT_FIELDS)
        for name in self._facts[kind]:
            value = record[name]
            # fastavro reads a tuple in a union as (branch, value): a list is the array itself.
            facts[name] = list(value) if isinstance(value, tuple) else value
        buffer = BytesIO()
        buffer.write(MARKER + self.schemas.header.fingerprint)
        fastavro.schemaless_writer(
            buffer, self._header_writer, {"envelope": record["envelope"], "facts": facts}
        )
        return buffer.getvalue()

    @staticmethod
    def _encode_section(schema: SectionSchema, values: Mapping[str, Any]) -> bytes:
        buffer = BytesIO()
        buffer.write(MARKER + schema.fingerprint)
        fastavro.schemaless_writer(buffer, schema.schema.parsed, values)
        return buffer.getvalue()

    def convert_v1(self, data: bytes, signer: Signer, *, keys: KeyStore | None = None) -> bytes:
        """v1 bytes as v2, signed by ``signer`` (the hub's key: for a national system the directory
        lets the hub sign for)."""
        return self.seal(self.codec.decode(data), signer, keys=keys)

    # -- reading -----------------------------------------------------------------------------------

    def parse(self, data: bytes) -> WireEvent:
        if not self.is_v2(data):
            self.codec.fingerprint_of(data)  # the header's own error, when it is one
            raise UndecodableEvent("<fingerprint>", "not a v2 event (lintas.wire.Event)")
        return wire_format.parse(data)

    def header(self, wire: WireEvent) -> dict[str, Any]:
        """The header's envelope and facts (uuids as text)."""
        data = wire.header
        if data[:2] != MARKER or data[2:HEADER_SIZE] != self.schemas.header.fingerprint:
            raise UndecodableEvent("header", "not a lintas.wire.Header of this contract version")
        body = BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            header = fastavro.schemaless_reader(body, self._header_reader, None)
        except Exception as exc:  # fastavro signals corrupt bodies with many exception types
            raise UndecodableEvent("header", f"cannot be decoded: {exc}") from exc
        if body.tell() != len(data):
            raise UndecodableEvent("header", f"{len(data) - body.tell()} unexpected bytes after the record")
        if not isinstance(header, dict):
            raise UndecodableEvent("header", "not a record")
        return header

    def verify(
        self, wire: WireEvent, header: Mapping[str, Any], *, may_sign: Callable[[str, str], bool]
    ) -> None:
        """Checks the origin's signature and every present section's digest; raises
        :class:`SignatureError` (``bad_signature`` / ``unknown_key``) or :class:`InvalidEvent`.

        ``may_sign(signer, source_country)``: whether that signer may sign for that country (the
        country itself always; the hub for a country the directory lets it sign for)."""
        if self.directory is None:
            raise SignatureError(
                "unknown_key",
                wire.signature.signer,
                wire.signature.key_id,
                "no directory of public keys to verify against",
            )
        envelope = header["envelope"]
        source = str(envelope["source_country"])
        signature = wire.signature
        if signature.signer != source and not may_sign(signature.signer, source):
            raise SignatureError(
                "unknown_key",
                signature.signer,
                signature.key_id,
                f"signature.signer: {signature.signer} may not sign for {source}",
            )
        self.directory.verify(
            signature.signer,
            signature.key_id,
            signature.value,
            signed_message(wire.header, wire.sections),
            at=envelope["recorded_at"],
        )
        try:
            wire_format.check_digests(wire)
        except InvalidEvent as error:
            raise SignatureError("bad_signature", signature.signer, signature.key_id, str(error)) from error

    def check_sections(self, wire: WireEvent, kind: str) -> None:
        """Each section is one of ``kind``'s, once, under its category; raises InvalidEvent."""
        seen: set[str] = set()
        for index, section in enumerate(wire.sections):
            schema = self.schemas.by_fingerprint.get(section.schema)
            if schema is None or schema.event_type != kind:
                raise InvalidEvent(
                    f"sections[{index}].schema",
                    f"{section.schema.hex()} is not a section schema of {kind}",
                )
            if schema.category.value != section.category:
                raise InvalidEvent(
                    f"sections[{index}].category",
                    f"{section.category} but the schema is of {schema.category.value}",
                )
            if section.category in seen:
                raise InvalidEvent(f"sections[{index}].category", f"a second {section.category} section")
            seen.add(section.category)
            unknown = set(section.fields) - set(schema.fields)
            if unknown:
                raise InvalidEvent(
                    f"sections[{index}].fields", f"{sorted(unknown)} are not fields of this section"
                )
            if section.sealed != (section.key_version > 0):
                raise InvalidEvent(f"sections[{index}].key_version", "a sealed section names its key version")

    def open(
        self,
        data: bytes,
        *,
        reader: str | None = None,
        verify: bool = True,
        may_sign: Callable[[str, str], bool] = lambda signer, source: signer == HUB_SIGNER,
        now: datetime | None = None,
    ) -> Opened:
        """The event in ``data`` as ``reader``'s country sees it (``None``: a reader with no keys,
        such as the projections: sealed sections read as erased). v1 bytes decode as they are."""
        if not self.is_v2(data):
            event = self.codec.decode(data)
            return Opened(event, signer="", key_id="", read=())
        wire = self.parse(data)
        header = self.header(wire)
        envelope = header["envelope"]
        kind = str(envelope["event_type"])
        if kind not in EVENT_MODELS:
            raise InvalidEvent("envelope.event_type", f"{kind} is not an event")
        self.check_sections(wire, kind)
        if verify:
            self.verify(wire, header, may_sign=may_sign)
        record: dict[str, Any] = {"envelope": envelope}
        facts = header["facts"]
        for name in self._facts[kind]:
            record[name] = facts[name]
        read: list[str] = []
        withheld: list[str] = []
        erased: list[str] = []
        reasons: dict[str, str] = {}
        for section in wire.sections:
            schema = self.schemas.by_fingerprint[section.schema]
            if section.body is None:
                withheld.append(section.category)
                continue
            body = section.body
            if section.sealed:
                why = self._cannot_open(envelope, reader)
                if why is None:
                    body, why = self._unsealed(envelope, section, schema, str(reader))
                if why is not None:
                    erased.append(section.category)
                    reasons[section.category] = why
                    continue
            record.update(self._decode_section(schema, body, section.category))
            read.append(section.category)
        for schema in self.schemas.sections_of(kind):
            for field_name in schema.fields:
                if field_name not in record:  # a section this copy lacks reads as empty
                    record[field_name] = _empty(kind, field_name, record)
        event = parse_event(record, now=now or self.codec.now())
        return Opened(
            event,
            wire.signature.signer,
            wire.signature.key_id,
            tuple(read),
            tuple(withheld),
            tuple(erased),
            reasons,
        )

    def _cannot_open(self, envelope: Mapping[str, Any], reader: str | None) -> str | None:
        if reader is None:
            return "sealed: no reader country"
        if self.keys is None:
            return "sealed: no key store"
        return None

    def _unsealed(
        self, envelope: Mapping[str, Any], section: Section, schema: SectionSchema, reader: str
    ) -> tuple[bytes, str | None]:
        assert self.keys is not None
        assert section.body is not None
        case_id = envelope["case_id"]
        try:
            key = self.keys.unwrap(case_id, reader)
        except KeysDestroyed as error:
            return b"", f"erased: {error}"
        except KeyNotGranted as error:
            return b"", f"not granted: {error}"
        except KeyStoreError as error:
            return b"", f"no key: {error}"
        aad = section_aad(str(envelope["event_id"]), case_id, section.category, schema.fingerprint)
        try:
            return open_sealed(key.key, section.body, aad), None
        except SealError as error:
            raise UnreadableSection(f"{section.category}", f"cannot be opened: {error}") from error

    def _decode_section(self, schema: SectionSchema, body: bytes, category: str) -> dict[str, Any]:
        if body[:2] != MARKER or body[2:HEADER_SIZE] != schema.fingerprint:
            raise UndecodableEvent(category, "the section's own header does not name its schema")
        buffer = BytesIO(body)
        buffer.seek(HEADER_SIZE)
        try:
            values = fastavro.schemaless_reader(buffer, self._section_readers[schema.fingerprint], None)
        except Exception as exc:  # fastavro signals corrupt bodies with many exception types
            raise UndecodableEvent(category, f"cannot be decoded: {exc}") from exc
        if buffer.tell() != len(body) or not isinstance(values, dict):
            raise UndecodableEvent(category, "unexpected bytes after the section's record")
        return values

    def decode(self, data: bytes, *, reader: str | None = None) -> Event:
        """:meth:`open`'s event."""
        return self.open(data, reader=reader).event
