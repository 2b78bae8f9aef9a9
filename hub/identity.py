"""Event ids unique across the hub: which case owns an event id. Pure.

An event id belongs to the first case that submitted it: the router claims every new id on the
claims topic ``lintas.router.ids`` (key: the event id, value: the case id) and routes the event only
once the claim is visible there; every router worker reads that whole topic, and the first claim of an
id in it wins. So all workers, and a worker after a restart, agree on the owner of every id, whatever
partition its cases are in: the same id in another case is a *conflict*, in the same case the router's
usual check tells a duplicate (same content) from a conflict (other content).

The index keeps, per id, 24 bytes of integers (the id and a 64-bit digest of the case id) in a dict:
about 100 bytes an id in CPython. It holds what the claims topic holds, which is bounded by the topic's
retention (``hub.kafka.topic_config``: 400 days); an id first claimed longer ago than that is no
longer known to the index (its own case still knows it, see ``CaseRoute.seen``).

The event id and case id are read straight from the bytes (the envelope's first and fourth fields)
without decoding the body, for every writer schema whose layout starts that way; any other is decoded.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, NamedTuple

from hub.codec import HEADER_SIZE, Codec
from hub.errors import InvalidEvent

_ENVELOPE_HEAD = ("event_id", "event_type", "schema_version", "case_id")


class Identity(NamedTuple):
    event_id: int
    case: int  # 64-bit digest of the case id

    @classmethod
    def of(cls, event_id: str, case_id: str) -> Identity:
        return cls(uuid.UUID(event_id).int, case_digest(case_id))


def case_digest(case_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(case_id.encode(), digest_size=8).digest(), "little")


def _standard(parsed: dict[str, Any]) -> bool:
    fields = parsed.get("fields") or []
    if not fields or fields[0]["name"] != "envelope" or not isinstance(fields[0]["type"], dict):
        return False
    head = fields[0]["type"].get("fields") or []
    names = tuple(field["name"] for field in head[: len(_ENVELOPE_HEAD)])
    types = [field["type"] for field in head[: len(_ENVELOPE_HEAD)]]
    return (
        names == _ENVELOPE_HEAD
        and isinstance(types[0], dict)
        and types[0].get("type") == "string"
        and isinstance(types[1], dict)
        and types[1].get("type") == "enum"
        and types[2] == "int"
        and types[3] == "string"
    )


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """A zigzag-encoded Avro long at ``at``: (value, next position); IndexError past the end."""
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), at
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _string(data: bytes, at: int) -> tuple[str, int]:
    length, at = _varint(data, at)
    if length < 0 or at + length > len(data):
        raise ValueError("bad string length")
    return data[at : at + length].decode(), at + length


class Identities:
    """Reads (event id, case id) of submitted bytes; None when they are no readable event (the
    router rejects those with the reason)."""

    def __init__(self, codec: Codec, *, wire_fingerprint: bytes | None = None) -> None:
        self.codec = codec
        self._standard = {
            schema.fingerprint: _standard(schema.parsed) for schema in codec.contract.all_message_schemas()
        }
        self._wire = wire_fingerprint

    def of(self, data: bytes) -> tuple[str, str] | None:
        fingerprint = data[2:HEADER_SIZE] if len(data) > HEADER_SIZE else None
        start = HEADER_SIZE
        if fingerprint is not None and fingerprint == self._wire:
            # v2: the envelope leads the header, itself single-object encoded, which leads the event.
            try:
                _, start = _varint(data, HEADER_SIZE)
            except (IndexError, ValueError):
                return None
            start += HEADER_SIZE
            standard: bool | None = True
        else:
            standard = self._standard.get(fingerprint) if fingerprint is not None else None
        if standard:
            try:
                event_id, at = _string(data, start)
                _, at = _varint(data, at)  # event type
                _, at = _varint(data, at)  # schema version
                case_id, _ = _string(data, at)
                uuid.UUID(event_id)
            except (IndexError, ValueError, UnicodeDecodeError):
                return None
            return event_id, case_id
        if standard is None:
            return None
        try:
            envelope = self.codec.decode(data).envelope
        except InvalidEvent:
            return None
        return str(envelope.event_id), envelope.case_id


class IdIndex:
    """The owner (case) of every claimed event id: the first claim read wins."""

    def __init__(self) -> None:
        self._owner: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._owner)

    def add(self, event_id: str, case_id: str) -> bool:
        """Take a claim read from the claims topic; True when it made a new owner."""
        try:
            identity = Identity.of(event_id, case_id)
        except ValueError:
            return False  # not written by a router: ignore
        if identity.event_id in self._owner:
            return False
        self._owner[identity.event_id] = identity.case
        return True

    def owner(self, event_id: str) -> int | None:
        return self._owner.get(uuid.UUID(event_id).int)
