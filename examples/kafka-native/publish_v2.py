"""Publish a contract v2 VictimIdentified to Lintas from the schemas alone: sections encoded with Apache
Avro, the header, the section digests, an Ed25519 signature (cryptography), the outer record, Kafka.

    python publish_v2.py localhost:9092 TH-2026-000123 --demo-key
    python publish_v2.py kafka-1:9092 TH-2026-000123 --key th.pem --key-id th-2026-1

Each step is explained in docs/integrating.md. No personal-identity section: personal data is sealed
under the case's data key, which needs the key service (or the HTTP API, which seals for you).
"""

from __future__ import annotations

import argparse
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import avro.io
import avro.schema
from confluent_kafka import KafkaError, Message, Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lintas_avro import SCHEMAS, binary, fingerprint, load, single_object

#: Body fields the hub's sequence rules read: carried, signed, in the header (lintas.wire.Facts).
FACTS = ("consent_scope", "decision", "transit_country", "transit_change", "target_event_id")
#: Sections in the order an event carries them (the hub's own writer's order).
CATEGORIES = ("CaseCore", "AssistanceNeeds", "Legal", "Health", "PersonalIdentity")
#: What a signature covers starts with this, so it cannot be taken for a signature of anything else.
SIGNATURE_DOMAIN = b"lintas/v2/event\x00"


def victim_identified(case_id: str, destination: str) -> dict[str, Any]:
    """A Myanmar fisherman identified in Thailand, as one flat record (v1's fields, schema_version 2)."""
    now, source = datetime.now(UTC).replace(microsecond=0), case_id[:2]  # timestamp-millis: no µs
    envelope = {
        "event_id": str(uuid4()),  # stored with the event: resubmitting it is then a harmless duplicate
        "event_type": "VictimIdentified", "schema_version": 2, "case_id": case_id,
        "occurred_at": now - timedelta(days=1), "recorded_at": now,
        "source_country": source, "source_agency": f"{source}-DSDW", "destination_country": destination,
        "correlation_id": None, "causation_id": None,
    }  # fmt: skip
    return {
        "envelope": envelope, "status": "PossibleVictimOfTrafficking", "identified_on": now.date(),
        "identifying_agency_type": "LabourInspection", "exploitation_types": ["ForcedLabour"],
        "labour_sectors": ["Fishing"], "methods_of_control": ["DebtBondage", "WithholdsDocuments"],
        "recruitment_methods": ["JobOffer"], "sex": "Male", "age_band": "Adult25To34",
        "nationality": destination, "languages": ["my"], "needs": ["Shelter", "MedicalCare"],
        "reflection_period_start": now.date(), "reflection_period_days": 45,
        "consent_scope": ["CaseCore", "AssistanceNeeds", "Legal"], "personal": None,
    }  # fmt: skip


def encode(record: dict[str, Any], key: Ed25519PrivateKey, key_id: str) -> bytes:
    """``record`` as a signed v2 event (lintas.wire.Event), signed as its source country."""
    schemas = load(SCHEMAS / "v2", SCHEMAS / "v2" / "wire", SCHEMAS / "v2" / "sections")
    envelope = record["envelope"]
    kind = envelope["event_type"]
    # 1. The header: the envelope and the routing facts, single-object encoded (the hub reads this only).
    facts = {name: record.get(name) for name in FACTS}
    header = single_object(schemas["lintas.wire.Header"], {"envelope": envelope, "facts": facts})
    # 2. One section per data category that holds data: its fields as their own record, with its digest.
    sections = []
    for category in CATEGORIES:
        schema = schemas.get(f"lintas.sections.{kind}.{category}")
        if not isinstance(schema, avro.schema.RecordSchema):
            continue  # this event type has no field of the category
        values = {field.name: record[field.name] for field in schema.fields}
        filled = [f.name for f in schema.fields if not (f.has_default and values[f.name] == f.default)]
        if category != "CaseCore" and not filled:
            continue  # nothing of this category: no section
        body = single_object(schema, values)
        sections.append(
            {
                "category": category,
                "schema": fingerprint(schema),
                "fields": filled,  # what a receipt names when the hub withholds the section
                "sealed": False,  # PersonalIdentity (and sensitive categories) would be sealed
                "key_version": 0,
                "digest": hashlib.sha256(body).digest(),
                "body": body,
            }
        )
    # 3. The signature: the header bytes and each section's description (its encoding without the
    # body: with a null body, less the final byte, the null branch), so it verifies after the hub
    # withheld a section; a changed body no longer matches its signed digest.
    prefix = io.BytesIO()
    encoder = avro.io.BinaryEncoder(prefix)
    encoder.write_bytes(header)
    encoder.write_long(len(sections))
    described = (binary(schemas["lintas.wire.Section"], {**s, "body": None})[:-1] for s in sections)
    signed = SIGNATURE_DOMAIN + prefix.getvalue() + b"".join(described)
    signature = {"signer": envelope["source_country"], "key_id": key_id, "value": key.sign(signed)}
    # 4. The outer record.
    return single_object(
        schemas["lintas.wire.Event"], {"header": header, "sections": sections, "signature": signature}
    )


def demo_key(country: str) -> tuple[Ed25519PrivateKey, str]:
    """The published demo key of ``country`` (config/keys.yaml lists its public half): tests and demos
    only; a deployment sets LINTAS_KEYS__ALLOW_DEMO=false and the hub then refuses it."""
    seed = hashlib.sha256(b"lintas-demo-signing-key|" + country.encode() + b"|1").digest()
    return Ed25519PrivateKey.from_private_bytes(seed), f"{country.lower()}-demo-1"


def pem_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key in PEM (PKCS#8, e.g. ``openssl genpkey -algorithm ed25519``); text
    before the PEM block (a ``signer:``/``key_id:`` header) is skipped."""
    data = path.read_bytes()
    key = load_pem_private_key(data[data.index(b"-----BEGIN") :], password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: not an Ed25519 key")
    return key


def delivered(error: KafkaError | None, message: Message) -> None:
    if error is not None:  # raised out of flush()
        raise SystemExit(f"not delivered to {message.topic()}: {error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Publish a signed contract v2 event to Lintas.")
    parser.add_argument("bootstrap", help="Kafka bootstrap servers, host:port")
    parser.add_argument("case_id", help="'<CC>-<reference>': CC, the country that opened the case, signs")
    parser.add_argument("--to", default="MM", help="the partner country (default MM)")
    signing = parser.add_mutually_exclusive_group(required=True)
    signing.add_argument("--key", type=Path, help="the country's Ed25519 private key, PEM")
    signing.add_argument("--demo-key", action="store_true", help="the country's published demo key")
    parser.add_argument("--key-id", help="the key's id in the hub's directory of public keys")
    args = parser.parse_args(argv)
    country = args.case_id[:2]
    if args.demo_key:
        key, key_id = demo_key(country)
    elif args.key_id:
        key, key_id = pem_key(args.key), args.key_id
    else:
        parser.error("--key needs --key-id")
    record = victim_identified(args.case_id, args.to)
    topic = f"lintas.nrm.{country.lower()}.events"  # only your own country's topic
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True})
    producer.produce(
        topic, key=args.case_id.encode(), value=encode(record, key, key_id), on_delivery=delivered
    )
    if producer.flush(30):
        raise SystemExit(f"not delivered to {topic} within 30 s")
    print(f"published {record['envelope']['event_id']} of {args.case_id} to {topic}")


if __name__ == "__main__":
    main()
