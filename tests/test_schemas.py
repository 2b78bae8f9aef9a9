"""The contract: generated models in step with the schemas, interoperability with the Apache Avro
implementation, and schema evolution checked between versions."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import avro.io
import avro.schema
import fastavro
import pytest
from hypothesis import given, settings

from hub.codec import HEADER_SIZE, MARKER, Codec
from hub.codegen import CONTRACT_MODULE, generate
from hub.compatibility import check_contract
from hub.contract import EVENT_MODELS, CountryCode, VictimIdentified
from hub.errors import SchemaError
from hub.events import Event, event_to_record, parse_event
from hub.schema_registry import default_contract, default_schema_root, load_contract
from tests.strategies import NOW, events
from tests.test_codec import fisherman


def _strip_logical_types(node: Any) -> Any:
    """Java's Parsing Canonical Form reduces logical types to their primitive; the Python ``avro``
    package keeps ``{"type": "int"}``, so the reference fingerprint is taken without them."""
    if isinstance(node, dict):
        if "logicalType" in node:
            return node["type"]
        return {key: _strip_logical_types(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_strip_logical_types(item) for item in node]
    return node


def _apache(event_type: str) -> avro.schema.Schema:
    standalone = default_contract().latest.events[event_type].standalone()
    return avro.schema.parse(json.dumps(standalone))


def _reference_fingerprint(event_type: str) -> bytes:
    standalone = default_contract().latest.events[event_type].standalone()
    return avro.schema.parse(json.dumps(_strip_logical_types(standalone))).fingerprint()


def test_generated_models_match_the_schemas() -> None:
    assert CONTRACT_MODULE.read_text(encoding="utf-8") == generate(default_contract().latest), (
        "hub/contract.py is out of date: run `lintas schemas codegen`"
    )


def test_every_event_record_has_a_model_with_the_same_fields() -> None:
    latest = default_contract().latest
    assert set(EVENT_MODELS) == set(latest.events)
    for name, schema in latest.events.items():
        avro_fields = [field["name"] for field in schema.standalone()["fields"]]
        assert list(EVENT_MODELS[name].model_fields) == avro_fields


def test_published_contract_is_compatible_between_versions() -> None:
    assert check_contract(default_contract()) == []


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_fingerprints_match_the_reference_implementation(event_type: str) -> None:
    schema = default_contract().latest.events[event_type]
    assert schema.fingerprint == _reference_fingerprint(event_type)


@settings(max_examples=150, deadline=None)
@given(events())
def test_apache_avro_reads_what_the_codec_writes(event: Event) -> None:
    data = Codec(clock=lambda: NOW).encode(event)
    event_type = type(event).__name__

    assert data[:2] == MARKER
    assert data[2:HEADER_SIZE] == _reference_fingerprint(event_type)
    body = io.BytesIO(data[HEADER_SIZE:])
    record = avro.io.DatumReader(_apache(event_type)).read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(data) - HEADER_SIZE
    assert parse_event(record, now=NOW) == event


def _plain(value: Any) -> Any:
    """What a hand-written Avro record looks like: lists, not tuples."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


@settings(max_examples=150, deadline=None)
@given(events())
def test_codec_reads_what_apache_avro_writes(event: Event) -> None:
    event_type = type(event).__name__
    record = _plain(event_to_record(event))
    for key in ("event_id", "correlation_id", "causation_id"):
        if record["envelope"][key] is not None:
            record["envelope"][key] = str(record["envelope"][key])
    if record.get("target_event_id") is not None:  # corrections and retractions name their target
        record["target_event_id"] = str(record["target_event_id"])
    body = io.BytesIO()
    avro.io.DatumWriter(_apache(event_type)).write(record, avro.io.BinaryEncoder(body))
    data = MARKER + _reference_fingerprint(event_type) + body.getvalue()

    assert Codec(clock=lambda: NOW).decode(data) == event


# -- evolution ----------------------------------------------------------------------------------


def _contract_with_v2(tmp_path: Path, change: Any) -> Path:
    """A contract folder holding v1 and a v2 made from v1 by ``change(named_types)``."""
    root = tmp_path / "avro"
    shutil.copytree(default_schema_root() / "v1", root / "v1")
    shutil.copytree(root / "v1", root / "v2")
    named = {path.name: json.loads(path.read_text()) for path in (root / "v2").glob("*.avsc")}
    change(named)
    for name, schema in named.items():
        (root / "v2" / name).write_text(json.dumps(schema, indent=2))
    return root


def _add_optional_field_and_country(named: dict[str, Any]) -> None:
    victim = named["lintas.events.VictimIdentified.avsc"]
    victim["fields"].insert(
        -1, {"name": "interpreter_assigned", "type": ["null", "boolean"], "default": None}
    )
    named["lintas.codes.CountryCode.avsc"]["symbols"].insert(-1, "MV")


def test_a_compatible_new_version_passes_the_check(tmp_path: Path) -> None:
    contract = load_contract(_contract_with_v2(tmp_path, _add_optional_field_and_country))
    assert [version.version for version in contract.versions] == [1, 2]
    assert check_contract(contract) == []


def test_a_new_required_field_breaks_backward_compatibility(tmp_path: Path) -> None:
    def add_required(named: dict[str, Any]) -> None:
        named["lintas.events.CaseClosed.avsc"]["fields"].append({"name": "closed_by", "type": "string"})

    problems = check_contract(load_contract(_contract_with_v2(tmp_path, add_required)))
    assert [(p.event_type, p.direction) for p in problems] == [("CaseClosed", "backward")]
    assert "closed_by" in str(problems[0])


def test_a_new_code_breaks_forward_compatibility_when_the_old_list_has_no_default(
    tmp_path: Path,
) -> None:
    def add_urgency(named: dict[str, Any]) -> None:
        named["lintas.codes.Urgency.avsc"]["symbols"].append("Immediate")

    root = _contract_with_v2(tmp_path, add_urgency)
    v1_urgency = root / "v1" / "lintas.codes.Urgency.avsc"
    without_default = json.loads(v1_urgency.read_text())
    del without_default["default"]
    v1_urgency.write_text(json.dumps(without_default))

    problems = check_contract(load_contract(root))

    assert [(p.event_type, p.direction) for p in problems] == [("ReferralRequested", "forward")]
    assert "Immediate" in str(problems[0])


def test_old_bytes_are_read_by_a_newer_reader(tmp_path: Path) -> None:
    contract = load_contract(_contract_with_v2(tmp_path, _add_optional_field_and_country))
    old = Codec(contract, clock=lambda: NOW, reader_version=1)
    new = Codec(contract, clock=lambda: NOW, reader_version=2)
    data = old.encode(parse_event(fisherman(), now=NOW))

    schema, record = new.decode_record(data)

    assert schema.version == 2
    assert record["interpreter_assigned"] is None
    assert record["envelope"]["case_id"] == "TH-2026-000123"


def test_new_bytes_are_read_by_an_older_reader(tmp_path: Path) -> None:
    contract = load_contract(_contract_with_v2(tmp_path, _add_optional_field_and_country))
    v2 = contract.versions[1].events["VictimIdentified"]
    record = event_to_record(parse_event(fisherman(), now=NOW))
    record["interpreter_assigned"] = True
    record["nationality"] = "MV"
    body = io.BytesIO()
    fastavro.schemaless_writer(body, v2.parsed, record)
    data = MARKER + v2.fingerprint + body.getvalue()

    event = Codec(contract, clock=lambda: NOW, reader_version=1).decode(data)

    assert isinstance(event, VictimIdentified)
    assert event.nationality == CountryCode.ZZ  # a code this reader lacks becomes "unknown"
    assert event.envelope.case_id == "TH-2026-000123"


def test_a_gap_between_versions_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "avro"
    shutil.copytree(default_schema_root() / "v1", root / "v1")
    shutil.copytree(default_schema_root() / "v1", root / "v3")
    with pytest.raises(SchemaError, match=r"without gaps, found \[1, 3\]"):
        load_contract(root)
