"""Evidence of who sent what, when: a case's events as the hub accepted them, with the public keys
that verify them, in one self-contained file that anyone can check offline (``lintas evidence``).

A Case Management Meeting that disputes a referral ("we never received it", "that is not what you
sent") settles it with this: each event's bytes, as signed by the national system that sent it, and
the keys of the directory valid when it was recorded. Verifying needs neither Kafka nor the key
store; the personal data stays sealed (verification covers the sealed bytes' digests). Pure.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from hub.crypto.signing import KeyDirectory, PublicKey, SignatureError
from hub.errors import InvalidEvent
from hub.wire.codec import Wire

FORMAT: Final = "lintas-evidence/1"


@dataclass(frozen=True)
class LoggedEvent:
    """One record of the hub's log of accepted events."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


@dataclass(frozen=True)
class Verdict:
    offset: int
    event_id: str
    event_type: str
    source_country: str
    recorded_at: str
    signer: str
    key_id: str
    verified: bool
    detail: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key_document(key: PublicKey) -> dict[str, Any]:
    return {
        "signer": key.signer,
        "key_id": key.key_id,
        "public_key": _b64(key.public_key),
        "valid_from": key.valid_from.isoformat(),
        "valid_until": key.valid_until.isoformat() if key.valid_until else None,
        "demo": key.demo,
    }


def export_case(
    case_id: str, records: Iterable[LoggedEvent], wire: Wire, directory: KeyDirectory, *, now: datetime
) -> dict[str, Any]:
    """The evidence file of ``case_id`` from the hub's log (the records keyed by the case)."""
    events: list[dict[str, Any]] = []
    used: dict[tuple[str, str], PublicKey] = {}
    for record in records:
        if not wire.is_v2(record.value):
            continue  # a v1 event has no signature to show
        parsed = wire.parse(record.value)
        envelope = wire.header(parsed)["envelope"]
        if envelope["case_id"] != case_id:
            continue
        signature = parsed.signature
        key = directory.key(signature.signer, signature.key_id)
        if key is not None:
            used[(key.signer, key.key_id)] = key
        events.append(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp_ms": record.timestamp_ms,
                "event_id": str(envelope["event_id"]),
                "event_type": str(envelope["event_type"]),
                "source_country": str(envelope["source_country"]),
                "recorded_at": envelope["recorded_at"].isoformat(),
                "signer": signature.signer,
                "key_id": signature.key_id,
                "value": _b64(record.value),
            }
        )
    return {
        "format": FORMAT,
        "case_id": case_id,
        "exported_at": now.isoformat(),
        "keys": [_key_document(key) for _, key in sorted(used.items())],
        "events": events,
    }


def _keys_of(document: Mapping[str, Any]) -> KeyDirectory:
    keys = []
    for index, item in enumerate(document.get("keys", [])):
        try:
            keys.append(
                PublicKey(
                    signer=str(item["signer"]),
                    key_id=str(item["key_id"]),
                    public_key=base64.b64decode(item["public_key"], validate=True),
                    valid_from=datetime.fromisoformat(item["valid_from"]),
                    valid_until=datetime.fromisoformat(item["valid_until"]) if item["valid_until"] else None,
                    demo=bool(item.get("demo", False)),
                )
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise InvalidEvent(f"keys[{index}]", f"not a public key: {exc}") from exc
    return KeyDirectory(keys)


def verify_evidence(
    document: Mapping[str, Any], wire: Wire, *, directory: KeyDirectory | None = None
) -> list[Verdict]:
    """Each event of an evidence file, verified against the keys it carries (or ``directory``: a
    party may prefer its own copy of the directory to the file's)."""
    if document.get("format") != FORMAT:
        raise InvalidEvent("format", f"{document.get('format')!r} is not {FORMAT}")
    checker = Wire(wire.codec, directory=directory or _keys_of(document))
    verdicts = []
    events: Sequence[Mapping[str, Any]] = document.get("events", [])
    for item in events:
        base: dict[str, Any] = {
            "offset": int(item.get("offset", -1)),
            "event_id": str(item.get("event_id", "")),
            "event_type": str(item.get("event_type", "")),
            "source_country": str(item.get("source_country", "")),
            "recorded_at": str(item.get("recorded_at", "")),
            "signer": str(item.get("signer", "")),
            "key_id": str(item.get("key_id", "")),
        }
        try:
            value = base64.b64decode(item["value"], validate=True)
            parsed = checker.parse(value)
            header = checker.header(parsed)
            envelope = header["envelope"]
            claimed = (base["event_id"], base["source_country"], base["signer"])
            actual = (str(envelope["event_id"]), str(envelope["source_country"]), parsed.signature.signer)
            if claimed != actual:
                raise InvalidEvent("events", f"the file says {claimed} but the signed bytes say {actual}")
            checker.verify(parsed, header, may_sign=lambda signer, source: signer == "HUB")
        except (SignatureError, InvalidEvent, KeyError, ValueError) as error:
            verdicts.append(Verdict(**base, verified=False, detail=str(error)))
            continue
        verdicts.append(Verdict(**base, verified=True, detail="signature and every section digest verified"))
    return verdicts
