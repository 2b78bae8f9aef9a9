"""The envelope mirrored into Kafka headers (CloudEvents Kafka binding, binary mode), so that a router
can see type, case and route without decoding the Avro body."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hub.contract import Envelope

CONTENT_TYPE = b"application/vnd.lintas.event+avro"
SPEC_VERSION = b"1.0"

Headers = list[tuple[str, bytes]]


def envelope_headers(envelope: Envelope) -> Headers:
    return record_headers(envelope.__dict__)


def record_headers(envelope: Mapping[str, Any]) -> Headers:
    """The headers of an envelope's fields (a model's, or a decoded record's: codes as strings)."""
    source = str(envelope["source_country"])
    headers: Headers = [
        ("ce_specversion", SPEC_VERSION),
        ("ce_id", str(envelope["event_id"]).encode()),
        ("ce_type", f"org.lintas.{envelope['event_type']!s}".encode()),
        ("ce_source", f"/nrm/{source}/{envelope['source_agency']}".encode()),
        ("ce_time", envelope["occurred_at"].isoformat().encode()),
        ("ce_subject", envelope["case_id"].encode()),
        ("ce_dataschemaversion", str(envelope["schema_version"]).encode()),
        ("content-type", CONTENT_TYPE),
    ]
    destination = envelope["destination_country"]
    if destination is not None:
        headers.append(("ce_lintasdestination", str(destination).encode()))
    return headers


def header_map(headers: Sequence[tuple[str, bytes]] | None) -> Mapping[str, bytes]:
    return dict(headers or ())
