"""The codec: round trips, single-object framing, and a clear error for every kind of bad bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codec import HEADER_SIZE, MARKER, Codec
from hub.contract import CountryCode, VictimIdentified
from hub.errors import InvalidEvent, UndecodableEvent, UnknownSchema
from hub.events import Event, parse_event
from hub.schema_registry import load_contract
from tests.strategies import NOW, event_records, events


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec(clock=lambda: NOW)


def fisherman(**changes: Any) -> dict[str, Any]:
    """A Myanmar fisherman identified in Thailand as a presumed victim."""
    record: dict[str, Any] = {
        "envelope": {
            "event_id": "6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11",
            "event_type": "VictimIdentified",
            "schema_version": 1,
            "case_id": "TH-2026-000123",
            "occurred_at": NOW - timedelta(days=2),
            "recorded_at": NOW - timedelta(days=1),
            "source_country": "TH",
            "source_agency": "TH-DSDW",
            "destination_country": "MM",
        },
        "status": "PossibleVictimOfTrafficking",
        "identified_on": "2026-11-21",
        "identifying_agency_type": "LabourInspection",
        "exploitation_types": ["ForcedLabour"],
        "labour_sectors": ["Fishing"],
        "sex": "Male",
        "age_band": "Adult25To34",
        "nationality": "MM",
        "languages": ["my"],
        "needs": ["Shelter", "MedicalCare"],
        "reflection_period_start": "2026-11-21",
        "reflection_period_days": 45,
        "consent_scope": ["CaseCore", "AssistanceNeeds"],
        "personal": {"given_names": "Aung", "family_name": None, "documents": [], "contacts": []},
    }
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = record
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[leaf]
        else:
            target[leaf] = value
    return record


_DELETE = object()


def test_encoded_event_decodes_equal(codec: Codec) -> None:
    event = parse_event(fisherman(), now=NOW)

    data = codec.encode(event)

    assert data[:2] == MARKER
    assert data[2:HEADER_SIZE] == codec.contract.latest.events["VictimIdentified"].fingerprint
    assert codec.decode(data) == event


@settings(max_examples=300, deadline=None)
@given(events())
def test_every_valid_event_round_trips(event: Event) -> None:
    codec = Codec(clock=lambda: NOW)
    assert codec.decode(codec.encode(event)) == event


@settings(max_examples=100, deadline=None)
@given(event_records())
def test_the_same_event_always_encodes_to_the_same_bytes(record: dict[str, Any]) -> None:
    codec = Codec(clock=lambda: NOW)
    assert codec.encode(parse_event(record, now=NOW)) == codec.encode(parse_event(record, now=NOW))


# -- bad bytes ------------------------------------------------------------------------------------


def test_empty_bytes_are_rejected(codec: Codec) -> None:
    with pytest.raises(UndecodableEvent, match="empty message"):
        codec.decode(b"")


def test_truncated_header_is_rejected(codec: Codec) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW))
    with pytest.raises(UndecodableEvent, match="truncated header"):
        codec.decode(data[:7])


@pytest.mark.parametrize(
    ("keep", "field"),
    [
        (HEADER_SIZE, "envelope.event_id"),
        (HEADER_SIZE + 3, "envelope.event_id"),
        (-1, "personal.family_contact"),
    ],
)
def test_truncated_body_is_rejected_naming_the_field_it_ends_in(codec: Codec, keep: int, field: str) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW))
    with pytest.raises(UndecodableEvent, match=r"truncated body for VictimIdentified: ") as caught:
        codec.decode(data[:keep])
    assert caught.value.field == field


def test_trailing_bytes_are_rejected(codec: Codec) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW))
    with pytest.raises(UndecodableEvent, match="unexpected bytes after the record"):
        codec.decode(data + b"\x00")


def test_wrong_marker_is_rejected(codec: Codec) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW))
    with pytest.raises(UndecodableEvent, match="wrong marker 4f62"):
        codec.decode(b"Obj\x01" + data[4:])


def test_unknown_fingerprint_is_rejected(codec: Codec) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW))
    forged = MARKER + bytes.fromhex("0123456789abcdef") + data[HEADER_SIZE:]
    with pytest.raises(UnknownSchema, match="0123456789abcdef matches no published schema"):
        codec.decode(forged)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_anything_but_invalid_event(data: bytes) -> None:
    codec = Codec(clock=lambda: NOW)
    with pytest.raises(InvalidEvent):
        codec.decode(data)


@settings(max_examples=200, deadline=None)
@given(events(), st.data())
def test_corrupted_bodies_fail_with_invalid_event_or_decode_to_a_valid_event(
    event: Event, data: st.DataObject
) -> None:
    codec = Codec(clock=lambda: NOW)
    encoded = bytearray(codec.encode(event))
    position = data.draw(st.integers(HEADER_SIZE, len(encoded) - 1))
    encoded[position] ^= data.draw(st.integers(1, 255))
    try:
        decoded = codec.decode(bytes(encoded))
    except InvalidEvent as error:
        failure: InvalidEvent | None = error
    else:
        failure = None
        assert type(decoded) is type(event)
    if failure is not None:
        assert failure.field
        assert failure.reason


# -- corrupt bodies: each error names the field path and the reason -------------------------------


def varint(value: int) -> bytes:
    """Avro's zigzag varint of ``value`` (ints, longs, lengths, enum and union indexes)."""
    raw = (value << 1) ^ (value >> 63)
    out = bytearray()
    while raw > 0x7F:
        out.append(raw & 0x7F | 0x80)
        raw >>= 7
    out.append(raw)
    return bytes(out)


THREE_FORMS = {"exploitation_types": ["ForcedLabour", "Begging", "Other"]}


def forged(codec: Codec, changes: dict[str, Any], value: int) -> bytes:
    """The fisherman's bytes (with three forms of exploitation) with ``value`` written as a varint
    where they first differ from the fisherman with ``changes``: the index or length of the field the
    changes touch."""
    base = codec.encode(parse_event(fisherman(**THREE_FORMS), now=NOW))
    other = codec.encode(parse_event(fisherman(**{**THREE_FORMS, **changes}), now=NOW))
    at = next(i for i, (a, b) in enumerate(zip(base, other, strict=False)) if a != b)
    return base[:at] + varint(value) + base[at + 1 :]


@pytest.mark.parametrize(
    ("changes", "value", "field", "reason"),
    [
        pytest.param(
            {"envelope__source_country": "LA", "envelope__source_agency": "LA-DSDW"},
            250,
            "envelope.source_country",
            "corrupt body for VictimIdentified: enum index 250 is outside CountryCode's 28 symbols",
            id="enum-index",
        ),
        pytest.param(
            {"exploitation_types": ["ForcedLabour", "Begging", "Surrogacy"]},
            -40,
            "exploitation_types[2]",
            "corrupt body for VictimIdentified: enum index -40 is outside ExploitationType's 9 symbols",
            id="negative-enum-index-in-an-array",
        ),
        pytest.param(
            {"envelope__destination_country": None},
            5,
            "envelope.destination_country",
            "corrupt body for VictimIdentified: union branch 5 out of range (2 branches)",
            id="union-branch",
        ),
        pytest.param(
            {"envelope__case_id": "TH-2026-0001234"},
            -3,
            "envelope.case_id",
            "corrupt body for VictimIdentified: string length -3 is negative",
            id="negative-length",
        ),
        pytest.param(
            {"personal__given_names": "Aungs"},
            4_000_000,
            "personal.given_names",
            "truncated body for VictimIdentified: string length 4000000 runs past the end of the "
            "message (12 bytes left)",
            id="length-past-the-end",
        ),
    ],
)
def test_a_corrupt_body_is_rejected_naming_the_field_and_the_fault(
    codec: Codec, changes: dict[str, Any], value: int, field: str, reason: str
) -> None:
    # given the fisherman's bytes with one index or length overwritten
    data = forged(codec, changes, value)

    # when they are decoded, then the error names the field and what is wrong with it
    with pytest.raises(UndecodableEvent) as caught:
        codec.decode(data)
    assert caught.value.field == field
    assert caught.value.reason == reason
    assert caught.value.code == "undecodable"


def test_a_body_that_is_not_utf8_is_rejected_without_echoing_it(codec: Codec) -> None:
    data = bytearray(codec.encode(parse_event(fisherman(), now=NOW)))
    at = bytes(data).index(b"Aung")
    data[at + 1] = 0xFF
    with pytest.raises(UndecodableEvent) as caught:
        codec.decode(bytes(data))
    assert caught.value.field == "personal.given_names"
    assert "not valid UTF-8" in caught.value.reason
    assert "Aung" not in str(caught.value)


def test_an_id_that_is_not_a_uuid_is_named(codec: Codec) -> None:
    data = codec.encode(parse_event(fisherman(), now=NOW)).replace(b"6f1c1f56-", b"6f1c1f56x")
    with pytest.raises(UndecodableEvent, match=r"^envelope\.event_id: corrupt body .* is not a valid uuid$"):
        codec.decode(data)


def _undecodable(codec: Codec, data: bytes) -> UndecodableEvent | None:
    """The error decoding ``data`` raises when its body cannot be read; None when it can (whether or
    not the event it holds keeps the contract's rules)."""
    try:
        codec.decode(data)
    except UndecodableEvent as error:
        return error
    except InvalidEvent:
        pass
    return None


def _is_field_path(path: str, event: Event) -> bool:
    """Whether ``path`` (``envelope.case_id``, ``languages[1]``) starts at a field of ``event``."""
    head = path.split(".", 1)[0].split("[", 1)[0]
    return head in type(event).model_fields


@settings(max_examples=200, deadline=None)
@given(events(), st.data())
def test_any_byte_of_a_body_overwritten_fails_naming_a_field_or_decodes(
    event: Event, data: st.DataObject
) -> None:
    # given any event with any one byte of its body overwritten by any value
    codec = Codec(clock=lambda: NOW)
    encoded = bytearray(codec.encode(event))
    encoded[data.draw(st.integers(HEADER_SIZE, len(encoded) - 1))] = data.draw(st.integers(0, 255))

    # when it is decoded
    error = _undecodable(codec, bytes(encoded))

    # then it decodes (perhaps breaking a rule), or what cannot be read is named by its field, and no
    # Python exception leaks out
    if error is None:
        return
    if error.field == "<bytes>":
        assert "unexpected bytes after the record" in error.reason
    else:
        assert _is_field_path(error.field, event), error
        assert error.reason.startswith(("corrupt body for ", "truncated body for ")), error
    assert "Error(" not in str(error)


@settings(max_examples=200, deadline=None)
@given(events(), st.integers(0, 255), st.data())
def test_any_value_of_a_source_country_byte_fails_naming_the_field_or_decodes(
    event: Event, byte: int, data: st.DataObject
) -> None:
    # given any event whose source country's enum byte is overwritten by any value
    codec = Codec(clock=lambda: NOW)
    base = codec.encode(event)
    other_country = data.draw(st.sampled_from([c for c in CountryCode if c != event.envelope.source_country]))
    moved = event.envelope.model_copy(update={"source_country": other_country})
    other = codec.encode(event.model_copy(update={"envelope": moved}))
    at = next(i for i, (a, b) in enumerate(zip(base, other, strict=True)) if a != b)
    forged = base[:at] + bytes([byte]) + base[at + 1 :]

    # when it is decoded, then it decodes, or the error names a field: never an IndexError
    error = _undecodable(codec, forged)
    if error is None:
        return
    if byte % 2 == 0 and byte // 2 >= len(CountryCode) and byte < 0x80:
        assert error.field == "envelope.source_country"
        assert f"enum index {byte // 2} is outside CountryCode's" in error.reason
    assert error.field != "<bytes>" or "unexpected bytes" in error.reason
    assert "IndexError" not in str(error)


# -- bad fields: each error names the field path and the reason -----------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"sex": _DELETE}, "sex", "required field is missing"),
        ({"envelope__case_id": _DELETE}, "envelope.case_id", "required field is missing"),
        ({"reflection_period_days": "45"}, "reflection_period_days", "valid integer"),
        ({"envelope__schema_version": 1.5}, "envelope.schema_version", "valid integer"),
        ({"languages": "my"}, "languages", "valid tuple"),
        ({"nationality": "XX"}, "nationality", "unknown code 'XX'"),
        ({"envelope__source_country": "Siam"}, "envelope.source_country", "unknown code 'Siam'"),
        ({"exploitation_types": ["Slavery"]}, "exploitation_types.0", "unknown code 'Slavery'"),
        ({"personal__passport": "M1234567"}, "personal.passport", "not part of the contract"),
        (
            {"envelope__occurred_at": NOW + timedelta(days=3)},
            "envelope.occurred_at",
            "in the future",
        ),
        ({"envelope__case_id": "2026/123"}, "envelope.case_id", "is not '<country code>-"),
        ({"envelope__event_type": "VictimFound"}, "envelope.event_type", "unknown code"),
        (
            {"age_band": "UncertainPresumedChild"},
            "needs",
            "must include ChildProtection when age_band is UncertainPresumedChild",
        ),
        ({"reflection_period_days": 7}, "reflection_period_days", "outside 30..90 days"),
        (
            {"envelope__destination_country": "TH"},
            "envelope.destination_country",
            "the source country itself",
        ),
    ],
)
def test_bad_fields_raise_invalid_event_naming_field_and_reason(
    changes: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(fisherman(**changes), now=NOW)
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{field}: ")


def test_a_presumed_child_with_child_protection_is_valid() -> None:
    event = parse_event(
        fisherman(age_band="UncertainPresumedChild", needs=["Shelter", "ChildProtection"]), now=NOW
    )
    assert isinstance(event, VictimIdentified)


def test_decoding_applies_the_same_rules_as_parsing(codec: Codec) -> None:
    """Bytes written by a system whose clock runs days ahead are refused on decode too."""
    ahead = Codec(clock=lambda: NOW + timedelta(days=10))
    future = parse_event(
        fisherman(
            envelope__occurred_at=NOW + timedelta(days=9),
            envelope__recorded_at=NOW + timedelta(days=9),
        ),
        now=NOW + timedelta(days=10),
    )
    with pytest.raises(InvalidEvent, match=r"envelope\.occurred_at: .* is in the future"):
        codec.decode(ahead.encode(future))


def test_timestamps_are_kept_to_the_millisecond_in_utc() -> None:
    bangkok = datetime(2026, 11, 20, 9, 30, 15, 123_456, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Asia/Bangkok")
    )
    event = parse_event(fisherman(envelope__occurred_at=bangkok), now=NOW)
    assert event.envelope.occurred_at == datetime(2026, 11, 20, 9, 30, 15, 123_000, tzinfo=UTC)
    assert event.envelope.occurred_at.tzinfo is UTC


# -- quick reads: uuids as text, fields read apart ------------------------------------------------

RUNS = {"VictimIdentified": (("methods_of_control", "recruitment_methods"), ("needs",), ("personal",))}


def _with_text_uuids(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _with_text_uuids(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_text_uuids(value) for value in node]
    return str(node) if isinstance(node, UUID) else node


@settings(max_examples=300, deadline=None)
@given(events())
def test_a_quick_read_is_the_decoded_record_with_uuids_as_text(event: Event) -> None:
    # given any valid event's bytes
    codec = Codec(clock=lambda: NOW)
    data = codec.encode(event)

    # when they are read quickly, with the fields minimisation may withhold read apart
    quick = codec.quick_reader(RUNS).read(data)

    # then the record is the decoded record, every uuid as str() writes it
    assert quick is not None
    schema, record, spans = quick
    assert (schema, _with_text_uuids(codec.decode_record(data)[1])) == (schema, record)
    assert schema == codec.decode_record(data)[0]
    # and each run read apart sits exactly where its fields' bytes are
    assert spans is not None
    assert set(spans) == set(RUNS.get(schema.event_type, ()))
    reader = codec.quick_reader(RUNS)
    for run, (start, end) in spans.items():
        assert data[start:end] == reader.encode_run(data, run, {name: record[name] for name in run})
    # and the record is written again to the same bytes
    assert codec.encode_decoded(schema.event_type, record) == data


def test_a_uuid_not_written_as_str_writes_it_is_not_read_quickly(codec: Codec) -> None:
    record = fisherman(envelope__event_id="6F1C1F56-7B8E-4C1E-9A55-0D6C3E0B7A11")
    data = codec.encode_record("VictimIdentified", record)

    assert codec.quick_reader().read(data) is None
    assert str(codec.decode_record(data)[1]["envelope"]["event_id"]) == "6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc3\x01" + bytes(8), id="unknown-fingerprint"),
        pytest.param(HEADER_SIZE, id="truncated"),
        pytest.param(-1, id="truncated-at-the-end"),
        pytest.param(b"\x00", id="trailing-byte"),
    ],
)
def test_bytes_that_do_not_decode_are_not_read_quickly(codec: Codec, data: bytes | int) -> None:
    valid = codec.encode(parse_event(fisherman(), now=NOW))
    if isinstance(data, int):
        data = valid[:data]
    elif data == b"\x00":
        data = valid + data
    assert codec.quick_reader(RUNS).read(data) is None
    with pytest.raises(InvalidEvent):
        codec.decode_record(data)


def test_bytes_of_an_older_version_are_read_quickly_without_spans(tmp_path: Path) -> None:
    from tests.test_schemas import _add_optional_field_and_country, _contract_with_v2  # imports this module

    # given bytes written in v1, read by a hub on v2
    contract = load_contract(_contract_with_v2(tmp_path, _add_optional_field_and_country))
    data = Codec(contract, clock=lambda: NOW, reader_version=1).encode(parse_event(fisherman(), now=NOW))
    new = Codec(contract, clock=lambda: NOW, reader_version=2)

    # when they are read quickly, then they are resolved to v2, with no spans (the bytes are v1's)
    quick = new.quick_reader(RUNS).read(data)
    assert quick is not None
    schema, record, spans = quick
    assert schema.version == 2
    assert spans is None
    assert record == _with_text_uuids(new.decode_record(data)[1])
