"""Publish a contract v1 VictimIdentified to Lintas with Apache Avro and confluent-kafka alone.

    python publish_v1.py localhost:9092 JP-2026-000042

The hub takes v1 only from the national systems it signs for (``hub_signs_v1`` in
config/directory.yaml: Japan and the Philippines); see docs/integrating.md.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from confluent_kafka import KafkaError, Message, Producer
from lintas_avro import SCHEMAS, load, single_object


def victim_identified(case_id: str, destination: str) -> dict[str, Any]:
    """A Filipina identified in Japan (the case id starts with the code of the country that opened it)."""
    now, source = datetime.now(UTC).replace(microsecond=0), case_id[:2]  # timestamp-millis: no µs
    envelope = {
        "event_id": str(uuid4()),  # stored with the event: resubmitting it is then a harmless duplicate
        "event_type": "VictimIdentified", "schema_version": 1, "case_id": case_id,
        "occurred_at": now - timedelta(hours=3), "recorded_at": now,
        "source_country": source, "source_agency": f"{source}-NPA", "destination_country": destination,
        "correlation_id": None, "causation_id": None,
    }  # fmt: skip
    return {
        "envelope": envelope, "status": "PossibleVictimOfTrafficking", "identified_on": now.date(),
        "identifying_agency_type": "LawEnforcement", "exploitation_types": ["ForcedLabour"],
        "labour_sectors": ["Manufacturing"], "methods_of_control": [], "recruitment_methods": [],
        "sex": "Female", "age_band": "Adult25To34", "nationality": destination, "languages": ["fil", "en"],
        "needs": ["Shelter", "Interpretation", "SafeReturn"], "reflection_period_start": None,
        "reflection_period_days": None, "consent_scope": ["CaseCore", "AssistanceNeeds"], "personal": None,
    }  # fmt: skip


def encode(record: dict[str, Any]) -> bytes:
    return single_object(load(SCHEMAS / "v1")["lintas.events.VictimIdentified"], record)


def delivered(error: KafkaError | None, message: Message) -> None:
    if error is not None:  # raised out of flush()
        raise SystemExit(f"not delivered to {message.topic()}: {error}")


def main(bootstrap: str, case_id: str, destination: str = "PH") -> None:
    record = victim_identified(case_id, destination)
    topic = f"lintas.nrm.{case_id[:2].lower()}.events"  # only your own country's topic
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=case_id.encode(), value=encode(record), on_delivery=delivered)
    if producer.flush(30):
        raise SystemExit(f"not delivered to {topic} within 30 s")
    print(f"published {record['envelope']['event_id']} of {case_id} to {topic}")


if __name__ == "__main__":
    main(*sys.argv[1:])
