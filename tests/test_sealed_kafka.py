"""No personal data in plaintext in any Kafka log, and crypto-shredding, on a real broker.

A realistic run (the synthetic region's cases through the router and the alert worker, as an operator
runs them, plus cases with known personal values) leaves nothing of those values readable in any log
segment of any topic on disk. Then a person withdraws consent: the case's data keys are destroyed, every
copy reads as erased through every reader, nothing else of the case changes, and other cases are
untouched. (The keys never live in Kafka, so there is no key topic to compact: the key store is
checked instead.)
"""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.codec import Codec
from hub.contract import DataCategory, ReceiptStatus, VictimIdentified
from hub.crypto.keystore import EmbeddedKeyStore, KeysDestroyed
from hub.events import Event
from hub.headers import envelope_headers, header_map
from hub.kafka import ensure_topics, read_all
from hub.synthetic import synthetic_stream
from hub.topics import ACCEPTED_EVENTS, all_topics, focal_inbox, nrm_events
from hub.wire.evidence import LoggedEvent, export_case, verify_evidence
from projections.replay import replay_cases
from tests.test_router_faults import publish, wait_for_receipts
from tests.test_routing import Case
from tests.workers import Worker, key_store_path, national_systems, receipts_so_far

pytestmark = pytest.mark.kafka

COUNTRIES = ["TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP"]
# Values no synthetic case can contain by chance.
SECRETS = {
    "TH-2026-SEAL1": ("Zawlinthet", "Kyawmyintoo", "MM-PASS-7Q31X", "+95 9 7777 31337"),
    "TH-2026-SEAL2": ("Sengphachanh", "Vongkhamsao", "LA-CI-5512KZ", "+856 20 5555 4242"),
}


def _known_cases() -> list[Event]:
    events: list[Event] = []
    for case_id, (given, family, number, phone) in SECRETS.items():
        person = {
            "given_names": given,
            "family_name": family,
            "date_of_birth": None,
            "documents": [{"document_type": "TravelDocument", "number": number, "issuing_country": "MM"}],
            "contacts": [{"kind": "Phone", "value": phone}],
            "family_contact": f"sister of {given}",
        }
        case = Case(case_id, "TH", "MM")
        events += [case.identified(personal=person), case.requested(personal=person)]
    return events


def _segments(data_dir: Path) -> list[Path]:
    return [path for path in data_dir.rglob("*") if path.is_file()]


def test_no_log_holds_personal_data_and_a_withdrawal_erases_it_everywhere(
    own_broker: str, tmp_path: Path
) -> None:
    codec = Codec()
    systems = national_systems(tmp_path, codec)
    now = datetime.now(UTC)
    synthetic = list(
        synthetic_stream(seed=31, cases=150, start=now - timedelta(days=400), until=now, run_tag="K-")
    )
    known = _known_cases()
    events = [*synthetic, *known]
    asyncio.run(ensure_topics(own_broker, all_topics(COUNTRIES), partitions=3))
    router = Worker(own_broker, tmp_path, instance="r", countries=COUNTRIES, partitions=3)
    alerts = Worker(
        own_broker, tmp_path, instance="a", command=("alerts",), countries=COUNTRIES, partitions=3
    )
    router.start()
    alerts.start()
    sources = sorted({event.envelope.source_country.value for event in events})
    try:
        messages = [
            (
                nrm_events(e.envelope.source_country.value),
                e.envelope.case_id.encode(),
                systems.encode(e),
                envelope_headers(e.envelope),
            )
            for e in events
        ]
        asyncio.run(publish(own_broker, messages))
        wait_for_receipts(own_broker, codec, sources, len(messages), router, within=240)

        # a person withdraws consent to share their identity
        shredded, kept = list(SECRETS)
        keys = EmbeddedKeyStore(key_store_path(tmp_path))
        key_before = keys.unwrap(shredded, "MM").key  # the partner was granted it
        withdrawal = Case(shredded, "TH", "MM").consent_changed(["CaseCore", "AssistanceNeeds"])
        asyncio.run(
            publish(
                own_broker,
                [
                    (
                        nrm_events("TH"),
                        shredded.encode(),
                        systems.encode(withdrawal),
                        envelope_headers(withdrawal.envelope),
                    )
                ],
            )
        )
        wait_for_receipts(own_broker, codec, sources, len(messages) + 1, router, within=120)
        time.sleep(2)  # the alert worker folds the withdrawal too
    finally:
        alerts.signal(signal.SIGTERM)
        router.signal(signal.SIGTERM)

    receipts = {str(r.event_id): r for _, r in receipts_so_far(own_broker, codec, sources)}
    for event in known:
        receipt = receipts[str(event.envelope.event_id)]
        assert receipt.status == ReceiptStatus.Accepted, receipt.message
        assert receipt.routed_to
    assert receipts[str(withdrawal.envelope.event_id)].status == ReceiptStatus.Accepted

    # nothing of the known personal values is in any file of the broker's data (every topic, every
    # segment and index, the transaction and offsets logs)
    files = _segments(tmp_path / "kafka" / "data")
    assert any(path.suffix == ".log" and "lintas.focal.mm.inbox" in str(path) for path in files)
    for path in files:
        content = path.read_bytes()
        for values in SECRETS.values():
            for value in values:
                assert value.encode() not in content, f"{value} in plaintext in {path}"

    # the withdrawn case's keys are gone for every country, and not left in the key store's files
    for country in ("TH", "MM"):
        with pytest.raises(KeysDestroyed):
            keys.unwrap(shredded, country)
    for store_file in tmp_path.glob("keys.sqlite*"):
        assert key_before not in store_file.read_bytes(), store_file
    # and every copy of its personal data reads as erased, through every reader
    inbox = asyncio.run(read_all(own_broker, [focal_inbox("MM")], within=60))
    copies = {case_id: [r for r in inbox if r.key == case_id.encode()] for case_id in SECRETS}
    assert copies[shredded]
    assert copies[kept]
    personal = [
        record
        for record in copies[shredded]
        if systems.wire.parse(record.value).section(DataCategory.PersonalIdentity.value) is not None
    ]
    assert len(personal) == 2  # the identification and the referral carried the person's identity
    for record in personal:
        opened = systems.wire.open(record.value, reader="MM")
        assert DataCategory.PersonalIdentity.value in opened.erased
        assert opened.event.personal is None
        assert codec.decode(record.value).personal is None
    # while the other case is untouched: its partner still reads the person's identity
    for record in copies[kept]:
        opened = systems.wire.open(record.value, reader="MM")
        assert opened.erased == ()
        assert opened.event.personal is not None
    # nothing else of the shredded case changed: the replayed state has it, with its consent
    states = asyncio.run(replay_cases(own_broker, codec))
    state = states[shredded]
    assert state.home is not None
    assert state.home.value == "MM"
    assert DataCategory.PersonalIdentity not in state.consent
    identified = next(e for e in known if e.envelope.case_id == shredded and isinstance(e, VictimIdentified))
    assert state.exploitation_types == identified.exploitation_types
    # and who sent what stays provable: the evidence of the case verifies offline after shredding
    logged = asyncio.run(read_all(own_broker, [ACCEPTED_EVENTS], within=60))
    evidence = export_case(
        shredded,
        [
            LoggedEvent(r.topic, r.partition, r.offset, r.timestamp, r.value)
            for r in logged
            if r.key == shredded.encode()
        ],
        systems.wire,
        systems.wire.directory,  # type: ignore[arg-type]
        now=datetime.now(UTC),
    )
    verdicts = verify_evidence(evidence, systems.wire)
    assert len(verdicts) == 3
    assert all(verdict.verified for verdict in verdicts), verdicts
    assert {header_map(r.headers)["ce_subject"] for r in copies[shredded]} == {shredded.encode()}
