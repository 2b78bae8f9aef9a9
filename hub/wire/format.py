"""Wire format v2, the outer record: read and written by hand, byte for byte as Avro writes
``lintas.wire.Event`` (a test holds the two to the same bytes), because the hub reads it for every
event and never needs more of it than the header bytes and each section's description.

Pure: no keys, no I/O. What the origin signs (:func:`signed_message`) is the header bytes as sent and
each section's *description* (category, schema, fields, sealing, digest: its encoding without the
body), so the signature still verifies after the hub withheld a section (its body becomes null) and a
changed body shows as a digest mismatch (:func:`check_digests`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final

from hub.codec import HEADER_SIZE, MARKER
from hub.contract import DataCategory
from hub.errors import InvalidEvent, UndecodableEvent

SIGNATURE_DOMAIN: Final = b"lintas/v2/event\x00"
DIGEST_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
FINGERPRINT_SIZE: Final = 8
#: DataCategory symbols in the enum's order (an Avro enum is written as its index).
CATEGORIES: Final = tuple(category.value for category in DataCategory)
_CATEGORY_INDEX: Final = {symbol: index for index, symbol in enumerate(CATEGORIES)}


@dataclass(frozen=True, slots=True)
class Section:
    category: str
    schema: bytes
    fields: tuple[str, ...]
    sealed: bool
    key_version: int
    digest: bytes
    body: bytes | None
    #: The section's encoding without its body, as read (empty for a section built here).
    description: bytes = b""

    def described(self) -> bytes:
        return self.description or describe(self)


@dataclass(frozen=True, slots=True)
class Signature:
    signer: str
    key_id: str
    value: bytes


@dataclass(frozen=True, slots=True)
class WireEvent:
    header: bytes
    sections: tuple[Section, ...]
    signature: Signature

    def section(self, category: str) -> Section | None:
        for section in self.sections:
            if section.category == category:
                return section
        return None


def digest_of(body: bytes) -> bytes:
    return hashlib.sha256(body).digest()


# -- writing -------------------------------------------------------------------------------------


def _long(value: int) -> bytes:
    raw = (value << 1) ^ (value >> 63)
    out = bytearray()
    while raw > 0x7F:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


def _bytes(value: bytes) -> bytes:
    return _long(len(value)) + value


def describe(section: Section) -> bytes:
    """A section's Avro encoding up to (not including) its body."""
    parts = [_long(_CATEGORY_INDEX[section.category]), section.schema]
    if section.fields:
        parts.append(_long(len(section.fields)))
        parts += (_bytes(name.encode()) for name in section.fields)
    parts += (b"\x00", b"\x01" if section.sealed else b"\x00", _long(section.key_version), section.digest)
    return b"".join(parts)


def _body(body: bytes | None) -> bytes:
    return b"\x00" if body is None else b"\x02" + _bytes(body)


def write(event: WireEvent, fingerprint: bytes) -> bytes:
    """The single-object encoding of ``event`` (``fingerprint``: lintas.wire.Event's)."""
    parts = [MARKER, fingerprint, _bytes(event.header)]
    if event.sections:
        parts.append(_long(len(event.sections)))
        for section in event.sections:
            parts += (section.described(), _body(section.body))
    parts.append(b"\x00")
    signature = event.signature
    parts += (_bytes(signature.signer.encode()), _bytes(signature.key_id.encode()), signature.value)
    return b"".join(parts)


def signed_message(header: bytes, sections: Sequence[Section]) -> bytes:
    """What the origin's signature covers."""
    parts = [SIGNATURE_DOMAIN, _bytes(header), _long(len(sections))]
    parts += (section.described() for section in sections)
    return b"".join(parts)


def withholding(event: WireEvent, categories: frozenset[str]) -> WireEvent:
    """``event`` with the bodies of the sections of ``categories`` removed."""
    return replace(
        event,
        sections=tuple(
            replace(section, body=None) if section.category in categories else section
            for section in event.sections
        ),
    )


def check_digests(event: WireEvent) -> None:
    """Raises :class:`InvalidEvent` naming the first section whose body is not the one described."""
    for index, section in enumerate(event.sections):
        if section.body is not None and hashlib.sha256(section.body).digest() != section.digest:
            raise InvalidEvent(
                f"sections[{index}].digest",
                f"the {section.category} section's body does not match its digest: it was changed",
            )


# -- reading -------------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def fault(self, path: str, reason: str) -> UndecodableEvent:
        return UndecodableEvent(path, f"{reason} (at byte {self.position} of {len(self.data)})")

    def long(self, path: str) -> int:
        data, position = self.data, self.position
        shift = result = 0
        while True:
            if position >= len(data):
                raise self.fault(path, "truncated")
            byte = data[position]
            position += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise self.fault(path, "varint longer than 10 bytes")
        self.position = position
        return (result >> 1) ^ -(result & 1)

    def take(self, path: str, size: int) -> bytes:
        end = self.position + size
        if size < 0 or end > len(self.data):
            raise self.fault(path, f"needs {size} bytes, {len(self.data) - self.position} remain")
        value = self.data[self.position : end]
        self.position = end
        return value

    def sized(self, path: str) -> bytes:
        return self.take(path, self.long(path))

    def text(self, path: str) -> str:
        try:
            return self.sized(path).decode()
        except UnicodeDecodeError as exc:
            raise self.fault(path, "not UTF-8") from exc


def parse(data: bytes) -> WireEvent:
    """The outer record of v2 bytes (after the 10-byte single-object header, which the caller has
    matched to lintas.wire.Event); raises :class:`UndecodableEvent` naming the field."""
    reader = _Reader(data, HEADER_SIZE)
    header = reader.sized("header")
    sections: list[Section] = []
    while True:
        count = reader.long("sections")
        if count == 0:
            break
        if count < 0:  # a block with its size in bytes
            count = -count
            reader.long("sections")
        if count > 64:
            raise reader.fault("sections", f"{count} sections: an event has at most {len(CATEGORIES)}")
        for _ in range(count):
            sections.append(_section(reader, len(sections)))
    signer = reader.text("signature.signer")
    key_id = reader.text("signature.key_id")
    value = reader.take("signature.value", SIGNATURE_SIZE)
    if reader.position != len(data):
        raise reader.fault("<bytes>", f"{len(data) - reader.position} unexpected bytes after the record")
    return WireEvent(header, tuple(sections), Signature(signer, key_id, value))


def _section(reader: _Reader, index: int) -> Section:
    path = f"sections[{index}]"
    start = reader.position
    category_index = reader.long(f"{path}.category")
    if not 0 <= category_index < len(CATEGORIES):
        raise reader.fault(f"{path}.category", f"enum index {category_index} is not a data category")
    schema = reader.take(f"{path}.schema", FINGERPRINT_SIZE)
    fields: list[str] = []
    while True:
        count = reader.long(f"{path}.fields")
        if count == 0:
            break
        if count < 0:
            count = -count
            reader.long(f"{path}.fields")
        if count + len(fields) > 256:
            raise reader.fault(f"{path}.fields", "more field names than any section has")
        fields += (reader.text(f"{path}.fields") for _ in range(count))
    sealed_byte = reader.take(f"{path}.sealed", 1)
    if sealed_byte not in (b"\x00", b"\x01"):
        raise reader.fault(f"{path}.sealed", "a boolean is 0 or 1")
    key_version = reader.long(f"{path}.key_version")
    digest = reader.take(f"{path}.digest", DIGEST_SIZE)
    description = reader.data[start : reader.position]
    branch = reader.long(f"{path}.body")
    if branch == 0:
        body = None
    elif branch == 1:
        body = reader.sized(f"{path}.body")
    else:
        raise reader.fault(f"{path}.body", f"union branch {branch} of [null, bytes]")
    return Section(
        CATEGORIES[category_index],
        schema,
        tuple(fields),
        sealed_byte == b"\x01",
        key_version,
        digest,
        body,
        description,
    )
