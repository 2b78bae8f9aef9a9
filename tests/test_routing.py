"""The routing decision, message by message: sequence, parties, agreements, consent, duplicates, bad bytes.

Pure tests (no Kafka). A case is driven through ``Router.route`` by a tiny fold (:class:`Hub`) that keeps
each case's state as the router returns it, the way the worker does with ``lintas.router.state``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.agreements import Agreements, load_agreements
from hub.codec import HEADER_SIZE, MARKER, Codec
from hub.contract import (
    EVENT_MODELS,
    Contact,
    CountryCode,
    DataCategory,
    Envelope,
    EventType,
    IdentityDocument,
    PersonalDetails,
    Receipt,
    ReceiptStatus,
    ReturnNoticeIssued,
    TransitChange,
    VictimIdentified,
)
from hub.crypto.keystore import EmbeddedKeyStore
from hub.crypto.signing import KeyDirectory, demo_signer
from hub.errors import InvalidEvent
from hub.events import RULE_BOUNDED_FIELDS, Event, parse_event, record_is_valid
from hub.minimise import minimise
from hub.routing import (
    CaseRoute,
    Decision,
    Grant,
    Incoming,
    Outgoing,
    Reason,
    ReferralStage,
    Router,
    SeenIds,
    Shred,
    _Subject,
    accepted_value,
    decode_route,
    encode_route,
)
from hub.topics import ACCEPTED_EVENTS, DEADLETTER, focal_inbox, nrm_events, nrm_receipts
from hub.wire.codec import HUB_SIGNER, Wire
from hub.wire.national import NationalSystems
from tests.strategies import COUNTRIES, NOW, events, from_avro

CODEC = Codec(clock=lambda: NOW)
AGREEMENTS: Agreements = load_agreements()
ROUTER = Router(CODEC, AGREEMENTS)
# Contract v2: the published demo keys of every country.
SIGNERS = {country: demo_signer(country) for country in (*COUNTRIES, HUB_SIGNER)}
KEYS_FROM = datetime(2000, 1, 1, tzinfo=UTC)  # generated events go back to 2015
DIRECTORY = KeyDirectory([signer.public(valid_from=KEYS_FROM) for signer in SIGNERS.values()])


def fresh_keys() -> EmbeddedKeyStore:
    """A key store of one test's own: tests reuse case ids, and some destroy a case's keys."""
    return EmbeddedKeyStore(Path(tempfile.mkdtemp(prefix="lintas-keys-")) / "keys.sqlite")


def v2_router(keys: EmbeddedKeyStore, **options: Any) -> Router:
    return Router(
        CODEC,
        AGREEMENTS,
        wire=Wire(CODEC, directory=DIRECTORY, keys=keys),
        hub_signer=SIGNERS[HUB_SIGNER],
        **options,
    )


ALL_CATEGORIES = tuple(DataCategory)
DEADLETTER_HEADERS = (
    "lintas_error_code",
    "lintas_error",
    "lintas_source_topic",
    "lintas_source_partition",
    "lintas_source_offset",
)

# -- building a case's events ---------------------------------------------------------------------

PERSON: dict[str, Any] = {
    "given_names": "Aung",
    "family_name": "Win",
    "date_of_birth": date(1998, 3, 14),
    "documents": [{"document_type": "CertificateOfIdentity", "number": "CI-0042", "issuing_country": "MM"}],
    "contacts": [{"kind": "Phone", "value": "+95 9 4000 0000"}],
    "family_contact": "mother, Hpa-an",
}


def agency(country: str) -> str:
    return f"{country}-NRM"


def sent_by(country: str, to: str | None) -> dict[str, Any]:
    """Envelope changes making ``country`` the publisher and ``to`` the addressee."""
    return {"source_country": country, "source_agency": agency(country), "destination_country": to}


@dataclass(frozen=True)
class Case:
    """One cross-border case: ``origin`` identifies the person and refers them to ``home``, their country."""

    case_id: str
    origin: str
    home: str

    def _event(
        self,
        event_type: str,
        sender: str,
        body: dict[str, Any],
        fields: Mapping[str, Any],
        envelope: Mapping[str, Any] | None,
    ) -> Event:
        receiver = self.home if sender == self.origin else self.origin
        occurred = NOW - timedelta(hours=2)
        record: dict[str, Any] = {
            "envelope": {
                "event_id": uuid.uuid4(),
                "event_type": event_type,
                "schema_version": 1,
                "case_id": self.case_id,
                "occurred_at": occurred,
                "recorded_at": occurred + timedelta(minutes=30),
                **sent_by(sender, receiver),
                **(envelope or {}),
            },
            **body,
            **fields,
        }
        return parse_event(record, now=NOW)

    def identified(self, envelope: Mapping[str, Any] | None = None, **fields: Any) -> VictimIdentified:
        body = {
            "status": "PossibleVictimOfTrafficking",
            "identified_on": date(2026, 11, 20),
            "identifying_agency_type": "LabourInspection",
            "exploitation_types": ["ForcedLabour"],
            "labour_sectors": ["Fishing"],
            "methods_of_control": ["DebtBondage", "WithholdsDocuments"],
            "recruitment_methods": ["JobOffer"],
            "sex": "Male",
            "age_band": "Adult25To34",
            "nationality": self.home,
            "languages": ["my"],
            "needs": ["Shelter", "MedicalCare"],
            "reflection_period_start": date(2026, 11, 20),
            "reflection_period_days": 45,
            "consent_scope": list(ALL_CATEGORIES),
            "personal": PERSON,
        }
        event = self._event("VictimIdentified", self.origin, body, fields, envelope)
        assert isinstance(event, VictimIdentified)
        return event

    def requested(self, envelope: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        body = {
            "purposes": ["VerifyNationalityIdentity", "TraceFamily"],
            "services_requested": ["Reception", "FamilyReunification"],
            "urgency": "Routine",
            "respond_by": date(2026, 12, 20),
            "personal": PERSON,
        }
        return self._event("ReferralRequested", self.origin, body, fields, envelope)

    def acknowledged(self, envelope: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        body = {"receiving_agency": agency(self.home), "expected_answer_by": date(2026, 12, 20)}
        return self._event("ReferralAcknowledged", self.home, body, fields, envelope)

    def answered(
        self, decision: str = "Accepted", envelope: Mapping[str, Any] | None = None, **fields: Any
    ) -> Event:
        body = {
            "decision": decision,
            "decline_reason": "HomeNotSafe" if decision == "Declined" else None,
            "services_offered": ["Reception", "Shelter"],
            "nationality_verified": True,
        }
        return self._event("ReferralAnswered", self.home, body, fields, envelope)

    def return_notice(self, envelope: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        body = {
            "planned_return_on": date(2027, 1, 15),
            "crossing_point": "MaeSot_Myawaddy",
            "travel_mode": "Land",
            "escorts": ["SocialWorker"],
            "special_needs": ["MedicalCare"],
            "personal": PERSON,
        }
        return self._event("ReturnNoticeIssued", self.origin, body, fields, envelope)

    def handover(self, envelope: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        body = {
            "handed_over_on": date(2026, 11, 22),
            "crossing_point": "MaeSot_Myawaddy",
            "receiving_agency": agency(self.home),
            "receiving_agency_type": "SocialWelfare",
            "documents_handed_over": ["CaseSummary"],
            "personal": PERSON,
        }
        return self._event("HandoverCompleted", self.home, body, fields, envelope)

    def follow_up(self, months: int = 3, envelope: Mapping[str, Any] | None = None, **fields: Any) -> Event:
        body = {
            "months_since_return": months,
            "assessed_on": date(2026, 11, 22),
            "domains_assessed": ["Family", "Economic"],
            "status": "Reintegrating",
            "needs": ["Livelihood"],
        }
        return self._event("FollowUpRecorded", self.home, body, fields, envelope)

    def closed(
        self, by: str | None = None, envelope: Mapping[str, Any] | None = None, **fields: Any
    ) -> Event:
        body = {"status": "Closed", "reason": "ReintegrationCompleted", "closed_on": date(2026, 11, 23)}
        return self._event("CaseClosed", by or self.origin, body, fields, envelope)

    def consent_changed(
        self,
        scope: Sequence[str | DataCategory],
        envelope: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Event:
        body = {"consent_scope": list(scope), "changed_on": date(2026, 11, 23)}
        return self._event("ConsentChanged", self.origin, body, fields, envelope)


TH_MM = Case("TH-2026-000123", "TH", "MM")

Step = Callable[[Case], Event]

# -- driving the router: a tiny fold over decisions -----------------------------------------------


def message(
    value: bytes,
    country: str,
    offset: int = 0,
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes]] = (),
) -> Incoming:
    return Incoming(country, nrm_events(country), 0, offset, key, value, headers)


@dataclass
class Hub:
    """Routes messages one by one and keeps every case's state as the decisions say (``state`` or kept).

    On contract v2 (``v2``) each country writes as its national system does (sectioned, sealed,
    signed), the decisions' key-store effects are carried out as the worker does, and each inbox
    copy is read as its country reads it (with the keys it was granted)."""

    router: Router = ROUTER
    states: dict[str, CaseRoute] = field(default_factory=dict)
    sent: list[Incoming] = field(default_factory=list)

    @classmethod
    def v2(cls, **options: Any) -> Hub:
        """A hub on contract v2 with a key store of its own."""
        return cls(router=v2_router(fresh_keys(), **options))

    @property
    def wire(self) -> Wire:
        assert self.router.wire is not None
        return self.router.wire

    @property
    def keys(self) -> EmbeddedKeyStore:
        keys = self.wire.keys
        assert isinstance(keys, EmbeddedKeyStore)
        return keys

    @property
    def national(self) -> NationalSystems:
        return NationalSystems(self.wire, self.keys, signer_of=SIGNERS.__getitem__)

    def encode(self, event: Event) -> bytes:
        return self.national.encode(event) if self.router.wire is not None else CODEC.encode(event)

    def read(self, delivered: Outgoing) -> Event:
        """An inbox copy as the inbox's country reads it."""
        if self.router.wire is None:
            return CODEC.decode(delivered.value)
        country = delivered.topic.split(".")[2].upper()
        return self.wire.open(delivered.value, reader=country).event

    def submit(self, event: Event, *, on: str | None = None) -> Decision:
        return self.submit_bytes(self.encode(event), on or event.envelope.source_country.value)

    def submit_bytes(self, value: bytes, country: str, **extra: Any) -> Decision:
        incoming = message(value, country, len(self.sent), **extra)
        self.sent.append(incoming)
        decision = self.router.route(incoming, self.states)
        if decision.state is not None:
            assert decision.case_id is not None
            self.states[decision.case_id] = decision.state
        for effect in decision.effects:  # as the worker carries them out
            if isinstance(effect, Grant):
                self.keys.grant(effect.case_id, effect.country)
            elif isinstance(effect, Shred):
                self.keys.destroy(effect.case_id, reason=effect.reason, at=effect.at)
        return decision

    def run(self, case: Case, steps: Sequence[Step]) -> list[Decision]:
        return [self.submit(step(case)) for step in steps]


@pytest.fixture(params=["v2", "v1"])
def hub(request: pytest.FixtureRequest) -> Hub:
    if request.param == "v2":
        return Hub.v2()
    return Hub()


# -- reading a decision -----------------------------------------------------------------------------


def receipts(decision: Decision) -> list[Outgoing]:
    return [out for out in decision.outputs if out.topic.startswith("lintas.nrm.")]


def inbox(decision: Decision) -> list[Outgoing]:
    return [out for out in decision.outputs if out.topic.startswith("lintas.focal.")]


def logged(decision: Decision) -> list[Outgoing]:
    return [out for out in decision.outputs if out.topic == ACCEPTED_EVENTS]


def dead_letters(decision: Decision) -> list[Outgoing]:
    return [out for out in decision.outputs if out.topic == DEADLETTER]


def the_receipt(decision: Decision, country: str) -> Receipt:
    [out] = receipts(decision)
    assert out.topic == nrm_receipts(country)
    return CODEC.decode_receipt(out.value)


def assert_routed(
    decision: Decision,
    event: Event,
    submitted: Incoming,
    *,
    withheld: tuple[str, ...] = (),
) -> Outgoing:
    """Accepted, delivered once to the addressee's inbox keyed by case, with a matching receipt."""
    envelope = event.envelope
    assert envelope.destination_country is not None
    destination = envelope.destination_country.value
    assert decision.status == ReceiptStatus.Accepted, decision.message
    assert decision.reason is None
    assert decision.case_id == envelope.case_id
    assert decision.state is not None
    assert dead_letters(decision) == []
    assert len(decision.outputs) == 3
    [log_entry] = logged(decision)
    assert log_entry.value == submitted.value  # the hub's log keeps the event as submitted
    assert log_entry.key == envelope.case_id.encode()
    [delivered] = inbox(decision)
    assert delivered.topic == focal_inbox(destination)
    assert delivered.key == envelope.case_id.encode()
    assert ("ce_id", str(envelope.event_id).encode()) in delivered.headers
    assert ("ce_lintasdestination", destination.encode()) in delivered.headers
    receipt = the_receipt(decision, envelope.source_country.value)
    assert receipt.status == ReceiptStatus.Accepted
    assert receipt.reason_code is None
    assert receipt.event_id == envelope.event_id
    assert receipt.event_type == envelope.event_type
    assert receipt.case_id == envelope.case_id
    assert receipt.routed_to == (CountryCode(destination),)
    assert receipt.withheld == withheld
    assert (receipt.source_topic, receipt.source_partition, receipt.source_offset) == (
        submitted.topic,
        submitted.partition,
        submitted.offset,
    )
    return delivered


def assert_rejected(decision: Decision, reason: Reason, submitted: Incoming) -> Receipt:
    """Rejected: one receipt with the reason, one dead letter carrying the original bytes untouched."""
    assert decision.status == ReceiptStatus.Rejected
    assert decision.reason == reason, decision.message
    assert decision.state is None
    assert inbox(decision) == []
    assert len(decision.outputs) == 2
    receipt = the_receipt(decision, submitted.country)
    assert receipt.status == ReceiptStatus.Rejected
    assert receipt.reason_code == reason.value
    assert receipt.message == decision.message
    assert receipt.routed_to == ()
    [dead] = dead_letters(decision)
    assert dead.value == submitted.value
    assert dead.key == submitted.key
    headers = dict(dead.headers)
    assert set(DEADLETTER_HEADERS) <= set(headers)
    assert headers["lintas_error_code"] == reason.value.encode()
    assert headers["lintas_error"] == decision.message.encode()
    assert headers["lintas_source_topic"] == submitted.topic.encode()
    assert headers["lintas_source_partition"] == str(submitted.partition).encode()
    assert headers["lintas_source_offset"] == str(submitted.offset).encode()
    for name, value in submitted.headers:
        assert (name, value) in dead.headers
    return receipt


# -- the happy path -----------------------------------------------------------------------------------


def test_a_case_from_identification_to_closure_reaches_the_partner_intact(hub: Hub) -> None:
    # given a Myanmar fisherman identified in Thailand who consents to share everything
    case = TH_MM
    sequence = [
        case.identified(),
        case.requested(),
        case.acknowledged(),
        case.answered("Accepted"),
        case.return_notice(),
        case.handover(),
        case.follow_up(3),
        case.follow_up(6),
        case.follow_up(12),
        case.closed(),
    ]

    for event in sequence:
        # when each event is published on its sender's national topic
        decision = hub.submit(event)

        # then it is accepted and the other party's focal point receives exactly these bytes
        delivered = assert_routed(decision, event, hub.sent[-1])
        assert delivered.value == hub.sent[-1].value
        assert hub.read(delivered) == event

    final = hub.states[case.case_id]
    assert final.opened_by == CountryCode.TH
    assert final.partner == CountryCode.MM
    assert final.referral == "accepted"
    assert final.return_noticed
    assert final.handed_over
    assert final.closed_by == frozenset({CountryCode.TH})
    assert set(final.seen) == {str(event.envelope.event_id) for event in sequence}


def test_inbox_topics_alternate_with_the_sender(hub: Hub) -> None:
    # given the referral exchange of one case
    case = TH_MM
    steps: list[Step] = [Case.identified, Case.requested, Case.acknowledged, Case.answered]

    # when it runs through the router
    decisions = hub.run(case, steps)

    # then Thai events go to Myanmar's inbox, Myanmar's answers to Thailand's, receipts to the sender
    assert [inbox(d)[0].topic for d in decisions] == [
        "lintas.focal.mm.inbox",
        "lintas.focal.mm.inbox",
        "lintas.focal.th.inbox",
        "lintas.focal.th.inbox",
    ]
    assert [receipts(d)[0].topic for d in decisions] == [
        "lintas.nrm.th.receipts",
        "lintas.nrm.th.receipts",
        "lintas.nrm.mm.receipts",
        "lintas.nrm.mm.receipts",
    ]


CORRIDORS = [
    Case("TH-2026-000123", "TH", "MM"),
    Case("MY-SBH/2026/0777", "MY", "PH"),
    Case("MY-KUL-2026-0042", "MY", "ID"),
    Case("KH-PP-2026-0019", "KH", "VN"),
    Case("CN-YN-2026-0005", "CN", "VN"),
]


@pytest.mark.parametrize("case", CORRIDORS, ids=lambda case: f"{case.origin}->{case.home}")
def test_each_corridor_reaches_exactly_the_right_inboxes(hub: Hub, case: Case) -> None:
    # given a case between two countries with an agreement, identified in the first
    steps: list[Step] = [Case.identified, Case.requested, Case.acknowledged, Case.answered]

    # when the identification, the referral and the partner's answers are routed
    decisions = hub.run(case, steps)

    # then the first two reach only the home country's inbox and the answers only the origin's
    for decision, submitted in zip(decisions, hub.sent, strict=True):
        assert decision.status == ReceiptStatus.Accepted, decision.message
        [delivered] = inbox(decision)
        assert delivered.key == case.case_id.encode()
        assert receipts(decision)[0].topic == nrm_receipts(submitted.country)
    assert [inbox(d)[0].topic for d in decisions] == [
        focal_inbox(case.home),
        focal_inbox(case.home),
        focal_inbox(case.origin),
        focal_inbox(case.origin),
    ]


def test_interleaved_cases_of_three_corridors_do_not_mix(hub: Hub) -> None:
    # given three cases from three different identifying countries, published interleaved
    cases = [
        Case("TH-2026-000200", "TH", "MM"),
        Case("MY-2026-000201", "MY", "PH"),
        Case("KH-2026-0202", "KH", "VN"),
    ]
    deliveries: dict[str, set[str]] = {case.case_id: set() for case in cases}

    # when identification and referral of each are routed, round-robin
    for step in (Case.identified, Case.requested):
        for case in cases:
            decision = hub.submit(step(case))
            assert decision.status == ReceiptStatus.Accepted, decision.message
            deliveries[case.case_id] |= {(out.topic) for out in inbox(decision)}

    # then each case only ever reached its own partner's inbox
    assert deliveries == {case.case_id: {focal_inbox(case.home)} for case in cases}
    assert {case_id: state.partner for case_id, state in hub.states.items()} == {
        case.case_id: CountryCode(case.home) for case in cases
    }


def test_a_national_event_is_recorded_but_sent_to_no_one(hub: Hub) -> None:
    # given a victim identified in Thailand, not yet addressed to any partner
    event = TH_MM.identified(envelope={"destination_country": None})

    # when it is routed
    decision = hub.submit(event)

    # then it is accepted and recorded for the sequence, with only a receipt
    assert decision.status == ReceiptStatus.Accepted
    assert inbox(decision) == []
    receipt = the_receipt(decision, "TH")
    assert receipt.routed_to == ()
    assert hub.states[TH_MM.case_id].partner is None

    # and a later referral to Myanmar makes Myanmar the partner
    assert hub.submit(TH_MM.requested()).status == ReceiptStatus.Accepted
    assert hub.states[TH_MM.case_id].partner == CountryCode.MM


# -- minimisation ------------------------------------------------------------------------------------


def test_everything_granted_and_consented_arrives_byte_for_byte(hub: Hub) -> None:
    # given full consent over Thailand -> Myanmar, which grants every category
    event = TH_MM.identified(consent_scope=list(ALL_CATEGORIES))

    # when it is routed
    decision = hub.submit(event)

    # then the inbox holds the very bytes submitted, personal details included
    delivered = assert_routed(decision, event, hub.sent[-1], withheld=())
    assert delivered.value == hub.sent[-1].value
    decoded = hub.read(delivered)
    assert isinstance(decoded, VictimIdentified)
    assert decoded.personal is not None
    assert decoded.personal.given_names == "Aung"


def test_consent_without_personal_identity_withholds_personal_details(hub: Hub) -> None:
    # given a person who consented to case and needs data only, not to their identity
    event = TH_MM.identified(consent_scope=["CaseCore", "AssistanceNeeds", "Legal"])

    # when the identification is routed over a corridor that would grant identity
    decision = hub.submit(event)

    # then the partner receives it without personal details, and the receipt says so
    delivered = assert_routed(decision, event, hub.sent[-1], withheld=("personal",))
    decoded = hub.read(delivered)
    assert isinstance(decoded, VictimIdentified)
    assert decoded.personal is None
    consented = {DataCategory.CaseCore, DataCategory.AssistanceNeeds, DataCategory.Legal}
    assert decoded == minimise(event, consented)[0]
    assert decoded.needs == event.needs
    assert "withheld: personal" in decision.message


def test_consent_narrower_than_the_agreement_removes_every_unconsented_field(hub: Hub) -> None:
    # given consent to the case core only
    event = TH_MM.identified(consent_scope=["CaseCore"])

    # when it is routed
    decision = hub.submit(event)

    # then needs, legal details and personal details are all removed
    removed = ("needs", "methods_of_control", "recruitment_methods", "personal")
    delivered = assert_routed(decision, event, hub.sent[-1], withheld=removed)
    decoded = hub.read(delivered)
    assert isinstance(decoded, VictimIdentified)
    assert decoded.needs == ()
    assert decoded.methods_of_control == ()
    assert decoded.recruitment_methods == ()
    assert decoded.personal is None
    assert decoded.envelope == event.envelope
    assert decoded.exploitation_types == event.exploitation_types

    # and later events of the case follow the same consent
    referral = TH_MM.requested()
    decision = hub.submit(referral)
    assert_routed(decision, referral, hub.sent[-1], withheld=("services_requested", "personal"))


def test_an_agreement_without_legal_data_withholds_it_despite_consent(hub: Hub) -> None:
    # given China -> Viet Nam, whose agreement grants no Legal data, and full consent
    case = Case("CN-GX-2026-0031", "CN", "VN")
    event = case.identified(languages=["vi"])

    # when the identification is routed
    decision = hub.submit(event)

    # then the methods of control and of recruitment are removed; personal details pass
    delivered = assert_routed(
        decision, event, hub.sent[-1], withheld=("methods_of_control", "recruitment_methods")
    )
    decoded = hub.read(delivered)
    assert isinstance(decoded, VictimIdentified)
    assert decoded.methods_of_control == ()
    assert decoded.recruitment_methods == ()
    assert decoded.personal == event.personal


def test_an_agreement_without_health_data_withholds_special_needs(hub: Hub) -> None:
    # given an accepted referral Malaysia -> Philippines (ACTIP: no Health data)
    case = Case("MY-SBH/2026/0778", "MY", "PH")
    hub.run(case, [Case.identified, Case.requested, Case.acknowledged, Case.answered])
    notice = case.return_notice(crossing_point="Sandakan_Zamboanga", travel_mode="Sea")

    # when the return notice is routed
    decision = hub.submit(notice)

    # then the special needs on return are removed
    delivered = assert_routed(decision, notice, hub.sent[-1], withheld=("special_needs",))
    decoded = hub.read(delivered)
    assert isinstance(decoded, ReturnNoticeIssued)
    assert decoded.special_needs == ()
    assert decoded.personal is not None


def test_the_answering_side_shares_only_what_its_direction_grants(hub: Hub) -> None:
    # given Indonesia answering a Malaysian referral: ID -> MY grants no AssistanceNeeds
    case = Case("MY-KUL-2026-0043", "MY", "ID")
    hub.run(case, [Case.identified, Case.requested, Case.acknowledged])
    answer = case.answered("Accepted")

    # when the answer is routed
    decision = hub.submit(answer)

    # then the services offered are withheld from Malaysia
    assert_routed(decision, answer, hub.sent[-1], withheld=("services_offered",))


def test_a_minimised_child_identification_still_decodes_at_the_partner(hub: Hub) -> None:
    # given a presumed child who consented to the case core only
    event = TH_MM.identified(
        age_band="Child15To17", needs=["Shelter", "ChildProtection"], consent_scope=["CaseCore"]
    )

    # when the identification is routed
    decision = hub.submit(event)
    assert decision.status == ReceiptStatus.Accepted
    [delivered] = inbox(decision)

    # then the focal point in Myanmar can read what it was sent
    hub.read(delivered)


# -- consent withdrawn --------------------------------------------------------------------------------


def test_after_consent_is_withdrawn_nothing_more_is_shared(hub: Hub) -> None:
    # given an identified person who then withdraws consent
    case = TH_MM
    hub.submit(case.identified())
    withdrawal = case.consent_changed([])

    # when the withdrawal is routed, the partner is told
    decision = hub.submit(withdrawal)
    delivered = assert_routed(decision, withdrawal, hub.sent[-1])
    assert hub.read(delivered) == withdrawal
    assert hub.states[case.case_id].consent == frozenset()

    # then a later referral is rejected and nothing of it is sent (on contract v2 the national
    # system could not even seal personal data for the case any more)
    before = hub.states[case.case_id]
    decision = hub.submit(case.requested(personal=None))
    assert_rejected(decision, Reason.CONSENT_WITHDRAWN, hub.sent[-1])
    assert hub.states[case.case_id] == before


def test_the_partner_may_not_share_either_once_consent_is_withdrawn(hub: Hub) -> None:
    # given a referral in progress when the person withdraws consent
    case = TH_MM
    hub.run(case, [Case.identified, Case.requested])
    hub.submit(case.consent_changed([]))

    # when Myanmar acknowledges the referral
    decision = hub.submit(case.acknowledged())

    # then the acknowledgement is rejected too
    assert_rejected(decision, Reason.CONSENT_WITHDRAWN, hub.sent[-1])


def test_consent_given_again_lets_the_case_continue(hub: Hub) -> None:
    # given consent withdrawn, then given again for the case core
    case = TH_MM
    hub.submit(case.identified())
    hub.submit(case.consent_changed([]))
    hub.submit(case.consent_changed(["CaseCore"]))

    # when the referral is published (without the person's identity: withdrawing consent to share it
    # destroyed the case's keys on contract v2, and their new consent does not cover it anyway)
    referral = case.requested(personal=None)
    decision = hub.submit(referral)

    # then it is routed, stripped to what the new consent covers
    assert_routed(decision, referral, hub.sent[-1], withheld=("services_requested",))


# -- sequence, parties, closure --------------------------------------------------------------------------

IDENTIFIED: list[Step] = [Case.identified]
REFERRED: list[Step] = [Case.identified, Case.requested]
ACKNOWLEDGED: list[Step] = [*REFERRED, Case.acknowledged]
ACCEPTED: list[Step] = [*ACKNOWLEDGED, Case.answered]


def _declined(case: Case) -> Event:
    return case.answered("Declined")


@pytest.mark.parametrize(
    ("history", "offending", "reason"),
    [
        pytest.param([], Case.requested, Reason.OUT_OF_SEQUENCE, id="unknown-case-starts-with-referral"),
        pytest.param([], Case.closed, Reason.OUT_OF_SEQUENCE, id="unknown-case-starts-with-closure"),
        pytest.param(IDENTIFIED, Case.answered, Reason.OUT_OF_SEQUENCE, id="answer-before-referral"),
        pytest.param(IDENTIFIED, Case.acknowledged, Reason.OUT_OF_SEQUENCE, id="ack-without-referral"),
        pytest.param(ACKNOWLEDGED, Case.return_notice, Reason.OUT_OF_SEQUENCE, id="return-before-acceptance"),
        pytest.param(REFERRED, Case.handover, Reason.OUT_OF_SEQUENCE, id="handover-before-acceptance"),
        pytest.param(ACCEPTED, Case.follow_up, Reason.OUT_OF_SEQUENCE, id="follow-up-before-handover"),
        pytest.param(REFERRED, Case.requested, Reason.OUT_OF_SEQUENCE, id="second-open-referral"),
        pytest.param(ACCEPTED, Case.acknowledged, Reason.OUT_OF_SEQUENCE, id="ack-after-answer"),
        pytest.param(
            [*REFERRED, _declined], Case.return_notice, Reason.OUT_OF_SEQUENCE, id="return-after-decline"
        ),
        pytest.param([*IDENTIFIED, Case.closed], Case.requested, Reason.CASE_CLOSED, id="after-own-closure"),
        pytest.param(
            [*IDENTIFIED, Case.closed], Case.identified, Reason.CASE_CLOSED, id="identified-after-closure"
        ),
    ],
)
def test_events_out_of_turn_are_rejected(
    hub: Hub, history: list[Step], offending: Step, reason: Reason
) -> None:
    # given a case at some point of its life
    case = TH_MM
    for decision in hub.run(case, history):
        assert decision.status == ReceiptStatus.Accepted, decision.message
    before = dict(hub.states)

    # when an event comes that may not come now
    decision = hub.submit(offending(case))

    # then it is rejected with the reason, and the case is unchanged
    receipt = assert_rejected(decision, reason, hub.sent[-1])
    assert receipt.case_id == case.case_id
    assert hub.states == before


def test_a_declined_referral_may_be_made_again(hub: Hub) -> None:
    # given a referral that Myanmar declined
    case = TH_MM
    hub.run(case, [*REFERRED, _declined])

    # when Thailand refers the case again
    decision = hub.submit(case.requested())

    # then the new referral is accepted
    assert decision.status == ReceiptStatus.Accepted, decision.message
    assert hub.states[case.case_id].referral == "requested"


def test_after_one_side_closes_only_consent_changes_and_the_other_side_continue(hub: Hub) -> None:
    # given a case Thailand closed
    case = TH_MM
    hub.run(case, [*IDENTIFIED, Case.closed])

    # when consent changes and Myanmar closes its side
    consent = hub.submit(case.consent_changed(["CaseCore"]))
    theirs = hub.submit(case.closed(by="MM"))

    # then both are accepted
    assert consent.status == ReceiptStatus.Accepted, consent.message
    assert theirs.status == ReceiptStatus.Accepted, theirs.message
    assert hub.states[case.case_id].closed_by == {CountryCode.TH, CountryCode.MM}


@pytest.mark.parametrize(
    "offending",
    [
        pytest.param(lambda case: case.answered(envelope=sent_by("LA", "TH")), id="third-country-answers"),
        pytest.param(
            lambda case: case.requested(envelope={"destination_country": "LA"}),
            id="addressed-to-third-country",
        ),
        pytest.param(lambda case: case.identified(envelope=sent_by("MM", "TH")), id="partner-reopens-case"),
    ],
)
def test_a_country_outside_the_case_cannot_take_part(hub: Hub, offending: Step) -> None:
    # given a referral from Thailand to Myanmar
    case = TH_MM
    hub.run(case, REFERRED)
    before = dict(hub.states)

    # when a country that is not the other party takes part (each with an agreement with Thailand)
    decision = hub.submit(offending(case))

    # then it is rejected as not a party
    assert_rejected(decision, Reason.NOT_PARTY, hub.sent[-1])
    assert hub.states == before


def test_a_nationally_opened_case_admits_only_one_foreign_party(hub: Hub) -> None:
    # given a case Thailand opened nationally
    case = TH_MM
    hub.submit(case.identified(envelope={"destination_country": None}))

    # when Myanmar, then Lao PDR, try to act on it before Thailand referred it to anyone
    from_myanmar = hub.submit(case.requested(envelope=sent_by("MM", "TH"), personal=None))
    from_laos = hub.submit(case.answered(envelope=sent_by("LA", "TH")))

    # then both are rejected: only the country that opened a case chooses its partner
    assert from_myanmar.reason == Reason.NOT_PARTY
    assert from_laos.reason == Reason.NOT_PARTY

    # and once Thailand refers it to Myanmar, Myanmar is the partner
    referred = hub.submit(case.requested())
    assert referred.status == ReceiptStatus.Accepted, referred.message
    assert hub.submit(case.acknowledged()).status == ReceiptStatus.Accepted


# -- topic, agreement, event type ----------------------------------------------------------------------


def test_an_event_on_another_countrys_topic_is_rejected(hub: Hub) -> None:
    # given a referral in progress
    case = TH_MM
    hub.run(case, REFERRED)
    acknowledgement = case.acknowledged()  # from Myanmar

    # when Myanmar's acknowledgement turns up on Thailand's national topic
    decision = hub.submit(acknowledgement, on="TH")

    # then it is rejected; the receipt goes to Thailand, whose topic it came from
    receipt = assert_rejected(decision, Reason.WRONG_TOPIC, hub.sent[-1])
    assert hub.sent[-1].topic == "lintas.nrm.th.events"
    assert receipt.event_id == acknowledgement.envelope.event_id
    assert "envelope.source_country" in receipt.message


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case("TH-2026-000900", "TH", "SG"), id="TH->SG"),
        pytest.param(Case("TH-2026-000901", "TH", "PH"), id="TH->PH"),
        pytest.param(Case("KR-2026-000902", "KR", "PH"), id="KR->PH"),
    ],
)
def test_a_pair_without_agreement_is_rejected(hub: Hub, case: Case) -> None:
    # given two countries with no corridor between them
    event = case.identified()

    # when an identification is addressed across it
    decision = hub.submit(event)

    # then nothing is sent and the case is not opened
    receipt = assert_rejected(decision, Reason.NO_AGREEMENT, hub.sent[-1])
    assert "envelope.destination_country" in receipt.message
    assert hub.states == {}


@pytest.mark.parametrize(
    ("case", "step"),
    [
        pytest.param(Case("VN-QN-2026-0001", "VN", "CN"), Case.identified, id="VN->CN-VictimIdentified"),
        pytest.param(Case("PH-2026-0001", "PH", "MY"), Case.identified, id="PH->MY-VictimIdentified"),
        pytest.param(Case("ID-2026-0001", "ID", "MY"), Case.identified, id="ID->MY-VictimIdentified"),
    ],
)
def test_an_event_type_the_direction_does_not_allow_is_rejected(hub: Hub, case: Case, step: Step) -> None:
    # given a one-way corridor where the country of origin does not identify victims
    event = step(case)

    # when it publishes an identification
    decision = hub.submit(event)

    # then the type is not allowed in that direction
    receipt = assert_rejected(decision, Reason.TYPE_NOT_ALLOWED, hub.sent[-1])
    assert "envelope.event_type" in receipt.message
    assert hub.states == {}


def test_the_home_country_may_not_send_a_return_notice_on_a_one_way_corridor(hub: Hub) -> None:
    # given a case China identified and referred to Viet Nam, which accepted it
    case = Case("CN-YN-2026-0006", "CN", "VN")
    hub.run(case, ACCEPTED)

    # when Viet Nam (an answering country under the agreement) sends a return notice
    decision = hub.submit(case.return_notice(envelope=sent_by("VN", "CN")))

    # then the return notice is not an event Viet Nam may send China
    assert_rejected(decision, Reason.TYPE_NOT_ALLOWED, hub.sent[-1])


# -- duplicates and conflicts -----------------------------------------------------------------------------


def test_the_same_bytes_again_are_a_duplicate(hub: Hub) -> None:
    # given an accepted identification
    event = TH_MM.identified()
    value = hub.encode(event)
    hub.submit_bytes(value, "TH")
    before = dict(hub.states)

    # when the national system publishes the same bytes again
    decision = hub.submit_bytes(value, "TH")

    # then it gets a Duplicate receipt and nothing else; the case state is kept
    assert decision.status == ReceiptStatus.Duplicate
    assert decision.reason is None
    assert decision.state is None
    assert decision.case_id == TH_MM.case_id
    assert inbox(decision) == dead_letters(decision) == []
    assert len(decision.outputs) == 1
    receipt = the_receipt(decision, "TH")
    assert receipt.status == ReceiptStatus.Duplicate
    assert receipt.event_id == event.envelope.event_id
    assert receipt.routed_to == ()
    assert receipt.source_offset == hub.sent[-1].offset
    assert hub.states == before


def test_a_resubmission_of_an_earlier_event_is_a_duplicate_even_later_in_the_case(hub: Hub) -> None:
    # given a case that moved on past the referral
    case = TH_MM
    referral = case.requested()
    hub.submit(case.identified())
    hub.submit(referral)
    hub.submit(case.acknowledged())

    # when the referral is resubmitted (which would now be out of sequence)
    decision = hub.submit(referral)

    # then it is recognised as a duplicate, not rejected
    assert decision.status == ReceiptStatus.Duplicate
    assert decision.state is None
    assert hub.states[case.case_id].referral == "acknowledged"


def test_the_same_event_id_with_different_content_is_a_conflict(hub: Hub) -> None:
    # given an accepted identification
    event = TH_MM.identified()
    hub.submit(event)
    before = dict(hub.states)

    # when another event with the same id but other content arrives
    changed = TH_MM.identified(
        envelope={"event_id": event.envelope.event_id}, needs=["Shelter", "LegalAssistance"]
    )
    decision = hub.submit(changed)

    # then it is rejected as a conflict
    receipt = assert_rejected(decision, Reason.CONFLICT, hub.sent[-1])
    assert receipt.event_id == event.envelope.event_id
    assert "envelope.event_id" in receipt.message
    assert hub.states == before


# -- bytes that are not an event ------------------------------------------------------------------------


def _fisherman_bytes() -> bytes:
    return CODEC.encode(TH_MM.identified())


def _future_dated() -> bytes:
    later = NOW + timedelta(days=9)
    event = TH_MM.identified(envelope={"occurred_at": NOW, "recorded_at": NOW})
    moved = event.envelope.model_copy(update={"occurred_at": later, "recorded_at": later})
    return CODEC.encode(event.model_copy(update={"envelope": moved}))


def _breaking_a_contract_rule() -> bytes:
    event = TH_MM.identified()
    return CODEC.encode(event.model_copy(update={"exploitation_types": ()}))


def _a_receipt() -> bytes:
    receipt = Receipt(
        status=ReceiptStatus.Accepted, message="ok", source_topic="x", source_partition=0, source_offset=0
    )
    return CODEC.encode(receipt)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda: b"", Reason.UNDECODABLE, id="empty"),
        pytest.param(lambda: b"not avro at all, just text", Reason.UNDECODABLE, id="garbage"),
        pytest.param(lambda: _fisherman_bytes()[:7], Reason.UNDECODABLE, id="truncated-header"),
        pytest.param(lambda: _fisherman_bytes()[:-3], Reason.UNDECODABLE, id="truncated-body"),
        pytest.param(lambda: _fisherman_bytes() + b"\x00", Reason.UNDECODABLE, id="trailing-bytes"),
        pytest.param(
            lambda: MARKER + os.urandom(8) + _fisherman_bytes()[HEADER_SIZE:],
            Reason.UNKNOWN_SCHEMA,
            id="unknown-fingerprint",
        ),
        pytest.param(_future_dated, Reason.INVALID_EVENT, id="from-the-future"),
        pytest.param(_breaking_a_contract_rule, Reason.INVALID_EVENT, id="no-exploitation-type"),
        pytest.param(_a_receipt, Reason.INVALID_EVENT, id="a-receipt-not-an-event"),
    ],
)
def test_bytes_that_are_not_a_valid_event_go_to_the_dead_letters(
    hub: Hub, make: Callable[[], bytes], reason: Reason
) -> None:
    # given bytes that are not a valid event, with a key and headers from the producer
    value = make()
    headers = [("traceparent", b"00-abc-def-01")]

    # when they are read from Thailand's national topic
    decision = hub.submit_bytes(value, "TH", key=b"some-key", headers=headers)

    # then they are rejected once, with a receipt, and dead-lettered untouched with their headers
    receipt = assert_rejected(decision, reason, hub.sent[-1])
    assert decision.case_id is None
    if reason != Reason.INVALID_EVENT:
        assert receipt.event_id is None
        assert receipt.case_id is None
        assert receipts(decision)[0].key == b"some-key"
    assert hub.states == {}


# -- properties ------------------------------------------------------------------------------------------


def _digest(value: bytes) -> str:
    return hashlib.blake2b(value, digest_size=16).hexdigest()


@st.composite
def case_states(draw: st.DrawFn, event: Event | None, value: bytes) -> dict[str, CaseRoute]:
    """Any state the router may hold for the message's case (none, or one in any stage)."""
    if event is None or draw(st.booleans()):
        return {}
    envelope = event.envelope
    parties = [envelope.source_country.value, *COUNTRIES]
    if envelope.destination_country is not None:
        parties.insert(1, envelope.destination_country.value)
    countries = st.sampled_from(parties).map(CountryCode)
    seen: dict[str, str] = {}
    match draw(st.sampled_from(["new", "same", "other"])):
        case "same":
            seen[str(envelope.event_id)] = _digest(value)
        case "other":
            seen[str(envelope.event_id)] = _digest(value + b"!")
    return {
        envelope.case_id: CaseRoute(
            case_id=envelope.case_id,
            opened_by=draw(countries),
            partner=draw(st.none() | countries),
            consent=draw(st.frozensets(st.sampled_from(DataCategory))),
            referral=draw(st.sampled_from(["none", "requested", "acknowledged", "accepted", "declined"])),
            return_noticed=draw(st.booleans()),
            handed_over=draw(st.booleans()),
            closed_by=draw(st.frozensets(countries, max_size=2)),
            seen=seen,
        )
    }


@st.composite
def submissions(draw: st.DrawFn) -> tuple[Incoming, dict[str, CaseRoute]]:
    """A message as read from a national topic (a valid event, or any bytes) and the router's states."""
    event: Event | None = None
    if draw(st.booleans()):
        event = draw(events())
        value = CODEC.encode(event)
        country = draw(st.just(event.envelope.source_country.value) | st.sampled_from(COUNTRIES))
    else:
        value = draw(st.binary(max_size=200))
        country = draw(st.sampled_from(COUNTRIES))
    key = draw(st.none() | st.binary(max_size=8))
    incoming = message(value, country, draw(st.integers(0, 2**40)), key=key)
    return incoming, draw(case_states(event, value))


def _ready_state(event: Event, source: CountryCode, destination: CountryCode) -> dict[str, CaseRoute]:
    """A case state in which ``event`` is the next allowed message."""
    stage: dict[EventType, ReferralStage] = {
        EventType.ReferralRequested: "none",
        EventType.ReferralAcknowledged: "requested",
        EventType.ReferralAnswered: "acknowledged",
    }
    kind = event.envelope.event_type
    if kind == EventType.VictimIdentified:
        return {}
    case_id = event.envelope.case_id
    seen: dict[str, str] = {}
    target = getattr(event, "target_event_id", None)
    if target is not None:  # a correction or retraction of an event the same country sent
        seen[str(target)] = accepted_value("0" * 32, source.value, "ReferralRequested")
    transit = getattr(event, "transit_country", None)
    removed = getattr(event, "transit_change", None) == TransitChange.Removed
    return {
        case_id: CaseRoute(
            case_id=case_id,
            opened_by=source,
            partner=destination,
            consent=frozenset({DataCategory.CaseCore}),
            referral=stage.get(kind, "accepted"),
            handed_over=True,
            transit=frozenset({transit}) if transit is not None and removed else frozenset(),
            seen=seen,
        )
    }


@st.composite
def admissible(draw: st.DrawFn) -> tuple[Incoming, dict[str, CaseRoute]]:
    """A valid event moved onto a corridor direction that allows its type, with a state ready for it."""
    event = draw(events())
    kind = event.envelope.event_type
    directions = [
        (corridor_direction, terms)
        for corridor in AGREEMENTS.corridors
        for corridor_direction, terms in corridor.directions.items()
        if kind in terms.event_types
    ]
    direction, _ = draw(st.sampled_from(directions))
    source, destination = (CountryCode(code) for code in direction.split("->"))
    envelope: Envelope = event.envelope.model_copy(
        update={
            "source_country": source,
            "source_agency": agency(source.value),
            "destination_country": destination,
        }
    )
    update: dict[str, Any] = {"envelope": envelope}
    if isinstance(event, VictimIdentified):
        update["consent_scope"] = (*event.consent_scope, DataCategory.CaseCore)
    if getattr(event, "transit_country", None) in (source, destination):  # a transit party is a third
        update["transit_country"] = next(
            c for c in (CountryCode.TH, CountryCode.LA, CountryCode.VN) if c not in (source, destination)
        )
    moved = parse_event(event.model_copy(update=update).model_dump(), now=NOW)
    incoming = message(CODEC.encode(moved), source.value, draw(st.integers(0, 1000)))
    return incoming, _ready_state(moved, source, destination)


@settings(max_examples=150, deadline=None)
@given(admissible())
def test_an_accepted_message_routed_again_is_a_duplicate(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    # given a message the router accepts
    incoming, states = submission
    first = ROUTER.route(incoming, states)
    assert first.status == ReceiptStatus.Accepted, first.message
    assert first.state is not None
    assert first.case_id is not None
    destination = CODEC.decode(incoming.value).envelope.destination_country
    assert destination is not None
    assert [out.topic for out in inbox(first)] == [focal_inbox(destination.value)]

    # when its state is applied and the same bytes are routed again
    again = ROUTER.route(incoming, {**states, first.case_id: first.state})

    # then the second time is a duplicate: a receipt only, and no new state
    assert again.status == ReceiptStatus.Duplicate
    assert again.state is None
    assert [out.topic for out in again.outputs] == [nrm_receipts(incoming.country)]


@settings(max_examples=200, deadline=None)
@given(st.one_of(submissions(), admissible()))
def test_any_message_gets_exactly_one_receipt_and_a_dead_letter_iff_rejected(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    # given any message (a valid event, or any bytes) on any national topic, and any case state
    incoming, states = submission

    # when it is routed
    decision = ROUTER.route(incoming, states)

    # then there is exactly one receipt, and a dead letter of the original bytes exactly when rejected
    [out] = receipts(decision)
    assert out.topic == nrm_receipts(incoming.country)
    receipt = CODEC.decode_receipt(out.value)
    assert receipt.status == decision.status
    assert receipt.reason_code == (decision.reason.value if decision.reason else None)
    assert (receipt.source_topic, receipt.source_offset) == (incoming.topic, incoming.offset)
    rejected = decision.status == ReceiptStatus.Rejected
    assert rejected == (len(dead_letters(decision)) == 1)
    assert rejected == (decision.reason is not None)
    if rejected:
        assert dead_letters(decision)[0].value == incoming.value
    assert len(dead_letters(decision)) <= 1
    assert len(inbox(decision)) <= 1
    assert (decision.state is not None) == (decision.status == ReceiptStatus.Accepted)
    assert len(decision.outputs) == 1 + len(inbox(decision)) + len(dead_letters(decision)) + len(
        logged(decision)
    )
    assert len(logged(decision)) == (decision.status == ReceiptStatus.Accepted)


@settings(max_examples=100, deadline=None)
@given(st.one_of(submissions(), admissible()))
def test_routing_is_deterministic(submission: tuple[Incoming, dict[str, CaseRoute]]) -> None:
    # given any message and any case state
    incoming, states = submission

    # when it is routed twice, then both decisions are equal
    assert ROUTER.route(incoming, states) == ROUTER.route(incoming, states)


# -- the fast path: the same decisions as the models --------------------------------------------------

FULL = Router(CODEC, AGREEMENTS, fast_path=False)

_FUTURE = st.datetimes(
    min_value=(NOW - timedelta(days=1)).replace(tzinfo=None),
    max_value=(NOW + timedelta(days=1)).replace(tzinfo=None),
    timezones=st.just(UTC),
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[Incoming, dict[str, CaseRoute]]:
    """An admissible message with one field of its record (or of its envelope) replaced by any value
    its Avro type allows, so that it may now break a rule of the contract or of routing."""
    incoming, states = draw(admissible())
    schema, record = CODEC.decode_record(incoming.value)
    named = CODEC.contract.latest.named_types()
    layout = named[f"lintas.events.{schema.event_type}"]["fields"]
    envelope_layout = named["lintas.Envelope"]["fields"]
    where = draw(st.sampled_from([("", f) for f in layout[1:]] + [("envelope", f) for f in envelope_layout]))
    target = record["envelope"] if where[0] else record
    name = where[1]["name"]
    if name in ("occurred_at", "recorded_at"):
        target[name] = draw(_FUTURE)
    else:
        target[name] = draw(from_avro(where[1]["type"], named))
    value = CODEC.encode_record(schema.event_type, record)
    return Incoming(incoming.country, incoming.topic, 0, incoming.offset, None, value), states


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[Incoming, dict[str, CaseRoute]]:
    """An admissible message with any one byte of its body overwritten."""
    incoming, states = draw(admissible())
    value = bytearray(incoming.value)
    value[draw(st.integers(HEADER_SIZE, len(value) - 1))] = draw(st.integers(0, 255))
    return Incoming(incoming.country, incoming.topic, 0, incoming.offset, None, bytes(value)), states


@settings(max_examples=400, deadline=None)
@given(st.one_of(submissions(), admissible(), mutated(), corrupted()))
def test_the_fast_path_decides_exactly_as_the_models(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    # given any message, valid, broken in one field or one byte, or no event at all, and any state
    incoming, states = submission

    # when it is routed with the records checked directly, and with every event built as a model
    fast = ROUTER.route(incoming, states)
    full = FULL.route(incoming, states)

    # then the decisions are equal: status, reason, message, every output byte, the new state
    assert fast == full


@settings(max_examples=300, deadline=None)
@given(st.one_of(mutated(), admissible()))
def test_a_record_the_fast_check_passes_is_a_valid_event(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    # given any record the codec decodes
    schema, record = CODEC.decode_record(submission[0].value)

    # when the fast check passes it, then the models accept it too; when they accept it, so does the check
    try:
        CODEC.checked(schema, record)
    except InvalidEvent:
        assert not record_is_valid(schema.event_type, record, now=NOW)
    else:
        assert record_is_valid(schema.event_type, record, now=NOW)


def _bounds(rules: Sequence[Any]) -> bool:
    return any(
        hasattr(rule, "ge") or hasattr(rule, "le") or _bounds(getattr(rule, "metadata", ())) for rule in rules
    )


def _bounded(annotation: Any) -> bool:
    """Whether a type, or a type inside it (``Int32 | None``, ``tuple[Int32, ...]``), has bounds."""
    return _bounds(getattr(annotation, "__metadata__", ())) or any(
        _bounded(inner) for inner in typing.get_args(annotation)
    )


def test_every_bounded_field_of_the_models_is_bounded_tighter_by_a_rule() -> None:
    # given the event models and the records they contain
    models: list[type[Any]] = [Envelope, *EVENT_MODELS.values(), PersonalDetails, IdentityDocument, Contact]

    # then the fields whose type has bounds beyond Avro's (Int32, Int64) are the rule-bounded ones
    bounded = {
        (model.__name__, name)
        for model in models
        for name, info in model.model_fields.items()
        if _bounds(info.metadata) or _bounded(info.annotation)
    }
    assert bounded == RULE_BOUNDED_FIELDS


def test_an_int_beyond_32_bits_is_refused_with_the_models_message() -> None:
    # given an identification whose schema version is written as a 40-bit varint (fastavro reads it)
    event = TH_MM.identified()
    data = CODEC.encode(event)
    at = HEADER_SIZE + 1 + 36 + 1  # event_id (length and 36 characters), event_type
    assert data[at] == 0x02  # schema_version 1
    forged = data[:at] + bytes([0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) + data[at + 1 :]

    # when it is routed, then both ways reject it as invalid, with pydantic's bound
    decision = ROUTER.route(message(forged, "TH"), {})
    assert decision == FULL.route(message(forged, "TH"), {})
    assert decision.reason == Reason.INVALID_EVENT
    assert decision.message.startswith("envelope.schema_version: Input should be less than or equal to")


# -- receipts and the case state, encoded by hand ------------------------------------------------------


def test_receipts_are_written_by_the_fast_writer_for_this_contract() -> None:
    assert ROUTER._receipts is not None


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from(ReceiptStatus),
    reason=st.none() | st.sampled_from(Reason),
    text=st.text(max_size=300),
    subject=st.none() | st.tuples(st.uuids().map(str), st.sampled_from(sorted(EVENT_MODELS)), st.text()),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
    routed_to=st.lists(st.sampled_from(CountryCode), max_size=3),
    withheld=st.lists(st.text(max_size=20), max_size=4),
)
def test_a_receipt_is_the_bytes_fastavro_writes(
    status: ReceiptStatus,
    reason: Reason | None,
    text: str,
    subject: tuple[str, str, str] | None,
    partition: int,
    offset: int,
    routed_to: list[CountryCode],
    withheld: list[str],
) -> None:
    # given any receipt's fields
    incoming = Incoming("TH", nrm_events("TH"), partition, offset, None, b"")
    codes = [country.value for country in routed_to]

    # when the router writes it, and fastavro writes the same record
    writer = ROUTER._receipts
    assert writer is not None
    ours = writer.write(
        status.value,
        reason.value if reason else None,
        text,
        _Subject(*subject) if subject else None,
        incoming,
        codes,
        tuple(withheld),
    )
    theirs = CODEC.encode_record(
        "Receipt",
        {
            "status": status.value,
            "reason_code": reason.value if reason else None,
            "message": text,
            "event_id": subject[0] if subject else None,
            "event_type": subject[1] if subject else None,
            "case_id": subject[2] if subject else None,
            "source_topic": incoming.topic,
            "source_partition": partition,
            "source_offset": offset,
            "routed_to": codes,
            "withheld": withheld,
        },
    )

    # then the bytes are the same
    assert ours == theirs


def test_a_changelog_written_as_the_pydantic_model_did_still_decodes() -> None:
    # given a case state as the changelog held it before (pydantic's JSON of the model)
    old = (
        b'{"case_id":"TH-2026-000123","opened_by":"TH","partner":"MM","consent":["CaseCore",'
        b'"AssistanceNeeds"],"referral":"requested","return_noticed":false,"handed_over":false,'
        b'"closed_by":[],"seen":{"6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11":"00112233445566778899aabbccddeeff"}}'
    )

    # when it is read back, then it is the same state, and written again it reads back equal
    state = decode_route(old)
    assert state == CaseRoute(
        case_id="TH-2026-000123",
        opened_by=CountryCode.TH,
        partner=CountryCode.MM,
        consent=frozenset({DataCategory.CaseCore, DataCategory.AssistanceNeeds}),
        referral="requested",
        seen={"6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11": "00112233445566778899aabbccddeeff"},
    )
    assert decode_route(encode_route(state)) == state
    assert json.loads(encode_route(state)) == {
        **json.loads(old),
        "consent": ["AssistanceNeeds", "CaseCore"],
        "transit": [],
        "shredded": False,
        "retracted": [],
    }
    assert decode_route(b'{"case_id":"TH-1","opened_by":"TH"}') == CaseRoute("TH-1", CountryCode.TH)


@pytest.mark.parametrize(
    "data",
    [
        b'{"case_id":"TH-1","opened_by":"XX"}',
        b'{"case_id":"TH-1","opened_by":"TH","referral":"maybe"}',
        b'{"case_id":"TH-1","opened_by":"TH","extra":1}',
        b"not json",
    ],
)
def test_a_broken_changelog_record_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="validation error"):
        decode_route(data)


@settings(max_examples=100, deadline=None)
@given(st.one_of(submissions(), admissible()))
def test_every_state_the_router_makes_round_trips_through_the_changelog(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    incoming, states = submission
    for state in [*states.values(), ROUTER.route(incoming, states).state]:
        if state is not None:
            assert decode_route(encode_route(state)) == state


# -- the ids a case has seen: persistent, shared while newest ---------------------------------------------


def test_adding_an_id_leaves_the_earlier_mapping_as_it_was() -> None:
    # given a case's ids
    first = SeenIds({"a": "1"})

    # when one is added, then another is added to the first one again (a decision taken again)
    second = first.adding("b", "2")
    again = first.adding("c", "3")
    third = second.adding("d", "4")

    # then each mapping holds exactly its own ids
    assert dict(first) == {"a": "1"}
    assert dict(second) == {"a": "1", "b": "2"}
    assert dict(again) == {"a": "1", "c": "3"}
    assert dict(third) == {"a": "1", "b": "2", "d": "4"}
    assert "b" not in first
    assert first.get("b") is None
    assert "c" not in second
    assert len(first) == 1
    assert len(third) == 3
    assert list(third) == ["a", "b", "d"]
    assert second == {"a": "1", "b": "2"}
    with pytest.raises(KeyError):
        first["b"]


def test_a_case_route_takes_any_mapping_of_ids() -> None:
    state = CaseRoute("TH-1", CountryCode.TH, seen={"a": "1"})
    assert isinstance(state.seen, SeenIds)
    assert state == CaseRoute("TH-1", CountryCode.TH, seen=SeenIds({"a": "1"}))
    assert state.model_dump(exclude={"consent"})["seen"] == {"a": "1"}


def test_routing_again_from_an_older_state_sees_only_its_ids(hub: Hub) -> None:
    # given a case state, and the state after one more accepted event
    case = TH_MM
    hub.submit(case.identified())
    older = dict(hub.states)
    referral = case.requested()
    hub.submit(referral)

    # when the referral is routed again from the older state (as after an aborted batch)
    again = hub.router.route(message(hub.encode(referral), "TH"), older)

    # then it is accepted again from there, not taken for a duplicate
    assert again.status == ReceiptStatus.Accepted, again.message
    assert again.state == hub.states[case.case_id]
    assert str(referral.envelope.event_id) not in older[case.case_id].seen


def test_an_event_id_in_capitals_is_routed_as_the_models_route_it() -> None:
    # given an identification whose event id is written in capitals, with something to withhold
    event = TH_MM.identified(consent_scope=["CaseCore"])
    record = event.model_dump()
    record["envelope"]["event_id"] = str(event.envelope.event_id).upper()
    value = CODEC.encode_record("VictimIdentified", record)

    # when it is routed, then both ways accept it under the id's usual form
    decision = ROUTER.route(message(value, "TH"), {})
    assert decision == FULL.route(message(value, "TH"), {})
    assert decision.status == ReceiptStatus.Accepted, decision.message
    assert decision.state is not None
    assert list(decision.state.seen) == [str(event.envelope.event_id)]
    [delivered] = inbox(decision)
    assert delivered.value == CODEC.encode(minimise(event, {DataCategory.CaseCore})[0])


@settings(max_examples=200, deadline=None)
@given(admissible())
def test_what_reaches_the_inbox_is_the_minimised_event_as_the_codec_writes_it(
    submission: tuple[Incoming, dict[str, CaseRoute]],
) -> None:
    # given a message the router accepts, and what the agreement and consent grant
    incoming, states = submission
    event = CODEC.decode(incoming.value)
    envelope = event.envelope
    assert envelope.destination_country is not None
    terms = AGREEMENTS.terms(envelope.source_country.value, envelope.destination_country.value)
    assert terms is not None
    if isinstance(event, VictimIdentified):
        consent = frozenset(event.consent_scope)
    else:
        consent = states[envelope.case_id].consent
    granted = terms.grants & (consent | {DataCategory.CaseCore})
    if event.envelope.event_type == EventType.ConsentChanged:
        granted = frozenset({DataCategory.CaseCore})

    # when it is routed
    decision = ROUTER.route(incoming, states)

    # then the inbox holds the bytes the codec writes for the minimised event
    [delivered] = inbox(decision)
    shared, withheld = minimise(event, granted)
    assert delivered.value == (incoming.value if not withheld else CODEC.encode(shared))
