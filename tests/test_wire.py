"""Wire format v2: sections, sealing and signatures, without Kafka."""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import avro.io
import avro.schema
import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codec import HEADER_SIZE, Codec
from hub.contract import DataCategory
from hub.crypto.keystore import EmbeddedKeyStore, KeysDestroyed
from hub.crypto.signing import KeyDirectory, SignatureError, Signer, demo_signer
from hub.errors import InvalidEvent
from hub.events import Event
from hub.minimise import minimise
from hub.schema_registry import default_contract
from hub.wire import format as wire_format
from hub.wire.codec import HUB_SIGNER, Wire
from hub.wire.schemas import FACT_FIELDS, section_documents, wire_schemas
from tests.strategies import COUNTRIES, NOW, events

CODEC = Codec(clock=lambda: NOW)
SIGNERS = {country: demo_signer(country) for country in (*COUNTRIES, HUB_SIGNER)}
KEYS_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # generated events go back to 2015
DIRECTORY = KeyDirectory([signer.public(valid_from=KEYS_FROM) for signer in SIGNERS.values()])


@pytest.fixture
def keys(tmp_path: Path) -> EmbeddedKeyStore:
    return EmbeddedKeyStore(tmp_path / "keys.sqlite")


def _wire(keys: EmbeddedKeyStore | None, directory: KeyDirectory = DIRECTORY) -> Wire:
    return Wire(CODEC, directory=directory, keys=keys)


def sealed(event: Event, keys: EmbeddedKeyStore, signer: Signer | None = None) -> bytes:
    source = event.envelope.source_country.value
    return _wire(keys).seal(event, signer or SIGNERS[source], keys=keys)


def with_personal(event: Event) -> bool:
    return getattr(event, "personal", None) is not None


_slow = settings(max_examples=40, deadline=None)


# -- round trips -----------------------------------------------------------------------------------


def fresh_keys() -> EmbeddedKeyStore:
    """A key store of one hypothesis example's own (generated cases reuse case ids)."""
    return EmbeddedKeyStore(Path(tempfile.mkdtemp(prefix="lintas-keys-")) / "keys.sqlite")


@_slow
@given(event=events())
def test_any_event_round_trips_for_the_country_that_holds_the_person(event: Event) -> None:
    keys = fresh_keys()
    data = sealed(event, keys)
    opened = _wire(keys).open(data, reader=event.envelope.source_country.value)
    assert opened.event == event
    assert opened.erased == ()
    assert opened.signer == event.envelope.source_country.value


@_slow
@given(event=events(), drop=st.sets(st.sampled_from([c.value for c in DataCategory])))
def test_dropping_any_sections_keeps_the_origin_signature_verifiable(event: Event, drop: set[str]) -> None:
    keys = fresh_keys()
    wire = _wire(keys)
    parsed = wire.parse(sealed(event, keys))
    dropped = drop - {DataCategory.CaseCore.value}  # the hub never withholds the case core
    thinned = wire_format.write(wire_format.withholding(parsed, frozenset(dropped)), wire.event_fingerprint)

    opened = wire.open(thinned, reader=event.envelope.source_country.value)  # verifies, or raises

    kept = [category for category in DataCategory if category.value not in dropped]
    assert opened.event == minimise(event, kept)[0]
    present = {section.category for section in parsed.sections}
    assert set(opened.withheld) == dropped & present


def test_sealing_the_same_event_twice_gives_the_same_bytes(keys: EmbeddedKeyStore) -> None:
    # given an identification with personal data
    event = _identification()

    # then a resubmission is recognisable as the same bytes, though the personal data is sealed
    assert sealed(event, keys) == sealed(event, keys)


def _identification() -> Event:
    from tests.test_routing import TH_MM

    return TH_MM.identified()


# -- what is on the wire ---------------------------------------------------------------------------


def test_no_personal_value_is_in_the_bytes(keys: EmbeddedKeyStore) -> None:
    event = _identification()
    data = sealed(event, keys)
    for value in (b"Aung", b"Win", b"CI-0042", b"+95 9 4000 0000", b"Hpa-an"):
        assert value not in data
    # while the case core is readable without any key
    opened = _wire(None).open(data)
    assert opened.erased == (DataCategory.PersonalIdentity.value,)
    assert getattr(opened.event, "personal", "absent") is None
    assert opened.event.envelope == event.envelope


def test_the_hand_written_outer_record_is_what_fastavro_and_apache_avro_read(keys: EmbeddedKeyStore) -> None:
    data = sealed(_identification(), keys)
    schemas = wire_schemas()[-1]
    body = io.BytesIO(data)
    body.seek(HEADER_SIZE)
    record = fastavro.schemaless_reader(body, schemas.event.parsed, None)
    parsed = wire_format.parse(data)
    assert record["header"] == parsed.header
    assert [s["digest"] for s in record["sections"]] == [s.digest for s in parsed.sections]
    assert record["signature"]["value"] == parsed.signature.value

    # and another Avro implementation reads the same record from the committed schema
    apache = avro.schema.parse(json.dumps(schemas.event.parsed and _standalone(schemas.event.path)))
    decoded = avro.io.DatumReader(apache).read(avro.io.BinaryDecoder(io.BytesIO(data[HEADER_SIZE:])))
    assert decoded["signature"]["signer"] == "TH"
    assert [s["category"] for s in decoded["sections"]] == [s.category for s in parsed.sections]

    # and writing it back by hand gives the very bytes
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schemas.event.parsed, record)
    assert data[HEADER_SIZE:] == buffer.getvalue()


def _standalone(path: Path) -> dict[str, object]:
    from hub.schema_registry import _inline_named, _read_named_types

    named = {**_read_named_types(path.parent.parent), **_read_named_types(path.parent)}
    inlined: dict[str, object] = _inline_named(named[path.name.removesuffix(".avsc")], named, set())
    return inlined


def test_the_committed_section_schemas_are_derived_from_the_events() -> None:
    version = default_contract().latest
    documents = section_documents(version)
    folder = version.directory / "sections"
    committed = {path.name.removesuffix(".avsc") for path in folder.glob("*.avsc")}
    assert committed == set(documents), "run `lintas schemas codegen`"
    for name, document in documents.items():
        on_disk = json.loads((folder / f"{name}.avsc").read_text(encoding="utf-8"))
        assert on_disk == document, f"{name} differs: run `lintas schemas codegen`"


def test_no_section_holds_a_routing_fact_or_the_envelope() -> None:
    for schema in wire_schemas()[-1].sections.values():
        assert not set(schema.fields) & {*FACT_FIELDS, "envelope"}


# -- tampering ------------------------------------------------------------------------------------


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_a_changed_section_body_is_a_bad_signature(keys: EmbeddedKeyStore) -> None:
    wire = _wire(keys)
    data = sealed(_identification(), keys)
    parsed = wire.parse(data)
    core = parsed.sections[0]
    assert core.body is not None
    changed = replace(
        parsed, sections=(replace(core, body=_flip(core.body, len(core.body) - 1)), *parsed.sections[1:])
    )
    with pytest.raises(SignatureError) as raised:
        wire.open(wire_format.write(changed, wire.event_fingerprint), reader="TH")
    assert raised.value.reason == "bad_signature"
    assert "sections[0]" in str(raised.value)


def test_a_changed_header_or_signature_is_a_bad_signature(keys: EmbeddedKeyStore) -> None:
    wire = _wire(keys)
    parsed = wire.parse(sealed(_identification(), keys))
    other_header = _flip(parsed.header, len(parsed.header) - 1)
    for changed in (
        replace(parsed, header=other_header),
        replace(parsed, signature=replace(parsed.signature, value=_flip(parsed.signature.value, 0))),
    ):
        with pytest.raises((SignatureError, InvalidEvent)) as raised:
            wire.open(wire_format.write(changed, wire.event_fingerprint), reader="TH")
        if isinstance(raised.value, SignatureError):
            assert raised.value.reason == "bad_signature"


def test_a_key_the_directory_does_not_hold_is_an_unknown_key(keys: EmbeddedKeyStore) -> None:
    stranger = Signer.generate("TH", "th-unlisted-1")
    data = sealed(_identification(), keys, signer=stranger)
    with pytest.raises(SignatureError) as raised:
        _wire(keys).open(data, reader="TH")
    assert raised.value.reason == "unknown_key"


def test_another_country_may_not_sign_for_the_source(keys: EmbeddedKeyStore) -> None:
    data = sealed(_identification(), keys, signer=SIGNERS["MM"])
    with pytest.raises(SignatureError) as raised:
        _wire(keys).open(data, reader="TH")
    assert raised.value.reason == "unknown_key"


def test_a_rotated_key_keeps_earlier_events_verifiable(keys: EmbeddedKeyStore) -> None:
    # given Thailand's key 1, valid until a rotation a day ago, and key 2 since then
    rotated_at = NOW - timedelta(days=1)
    old, new = demo_signer("TH", 1), demo_signer("TH", 2)
    directory = KeyDirectory(
        [
            replace(old.public(), valid_from=datetime(2024, 1, 1, tzinfo=UTC), valid_until=rotated_at),
            replace(new.public(), valid_from=rotated_at, valid_until=None),
        ]
    )
    event = _identification()  # recorded after the rotation
    before = event.model_copy(
        update={
            "envelope": event.envelope.model_copy(
                update={
                    "occurred_at": rotated_at - timedelta(days=2),
                    "recorded_at": rotated_at - timedelta(days=2),
                }
            )
        }
    )
    wire = _wire(keys, directory)

    # then an event signed with key 1 before the rotation verifies, one signed with it after does not
    assert wire.open(wire.seal(before, old, keys=keys), reader="TH").key_id == old.key_id
    with pytest.raises(SignatureError) as raised:
        wire.open(wire.seal(event, old, keys=keys), reader="TH")
    assert raised.value.reason == "unknown_key"
    # and key 2 verifies what is signed after the rotation
    assert wire.open(wire.seal(event, new, keys=keys), reader="TH").key_id == new.key_id


# -- who reads the sealed section -----------------------------------------------------------------


def test_a_country_without_the_grant_reads_personal_data_as_erased(keys: EmbeddedKeyStore) -> None:
    event = _identification()
    data = sealed(event, keys)
    wire = _wire(keys)

    assert wire.open(data, reader="MM").erased == (DataCategory.PersonalIdentity.value,)
    assert wire.open(data, reader="MM").event.personal is None

    keys.grant(event.envelope.case_id, "MM")
    assert wire.open(data, reader="MM").event == event


def test_after_shredding_nobody_reads_the_personal_data_and_none_can_be_sealed(
    keys: EmbeddedKeyStore,
) -> None:
    event = _identification()
    data = sealed(event, keys)
    keys.grant(event.envelope.case_id, "MM")
    keys.destroy(event.envelope.case_id, reason="consent withdrawn", at=NOW)
    wire = _wire(keys)

    for reader in ("TH", "MM"):
        opened = wire.open(data, reader=reader)
        assert opened.erased == (DataCategory.PersonalIdentity.value,)
        assert "erased" in opened.reasons[DataCategory.PersonalIdentity.value]
        assert (
            opened.event
            == minimise(event, [c for c in DataCategory if c != DataCategory.PersonalIdentity])[0]
        )
    with pytest.raises(KeysDestroyed):
        sealed(event, keys)
    # and an event without personal data is written as ever
    minimised = minimise(event, [DataCategory.CaseCore])[0]
    assert wire.open(sealed(minimised, keys), reader="TH").event == minimised


def test_a_sealed_section_under_another_case_is_refused(keys: EmbeddedKeyStore) -> None:
    # given two cases, and the sealed section of one moved into an event of the other
    wire = _wire(keys)
    first = _identification()
    second = first.model_copy(
        update={"envelope": first.envelope.model_copy(update={"case_id": "TH-2026-000999"})}
    )
    one, two = wire.parse(sealed(first, keys)), wire.parse(sealed(second, keys))
    personal = one.section(DataCategory.PersonalIdentity.value)
    assert personal is not None
    swapped = replace(
        two,
        sections=tuple(personal if s.category == personal.category else s for s in two.sections),
    )
    # then verifying without the signature check still cannot open it: the AAD binds its case
    with pytest.raises(InvalidEvent):
        wire.open(wire_format.write(swapped, wire.event_fingerprint), reader="TH", verify=False)


# -- evidence and retention -------------------------------------------------------------------------


def test_evidence_verifies_offline_and_shows_a_changed_event(keys: EmbeddedKeyStore) -> None:
    from hub.wire.evidence import LoggedEvent, export_case, verify_evidence

    event = _identification()
    data = sealed(event, keys)
    records = [LoggedEvent("lintas.hub.accepted", 0, 7, 1_700_000_000_000, data)]
    document = export_case(event.envelope.case_id, records, _wire(keys), DIRECTORY, now=NOW)
    # the file carries what verifies it: a reader with nothing but the file checks it
    document = json.loads(json.dumps(document))
    [verdict] = verify_evidence(document, Wire(CODEC))
    assert verdict.verified, verdict.detail
    assert (verdict.signer, verdict.event_type) == ("TH", "VictimIdentified")

    # a changed byte anywhere is shown, not hidden
    import base64

    raw = bytearray(base64.b64decode(document["events"][0]["value"]))
    raw[40] ^= 1
    document["events"][0]["value"] = base64.b64encode(bytes(raw)).decode()
    [changed] = verify_evidence(document, Wire(CODEC))
    assert not changed.verified


def test_the_keys_of_cases_closed_longer_than_their_retention_are_due_for_destruction() -> None:
    from hub.agreements import load_agreements
    from hub.wire.retention import expired_cases, retention_days
    from projections.cases.fold import fold
    from tests.test_routing import TH_MM

    agreements = load_agreements()
    closed = TH_MM.closed(closed_on=datetime(2023, 1, 2).date())
    states = fold([TH_MM.identified(), closed])
    state = states[TH_MM.case_id]
    days = retention_days(state, agreements)
    assert days >= 1
    closed_on = datetime(2023, 1, 2, tzinfo=UTC)
    assert expired_cases(states.values(), agreements, closed_on + timedelta(days=days - 1)) == []
    assert expired_cases(states.values(), agreements, closed_on + timedelta(days=days + 1)) == [TH_MM.case_id]
    open_states = fold([TH_MM.identified()])
    assert expired_cases(open_states.values(), agreements, NOW + timedelta(days=10_000)) == []
