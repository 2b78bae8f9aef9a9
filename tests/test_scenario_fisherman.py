"""A case from practice, end to end and pure (no Kafka): a Myanmar fisherman found in Thailand.

A labour inspection of a fishing boat in Thailand finds an adult Myanmar man held by debt bondage,
his documents withheld. He is identified as a presumed victim of forced labour, needs shelter and
medical care, gets Thailand's 45-day reflection and recovery period (15 + 30 days) and consents to
share his case, his assistance needs and his identity with Myanmar, not his health or legal details.

Thailand's DSDW refers him to Myanmar's DSW (verify nationality and identity, trace the family, assess
the home); DSW acknowledges late, accepts on the last day; the return notice comes late, the handover at
the Mae Sot–Myawaddy crossing three days after the planned day; the 3-month follow-up finds him
reintegrating, the 6-month one (late) at risk, and the 12-month one is never recorded.

Each stage of the story is one test: the event is routed by the hub (``Router.route``, the router's case
state folded in sequence), then folded into the case's projection (stage, who acts next, key dates), and
the alerts at chosen clock times between events are asserted exactly (kind, level, owner, waiting, due,
id). The last tests build the Thailand–Myanmar Case Management Meeting agenda from the same events.

Deadlines are those of the TH-MM corridor in ``config/agreements.yaml`` (acknowledge 7 days, answer 30,
return notice 60 days after acceptance, handover 1 day after the planned return, follow-ups at 3, 6 and
12 months). A deadline given as a day ends with that day, 23:59:59.999 UTC; an alert is DueSoon from two
days before that moment (the reflection period: seven days), Overdue after it.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple, TypeVar

from hub.agreements import Agreements, Corridor, load_agreements
from hub.codec import Codec
from hub.codes import labels_for
from hub.contract import (
    AgeBand,
    AgencyType,
    AlertLevel,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DocumentType,
    Envelope,
    EscortType,
    EventType,
    ExploitationType,
    FollowUpDomain,
    FollowUpRecorded,
    Gender,
    HandoverCompleted,
    LabourSector,
    Need,
    ObligationKind,
    Receipt,
    ReceiptStatus,
    ReferralAcknowledged,
    ReferralAnswered,
    ReferralDecision,
    ReferralPurpose,
    ReferralRequested,
    ReintegrationStatus,
    ReturnNoticeIssued,
    ServiceType,
    TraffickingStatus,
    TravelMode,
    Urgency,
    VictimIdentified,
)
from hub.events import Event, check_event, parse_event
from hub.routing import CaseRoute, Decision, Incoming, Router
from hub.topics import ACCEPTED_EVENTS, focal_inbox, nrm_events, nrm_receipts
from projections.agenda import (
    DecisionReason,
    DelayedReturn,
    Figures,
    FollowUpDue,
    JointDecision,
    NewCase,
    build_agenda,
    to_markdown,
)
from projections.agenda.render import phrases_for
from projections.alerts.worker import alert_record
from projections.cases.fold import CaseState, FollowUp, Stage, as_of, fold
from projections.obligations.rules import alerts_for, deadlines_for
from tests.test_codec import fisherman

TH, MM = CountryCode.TH, CountryCode.MM
AGENCY = {TH: "TH-DSDW", MM: "MM-DSW"}  # the two focal points, as config/directory.yaml names them
CASE_ID = "TH-2025-000042"
#: The codec's clock (the hub "now"): every event of the story lies before it.
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CODEC = Codec(clock=lambda: NOW)
AGREEMENTS: Agreements = load_agreements()
ROUTER = Router(codec=CODEC, agreements=AGREEMENTS)
_IDS = uuid.UUID("5d0c7a52-3f4e-4b8a-9c61-2e7f1a9b0c42")
E = TypeVar("E", bound=Event)


def _corridor() -> Corridor:
    corridor = AGREEMENTS.corridor("TH", "MM")
    assert corridor is not None
    return corridor


CORRIDOR = _corridor()


def at(day: date, hour: int = 3, minute: int = 0) -> datetime:
    """A moment in UTC (03:00 UTC is 10:00 in Bangkok, 09:30 in Yangon)."""
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def end_of(day: date) -> datetime:
    """The moment a deadline given as ``day`` falls due."""
    return datetime.combine(day, time(23, 59, 59, 999_000), tzinfo=UTC)


# -- the story's dates -------------------------------------------------------------------------------

IDENTIFIED_ON = date(2025, 1, 6)
REFLECTION_ENDS = date(2025, 2, 19)  # day 45 of 45, the day of identification being day 1
REFERRED_ON = date(2025, 1, 10)
ACK_DUE = date(2025, 1, 17)  # referral + 7 days
ACKNOWLEDGED_ON = date(2025, 1, 20)  # three days late
ANSWER_DUE = date(2025, 2, 9)  # referral + 30 days, also the respond_by asked for
ACCEPTED_ON = date(2025, 2, 9)  # on the last day
NOTICE_DUE = date(2025, 4, 10)  # acceptance + 60 days
NOTICE_ON = date(2025, 4, 15)  # five days late: a delayed repatriation
PLANNED_RETURN = date(2025, 5, 6)  # 21 days' notice (the corridor asks for 15)
HANDOVER_DUE = date(2025, 5, 7)  # planned return + 1 day
HANDED_OVER_ON = date(2025, 5, 9)
FOLLOW_UP_3_DUE = date(2025, 8, 9)
FOLLOW_UP_3_ON = date(2025, 8, 9)
FOLLOW_UP_6_DUE = date(2025, 11, 9)
FOLLOW_UP_6_ON = date(2025, 11, 14)  # five days late
FOLLOW_UP_12_DUE = date(2026, 5, 9)  # never recorded


# -- the story's events: small builders, each a contract model with its envelope ---------------------


def event_id(step: str) -> uuid.UUID:
    return uuid.uuid5(_IDS, f"{CASE_ID}/{step}")


def envelope(
    step: str,
    event_type: EventType,
    occurred_at: datetime,
    *,
    by: CountryCode,
    after: Event,
    correlation: uuid.UUID | None,
) -> Envelope:
    """The envelope of an event ``by`` one focal point to the other, following from ``after``; the
    national system records it two hours after the fact."""
    return Envelope(
        event_id=event_id(step),
        event_type=event_type,
        schema_version=1,
        case_id=CASE_ID,
        occurred_at=occurred_at,
        recorded_at=occurred_at + timedelta(hours=2),
        source_country=by,
        source_agency=AGENCY[by],
        destination_country=MM if by is TH else TH,
        correlation_id=correlation,
        causation_id=after.envelope.event_id,
    )


def checked(event: E) -> E:
    """The event, after the contract's rules beyond types (what ``parse_event`` applies)."""
    check_event(event, now=NOW)
    return event


def identified() -> VictimIdentified:
    """Labour inspection of a fishing boat: a presumed victim of forced labour, adult, male, Myanmar."""
    event = parse_event(
        fisherman(
            envelope__event_id=str(event_id("identified")),
            envelope__case_id=CASE_ID,
            envelope__occurred_at=at(IDENTIFIED_ON),
            envelope__recorded_at=at(IDENTIFIED_ON) + timedelta(hours=2),
            envelope__source_agency=AGENCY[TH],
            status="PossibleVictimOfTrafficking",
            identified_on=IDENTIFIED_ON.isoformat(),
            identifying_agency_type="LabourInspection",
            exploitation_types=["ForcedLabour"],
            labour_sectors=["Fishing"],
            methods_of_control=["DebtBondage", "WithholdsDocuments", "ExcessiveWorkingHours"],
            recruitment_methods=["JobOffer"],
            sex="Male",
            age_band="Adult25To34",
            nationality="MM",
            needs=["Shelter", "MedicalCare"],
            reflection_period_start=IDENTIFIED_ON.isoformat(),
            reflection_period_days=45,
            consent_scope=["CaseCore", "AssistanceNeeds", "PersonalIdentity"],
            personal={"given_names": "Min Thu", "documents": [], "contacts": []},
        ),
        now=NOW,
    )
    assert isinstance(event, VictimIdentified)
    return event


def referred(after: Event) -> ReferralRequested:
    step = "referral"
    return checked(
        ReferralRequested(
            envelope=envelope(
                step,
                EventType.ReferralRequested,
                at(REFERRED_ON),
                by=TH,
                after=after,
                correlation=event_id(step),  # the referral opens an exchange
            ),
            purposes=(
                ReferralPurpose.VerifyNationalityIdentity,
                ReferralPurpose.TraceFamily,
                ReferralPurpose.AssessHomeForSafeReturn,
            ),
            services_requested=(
                ServiceType.Reception,
                ServiceType.MedicalCare,
                ServiceType.FamilyReunification,
            ),
            urgency=Urgency.Routine,
            respond_by=ANSWER_DUE,
        )
    )


def acknowledged(after: Event) -> ReferralAcknowledged:
    return checked(
        ReferralAcknowledged(
            envelope=envelope(
                "acknowledgement",
                EventType.ReferralAcknowledged,
                at(ACKNOWLEDGED_ON, 4),
                by=MM,
                after=after,
                correlation=event_id("referral"),
            ),
            receiving_agency=AGENCY[MM],
            expected_answer_by=ANSWER_DUE,
        )
    )


def accepted(after: Event) -> ReferralAnswered:
    return checked(
        ReferralAnswered(
            envelope=envelope(
                "acceptance",
                EventType.ReferralAnswered,
                at(ACCEPTED_ON),
                by=MM,
                after=after,
                correlation=event_id("referral"),
            ),
            decision=ReferralDecision.Accepted,
            services_offered=(
                ServiceType.Reception,
                ServiceType.FamilyReunification,
                ServiceType.CaseManagement,
            ),
            nationality_verified=True,
        )
    )


def return_notice(after: Event) -> ReturnNoticeIssued:
    step = "return-notice"
    return checked(
        ReturnNoticeIssued(
            envelope=envelope(
                step,
                EventType.ReturnNoticeIssued,
                at(NOTICE_ON),
                by=TH,
                after=after,
                correlation=event_id(step),
            ),
            planned_return_on=PLANNED_RETURN,
            crossing_point=CrossingPoint.MaeSot_Myawaddy,
            travel_mode=TravelMode.Land,
            escorts=(EscortType.SocialWorker,),
            special_needs=(Need.MedicalCare,),
        )
    )


def handed_over(after: Event) -> HandoverCompleted:
    return checked(
        HandoverCompleted(
            envelope=envelope(
                "handover",
                EventType.HandoverCompleted,
                at(HANDED_OVER_ON, 5),
                by=MM,
                after=after,
                correlation=event_id("return-notice"),
            ),
            handed_over_on=HANDED_OVER_ON,
            crossing_point=CrossingPoint.MaeSot_Myawaddy,
            receiving_agency=AGENCY[MM],
            receiving_agency_type=AgencyType.SocialWelfare,
            documents_handed_over=(DocumentType.CertificateOfIdentity, DocumentType.CaseSummary),
        )
    )


def followed_up(
    after: Event,
    months: int,
    on: date,
    status: ReintegrationStatus,
    domains: tuple[FollowUpDomain, ...],
    needs: tuple[Need, ...] = (),
) -> FollowUpRecorded:
    return checked(
        FollowUpRecorded(
            envelope=envelope(
                f"follow-up-{months}",
                EventType.FollowUpRecorded,
                at(on, 4),
                by=MM,
                after=after,
                correlation=event_id("handover"),
            ),
            months_since_return=months,
            assessed_on=on,
            domains_assessed=domains,
            status=status,
            needs=needs,
        )
    )


IDENTIFIED = identified()
REFERRED = referred(IDENTIFIED)
ACKNOWLEDGED = acknowledged(REFERRED)
ACCEPTED = accepted(ACKNOWLEDGED)
RETURN_NOTICE = return_notice(ACCEPTED)
HANDED_OVER = handed_over(RETURN_NOTICE)
FOLLOW_UP_3 = followed_up(
    HANDED_OVER,
    3,
    FOLLOW_UP_3_ON,
    ReintegrationStatus.Reintegrating,
    (FollowUpDomain.Individual, FollowUpDomain.Family, FollowUpDomain.Economic),
)
FOLLOW_UP_6 = followed_up(
    FOLLOW_UP_3,
    6,
    FOLLOW_UP_6_ON,
    ReintegrationStatus.AtRisk,  # no income yet, and the broker who recruited him is back in the village
    (FollowUpDomain.Individual, FollowUpDomain.Economic, FollowUpDomain.Community),
    (Need.Livelihood, Need.PsychosocialSupport),
)
#: The whole story, in the order the two focal points published it. No 12-month follow-up ever comes.
EVENTS: list[Event] = [
    IDENTIFIED,
    REFERRED,
    ACKNOWLEDGED,
    ACCEPTED,
    RETURN_NOTICE,
    HANDED_OVER,
    FOLLOW_UP_3,
    FOLLOW_UP_6,
]


# -- the hub's side: routing in sequence -------------------------------------------------------------


@dataclass(frozen=True)
class Routed:
    """What the hub did with the last event of a prefix of the story."""

    decision: Decision
    receipt: Receipt
    router_state: CaseRoute
    accepted_log: list[Event]  # every event the hub accepted so far, read back from its log

    @property
    def projection(self) -> CaseState:
        """The case as the projections fold it from the hub's log of accepted events."""
        return fold(self.accepted_log)[CASE_ID]


def route_through(last: Event) -> Routed:
    """Route the story up to ``last`` through the router, one message at a time, keeping the case's
    router state as each decision says; every event must be accepted."""
    states: dict[str, CaseRoute] = {}
    log: list[Event] = []
    decision: Decision | None = None
    for offset, event in enumerate(EVENTS[: EVENTS.index(last) + 1]):
        country = event.envelope.source_country.value
        message = Incoming(
            country, nrm_events(country), 0, offset, CASE_ID.encode(), CODEC.encode(event), headers=()
        )
        decision = ROUTER.route(message, states)
        assert decision.status is ReceiptStatus.Accepted, (event.envelope.event_type, decision.message)
        assert decision.case_id == CASE_ID
        assert decision.state is not None
        states[CASE_ID] = decision.state
        log += [CODEC.decode(out.value) for out in decision.outputs if out.topic == ACCEPTED_EVENTS]
    assert decision is not None
    (receipt,) = [out for out in decision.outputs if out.topic.endswith(".receipts")]
    return Routed(decision, CODEC.decode_receipt(receipt.value), states[CASE_ID], log)


def delivered(routed: Routed, event: Event, *, to: CountryCode, withheld: tuple[str, ...] = ()) -> Event:
    """Assert the event went to ``to``'s focal inbox only, minus ``withheld``; the event as delivered."""
    source = event.envelope.source_country
    topics = [out.topic for out in routed.decision.outputs]
    assert topics == [focal_inbox(to.value), ACCEPTED_EVENTS, nrm_receipts(source.value)]
    inbox = routed.decision.outputs[0]
    assert inbox.key == CASE_ID.encode()
    assert routed.receipt.status is ReceiptStatus.Accepted
    assert routed.receipt.event_id == event.envelope.event_id
    assert routed.receipt.case_id == CASE_ID
    assert routed.receipt.routed_to == (to,)
    assert routed.receipt.withheld == withheld
    assert routed.accepted_log[-1] == event  # the hub's own log keeps the event as submitted
    return CODEC.decode(inbox.value)


# -- the projections' side: the case and its alerts at a clock time ----------------------------------


class Seen(NamedTuple):
    """An alert, as asserted: what is owed, how urgent, who must act, who waits, by when, its id."""

    kind: ObligationKind
    level: AlertLevel
    owner: CountryCode
    waiting: CountryCode
    due: datetime
    id: str


def expected(kind: ObligationKind, level: AlertLevel, owner: CountryCode, due: date) -> Seen:
    waiting = TH if owner is MM else MM
    return Seen(
        kind, level, owner, waiting, end_of(due), f"{CASE_ID}/{kind.value}/{due.isoformat()}/{level.value}"
    )


def case_at(moment: datetime, events: list[Event] = EVENTS) -> CaseState:
    """The case as it stood at ``moment`` (the fold's time travel)."""
    return as_of(events, moment)[CASE_ID]


def alerts_at(moment: datetime, events: list[Event] = EVENTS) -> list[Seen]:
    """Every alert raised on the case at ``moment``, from what had happened by then."""
    state = case_at(moment, events)
    return [
        Seen(
            alert.obligation.kind,
            alert.level,
            alert.obligation.owner,
            alert.obligation.waiting,
            alert.obligation.due,
            alert.id,
        )
        for alert in alerts_for(state, deadlines_for(state, AGREEMENTS), moment)
    ]


# -- the story ---------------------------------------------------------------------------------------


def test_the_story_is_one_chain_of_events() -> None:
    # Given the scenario's events
    # Then each has its own id, follows from the one before it, and alternates between the two focal
    # points in the way the corridor expects (Thailand refers and returns, Myanmar answers and follows up)
    assert len({event.envelope.event_id for event in EVENTS}) == len(EVENTS)
    assert IDENTIFIED.envelope.causation_id is None
    for before, event in itertools.pairwise(EVENTS):
        assert event.envelope.causation_id == before.envelope.event_id
        assert before.envelope.occurred_at < event.envelope.occurred_at
    senders = [event.envelope.source_country for event in EVENTS]
    assert senders == [TH, TH, MM, MM, TH, MM, MM, MM]
    for event in EVENTS:
        envelope = event.envelope
        assert envelope.case_id == CASE_ID
        assert envelope.source_agency == AGENCY[envelope.source_country]
        assert envelope.destination_country == (MM if envelope.source_country is TH else TH)
        assert envelope.occurred_at < envelope.recorded_at < NOW
        assert envelope.occurred_at < datetime(2026, 11, 23, tzinfo=UTC)
    # the referral's exchange, and the return's, are each correlated by the event that opened them
    assert {e.envelope.correlation_id for e in (REFERRED, ACKNOWLEDGED, ACCEPTED)} == {
        REFERRED.envelope.event_id
    }
    assert HANDED_OVER.envelope.correlation_id == RETURN_NOTICE.envelope.event_id
    # and the corridor's deadlines are the ones this story is timed against
    deadlines = CORRIDOR.deadlines
    assert (deadlines.acknowledge_days, deadlines.answer_days) == (7, 30)
    assert (deadlines.return_notice_days, deadlines.return_after_acceptance_days) == (15, 60)
    assert deadlines.handover_after_return_days == 1
    assert deadlines.follow_up_months == (3, 6, 12)
    assert CORRIDOR.cmm.cadence_months == 6


def test_identified_as_a_presumed_victim_by_labour_inspection_in_thailand() -> None:
    # Given a labour inspection in Thailand on 2025-01-06 finds a Myanmar fisherman in forced labour
    assert IDENTIFIED.identifying_agency_type is AgencyType.LabourInspection
    assert IDENTIFIED.exploitation_types == (ExploitationType.ForcedLabour,)
    assert IDENTIFIED.labour_sectors == (LabourSector.Fishing,)

    # When Thailand's DSDW publishes the identification
    routed = route_through(IDENTIFIED)

    # Then the hub accepts it and sends it to Myanmar's focal point, without the methods of control and
    # recruitment (Legal data he did not consent to share); his identity and needs go (he consented)
    shared = delivered(routed, IDENTIFIED, to=MM, withheld=("methods_of_control", "recruitment_methods"))
    assert isinstance(shared, VictimIdentified)
    assert shared.methods_of_control == ()
    assert shared.recruitment_methods == ()
    assert shared == IDENTIFIED.model_copy(update={"methods_of_control": (), "recruitment_methods": ()})
    assert shared.personal is not None
    assert shared.needs == (Need.Shelter, Need.MedicalCare)
    assert routed.router_state == CaseRoute(
        case_id=CASE_ID,
        opened_by=TH,
        partner=MM,
        consent=frozenset(
            {DataCategory.CaseCore, DataCategory.AssistanceNeeds, DataCategory.PersonalIdentity}
        ),
        seen=routed.router_state.seen,
    )
    assert routed.router_state.referral == "none"

    # And the case opens in Thailand, Thailand holding the next step, with a 45-day reflection period
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.IDENTIFIED, TH)
    assert (case.host, case.home, case.nationality) == (TH, MM, MM)
    assert case.presumed
    assert case.status is TraffickingStatus.PossibleVictimOfTrafficking
    assert (case.sex, case.age_band, case.child) == (Gender.Male, AgeBand.Adult25To34, False)
    assert case.identified_on == IDENTIFIED_ON
    assert case.identified_at == at(IDENTIFIED_ON)
    assert case.consent == routed.router_state.consent
    # the day of identification is day 1 of 45: the period's last day is 2025-02-19
    assert (case.reflection_start, case.reflection_days, case.reflection_ends) == (
        IDENTIFIED_ON,
        45,
        REFLECTION_ENDS,
    )
    assert deadlines_for(case, AGREEMENTS) == CORRIDOR.deadlines

    # When the clock reads 2025-01-08, two days later
    # Then nothing is due yet
    assert alerts_at(at(date(2025, 1, 8))) == []


def test_the_reflection_period_warning_applies_only_while_no_referral_was_requested() -> None:
    # Given the case as it would stand had Thailand never referred it (only the identification)
    undecided: list[Event] = [IDENTIFIED]
    decide = ObligationKind.DecideBeforeReflectionEnds

    # When the clock reaches the week before the reflection period ends (its last day, 2025-02-19)
    # Then Thailand is warned (DueSoon) that a decision is needed, Myanmar waiting; an Overdue follows
    # the day after it ended. The warning starts 7 days before the due moment (end of 2025-02-19), i.e.
    # just before midnight on 2025-02-12.
    assert alerts_at(at(date(2025, 2, 12), 12), undecided) == []
    warned = expected(decide, AlertLevel.DueSoon, TH, REFLECTION_ENDS)
    assert alerts_at(datetime(2025, 2, 13, tzinfo=UTC), undecided) == [warned]
    assert alerts_at(at(date(2025, 2, 19), 23), undecided) == [warned]
    assert alerts_at(datetime(2025, 2, 20, tzinfo=UTC), undecided) == [
        expected(decide, AlertLevel.Overdue, TH, REFLECTION_ENDS)
    ]
    assert warned.id == "TH-2025-000042/DecideBeforeReflectionEnds/2025-02-19/DueSoon"
    (alert,) = alerts_for(case_at(NOW, undecided), CORRIDOR.deadlines, datetime(2025, 2, 14, tzinfo=UTC))
    assert alert.obligation.detail == "reflection period of 45 days ends 2025-02-19"
    assert alert.recipients == (TH, MM)

    # But in the real story the referral of 2025-01-10 is the decision: the rules owe a reflection-period
    # decision only while the person is presumed AND no referral was requested, so at the same clock
    # times there is no such alert (the case is accepted by then, its return notice not yet due)
    assert case_at(datetime(2025, 2, 14, tzinfo=UTC)).referral_requested_at == at(REFERRED_ON)
    assert alerts_at(datetime(2025, 2, 14, tzinfo=UTC)) == []
    assert alerts_at(datetime(2025, 2, 21, tzinfo=UTC)) == []


def test_referred_to_myanmar_dsw() -> None:
    # Given the identified case
    # When Thailand refers it to Myanmar on 2025-01-10 (verify nationality and identity, trace the
    # family, assess the home), asking for an answer by 2025-02-09
    routed = route_through(REFERRED)

    # Then the hub accepts it and delivers it whole to Myanmar (services requested are AssistanceNeeds)
    assert delivered(routed, REFERRED, to=MM) == REFERRED
    assert routed.router_state.referral == "requested"

    # And Myanmar now holds the next step
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.REFERRED, MM)
    assert case.referral_requested_at == at(REFERRED_ON)
    assert case.respond_by == ANSWER_DUE
    assert case.acknowledged_at is None
    assert case.answered_at is None

    # When the clock reads 2025-01-15 noon: the acknowledgement (due 2025-01-17) is not due soon yet
    assert alerts_at(at(date(2025, 1, 15), 12)) == []
    # When it reads 2025-01-16: the acknowledgement is due soon, Myanmar owing it, Thailand waiting
    ack_soon = expected(ObligationKind.AcknowledgeReferral, AlertLevel.DueSoon, MM, ACK_DUE)
    assert alerts_at(at(date(2025, 1, 16))) == [ack_soon]
    # When it passes day 7 without an acknowledgement: Overdue (the answer, due 2025-02-09, is not near)
    ack_late = expected(ObligationKind.AcknowledgeReferral, AlertLevel.Overdue, MM, ACK_DUE)
    assert alerts_at(at(date(2025, 1, 18))) == [ack_late]
    # Then the alert id is stable: the same obligation at the same level, a day later, is the same alert
    assert alerts_at(at(date(2025, 1, 19), 20)) == [ack_late]
    assert ack_late.id == "TH-2025-000042/AcknowledgeReferral/2025-01-17/Overdue"
    assert ack_soon.id != ack_late.id  # a new level is a new alert


def test_acknowledged_late_by_myanmar_dsw() -> None:
    # Given the referral, unacknowledged after 7 days
    # When Myanmar's DSW acknowledges it on 2025-01-20, three days late
    routed = route_through(ACKNOWLEDGED)

    # Then the hub sends the acknowledgement to Thailand's focal point
    acknowledgement = delivered(routed, ACKNOWLEDGED, to=TH)
    assert isinstance(acknowledgement, ReferralAcknowledged)
    assert acknowledgement.receiving_agency == "MM-DSW"
    assert routed.router_state.referral == "acknowledged"

    # And Myanmar still holds the next step: the answer
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.ACKNOWLEDGED, MM)
    assert case.acknowledged_at == at(ACKNOWLEDGED_ON, 4)

    # When the clock reads 2025-01-21: the acknowledgement alert is gone, the answer is not due soon
    assert alerts_at(at(date(2025, 1, 21))) == []
    assert alerts_at(at(date(2025, 2, 7), 12)) == []
    # When it reads 2025-02-08, two days before the 30-day limit: the answer is due soon
    answer_soon = expected(ObligationKind.AnswerReferral, AlertLevel.DueSoon, MM, ANSWER_DUE)
    assert alerts_at(datetime(2025, 2, 8, tzinfo=UTC)) == [answer_soon]
    # Then at another clock time of the same level (the last day, before the answer came) it is the same
    assert alerts_at(at(date(2025, 2, 9), 1)) == [answer_soon]
    assert answer_soon.id == "TH-2025-000042/AnswerReferral/2025-02-09/DueSoon"


def test_accepted_by_myanmar_on_the_last_day() -> None:
    # Given the acknowledged referral
    # When Myanmar accepts it on 2025-02-09, nationality verified, the 30th day
    routed = route_through(ACCEPTED)

    # Then the hub sends the acceptance to Thailand
    answer = delivered(routed, ACCEPTED, to=TH)
    assert isinstance(answer, ReferralAnswered)
    assert answer.decision is ReferralDecision.Accepted
    assert routed.router_state.referral == "accepted"

    # And the case is Thailand's again: it must issue the return notice within 60 days
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.ACCEPTED, TH)
    assert case.answered_at == at(ACCEPTED_ON)
    assert case.decision is ReferralDecision.Accepted
    assert case.decline_reason is None

    # When the clock reads the day after: nothing is due
    assert alerts_at(at(date(2025, 2, 10))) == []
    assert alerts_at(at(date(2025, 4, 8), 12)) == []
    # When it reads 2025-04-09: the return notice (due 2025-04-10) is due soon, Thailand owing it
    assert alerts_at(at(date(2025, 4, 9))) == [
        expected(ObligationKind.IssueReturnNotice, AlertLevel.DueSoon, TH, NOTICE_DUE)
    ]
    # When 60 days pass without a notice: Overdue, Myanmar waiting
    notice_late = expected(ObligationKind.IssueReturnNotice, AlertLevel.Overdue, TH, NOTICE_DUE)
    assert alerts_at(at(date(2025, 4, 11))) == [notice_late]
    assert alerts_at(at(date(2025, 4, 14), 22)) == [notice_late]


def test_return_notice_through_mae_sot_myawaddy() -> None:
    # Given the accepted referral, its return notice five days overdue
    # When Thailand issues the notice on 2025-04-15: by land through Mae Sot–Myawaddy on 2025-05-06,
    # escorted by a social worker, with a medical need
    routed = route_through(RETURN_NOTICE)

    # Then the hub sends it to Myanmar without the special needs: they are Health data, outside consent
    notice = delivered(routed, RETURN_NOTICE, to=MM, withheld=("special_needs",))
    assert isinstance(notice, ReturnNoticeIssued)
    assert notice.special_needs == ()
    assert (notice.crossing_point, notice.travel_mode) == (CrossingPoint.MaeSot_Myawaddy, TravelMode.Land)
    assert notice.escorts == (EscortType.SocialWorker,)
    assert notice.planned_return_on == PLANNED_RETURN
    assert routed.router_state.return_noticed

    # And Myanmar, the receiving side, holds the next step: confirming the handover
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.RETURN_NOTIFIED, MM)
    assert case.return_notice_at == at(NOTICE_ON)
    assert (case.planned_return_on, case.crossing_point) == (PLANNED_RETURN, CrossingPoint.MaeSot_Myawaddy)

    # When the clock reads the day after the notice: the overdue return notice alert is gone
    assert alerts_at(at(date(2025, 4, 16))) == []
    assert alerts_at(at(date(2025, 5, 5), 12)) == []
    # When it reads the planned day: the handover confirmation (due the day after) is due soon
    assert alerts_at(at(date(2025, 5, 6))) == [
        expected(ObligationKind.ConfirmHandover, AlertLevel.DueSoon, MM, HANDOVER_DUE)
    ]
    # When it reads the day after planned return + 1 with no handover: Overdue, Myanmar owing it
    handover_late = expected(ObligationKind.ConfirmHandover, AlertLevel.Overdue, MM, HANDOVER_DUE)
    assert alerts_at(at(date(2025, 5, 8))) == [handover_late]
    (alert,) = alerts_for(case_at(at(date(2025, 5, 8))), CORRIDOR.deadlines, at(date(2025, 5, 8)))
    assert alert.obligation.detail == "planned return 2025-05-06"


def test_handed_over_at_mae_sot_myawaddy() -> None:
    # Given the notified return, its handover not confirmed on time
    # When Myanmar's DSW confirms the handover at Mae Sot–Myawaddy on 2025-05-09
    routed = route_through(HANDED_OVER)

    # Then the hub sends it to Thailand
    handover = delivered(routed, HANDED_OVER, to=TH)
    assert isinstance(handover, HandoverCompleted)
    assert handover.crossing_point is CrossingPoint.MaeSot_Myawaddy
    assert handover.receiving_agency == "MM-DSW"
    assert routed.router_state.handed_over

    # And Myanmar holds the follow-ups, at 3, 6 and 12 months after the handover
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.HANDED_OVER, MM)
    assert case.handed_over_on == HANDED_OVER_ON
    assert case.follow_ups == ()

    # When the clock reads the next day: the overdue handover alert is gone, no follow-up is near
    assert alerts_at(at(date(2025, 5, 10))) == []
    assert alerts_at(at(date(2025, 8, 7), 12)) == []
    # When it reads 2025-08-08: the 3-month follow-up (due 2025-08-09) is due soon
    assert alerts_at(at(date(2025, 8, 8))) == [
        expected(ObligationKind.RecordFollowUp, AlertLevel.DueSoon, MM, FOLLOW_UP_3_DUE)
    ]


def test_three_month_follow_up_finds_him_reintegrating() -> None:
    # Given the handover of 2025-05-09
    # When Myanmar records the 3-month follow-up on 2025-08-09: reintegrating
    routed = route_through(FOLLOW_UP_3)

    # Then the hub sends it to Thailand
    assert delivered(routed, FOLLOW_UP_3, to=TH) == FOLLOW_UP_3

    # And the case stays handed over, Myanmar holding the remaining follow-ups
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.HANDED_OVER, MM)
    assert case.follow_ups == (
        FollowUp(
            months=3,
            assessed_on=FOLLOW_UP_3_ON,
            status=ReintegrationStatus.Reintegrating,
            event_id=FOLLOW_UP_3.envelope.event_id.int,
        ),
    )

    # When the clock reads the day after: nothing is due
    assert alerts_at(at(date(2025, 8, 10))) == []
    # When it reads 2025-11-08: the 6-month follow-up (due 2025-11-09) is due soon
    six_soon = expected(ObligationKind.RecordFollowUp, AlertLevel.DueSoon, MM, FOLLOW_UP_6_DUE)
    assert alerts_at(at(date(2025, 11, 7), 12)) == []
    assert alerts_at(at(date(2025, 11, 8))) == [six_soon]
    # When it passes without a follow-up: Overdue, with a stable id from one day to the next
    six_late = expected(ObligationKind.RecordFollowUp, AlertLevel.Overdue, MM, FOLLOW_UP_6_DUE)
    assert alerts_at(at(date(2025, 11, 10))) == [six_late]
    assert alerts_at(at(date(2025, 11, 13), 18)) == [six_late]
    assert six_late.id == "TH-2025-000042/RecordFollowUp/2025-11-09/Overdue"


def test_six_month_follow_up_finds_him_at_risk() -> None:
    # Given the 6-month follow-up five days overdue
    # When Myanmar records it on 2025-11-14: at risk, needing livelihood and psychosocial support
    routed = route_through(FOLLOW_UP_6)

    # Then the hub sends it to Thailand, needs included (AssistanceNeeds is in his consent)
    assert delivered(routed, FOLLOW_UP_6, to=TH) == FOLLOW_UP_6

    # And the case's latest follow-up is the 6-month one, at risk
    case = routed.projection
    assert (case.stage, case.next_action_by) == (Stage.HANDED_OVER, MM)
    assert [(f.months, f.assessed_on, f.status) for f in case.follow_ups] == [
        (3, FOLLOW_UP_3_ON, ReintegrationStatus.Reintegrating),
        (6, FOLLOW_UP_6_ON, ReintegrationStatus.AtRisk),
    ]
    assert case.latest_follow_up is not None
    assert case.latest_follow_up.status is ReintegrationStatus.AtRisk

    # When the clock reads the day after: the overdue 6-month alert is gone; the 12-month one is far
    assert alerts_at(at(date(2025, 11, 15))) == []
    assert alerts_at(at(date(2026, 5, 7), 12)) == []


def test_twelve_month_follow_up_missed() -> None:
    # Given the whole story: no 12-month follow-up is ever recorded (due 2026-05-09)
    final = route_through(EVENTS[-1])
    assert final.router_state.model_dump(exclude={"seen"}) == {
        "case_id": CASE_ID,
        "opened_by": TH,
        "partner": MM,
        "consent": frozenset(
            {DataCategory.CaseCore, DataCategory.AssistanceNeeds, DataCategory.PersonalIdentity}
        ),
        "referral": "accepted",
        "return_noticed": True,
        "handed_over": True,
        "closed_by": frozenset(),
        "transit": frozenset(),
        "shredded": False,
        "retracted": frozenset(),
    }
    assert set(final.router_state.seen) == {str(event.envelope.event_id) for event in EVENTS}
    assert final.projection == fold(EVENTS)[CASE_ID]

    # When the clock reads 2026-05-08: the 12-month follow-up is due soon
    assert alerts_at(at(date(2026, 5, 8))) == [
        expected(ObligationKind.RecordFollowUp, AlertLevel.DueSoon, MM, FOLLOW_UP_12_DUE)
    ]
    # When it has passed: Overdue, owned by Myanmar, Thailand waiting; the same alert weeks later
    missed = expected(ObligationKind.RecordFollowUp, AlertLevel.Overdue, MM, FOLLOW_UP_12_DUE)
    assert missed == Seen(
        ObligationKind.RecordFollowUp,
        AlertLevel.Overdue,
        MM,
        TH,
        datetime(2026, 5, 9, 23, 59, 59, 999_000, tzinfo=UTC),
        "TH-2025-000042/RecordFollowUp/2026-05-09/Overdue",
    )
    assert alerts_at(at(date(2026, 5, 10))) == [missed]
    assert alerts_at(at(date(2026, 6, 1))) == [missed]
    assert alerts_at(at(date(2026, 11, 22))) == [missed]

    # Then the alert record sent to both focal points carries those ids and survives the codec
    (alert,) = alerts_for(fold(EVENTS)[CASE_ID], CORRIDOR.deadlines, at(date(2026, 6, 1)))
    assert alert.recipients == (MM, TH)
    assert alert.obligation.detail == "12-month follow-up"
    record = alert_record(alert, raised_at=at(date(2026, 6, 1)))
    assert CODEC.decode_alert(CODEC.encode(record)) == record
    assert (record.alert_id, record.obligation_id) == (missed.id, "TH-2025-000042/RecordFollowUp/2026-05-09")
    assert (record.owner, record.waiting, record.due) == (MM, TH, missed.due)


# -- the Case Management Meeting ------------------------------------------------------------------

AGENDA_AT = at(date(2026, 5, 20), 2)  # the CMM, eleven days after the 12-month follow-up fell due
LAST_MEETING = date(2025, 11, 12)  # the previous CMM, six months before


def test_cmm_agenda_after_the_missed_twelve_month_follow_up() -> None:
    # Given the whole story, as it stood on the day of the Thailand–Myanmar CMM
    states = as_of(EVENTS, AGENDA_AT)
    assert states == fold(EVENTS)

    # When the agenda is built
    agenda = build_agenda(states, CORRIDOR, as_of=AGENDA_AT, last_meeting=LAST_MEETING)

    # Then it covers the TH-MM corridor from the last meeting, the next one six months ahead
    assert (agenda.corridor_id, agenda.countries) == ("TH-MM", (TH, MM))
    assert (agenda.last_meeting, agenda.next_meeting) == (LAST_MEETING, date(2026, 11, 20))
    # and the case is listed under the follow-ups as the missed 12-month one, 11 days overdue, Myanmar
    # to act, its latest follow-up at risk
    assert agenda.follow_ups == (
        FollowUpDue(
            case_id=CASE_ID,
            months=12,
            handed_over_on=HANDED_OVER_ON,
            latest_status=ReintegrationStatus.AtRisk,
            child=False,
            owner=MM,
            due=FOLLOW_UP_12_DUE,
            days_overdue=11,
        ),
    )
    # and, since build_agenda's ``at_risk`` defaults to True, among the joint decisions as at risk since
    # the 6-month follow-up, for Myanmar (the home country) to act on
    assert agenda.joint_decisions == (
        JointDecision(
            case_id=CASE_ID,
            reason=DecisionReason.AT_RISK,
            since=FOLLOW_UP_6_ON,
            decline_reason=None,
            follow_up_months=6,
            child=False,
            owner=MM,
            days_overdue=0,
        ),
    )
    # and nowhere else: identified long before the period, no referral or return pending
    assert agenda.new_cases == ()
    assert agenda.awaiting_answer == ()
    assert agenda.delayed_returns == ()
    assert agenda.missing_handovers == ()
    assert agenda.case_ids == {CASE_ID}
    # and the figures of the period count the one follow-up done since the last meeting
    assert agenda.figures == Figures(
        identified=0,
        referred=0,
        accepted=0,
        declined=0,
        returned=0,
        follow_ups=1,
        children=0,
        median_days_to_answer=None,
    )

    # When the meeting chooses not to discuss at-risk cases jointly
    # Then the case leaves the joint decisions but stays under the follow-ups
    without = build_agenda(states, CORRIDOR, as_of=AGENDA_AT, last_meeting=LAST_MEETING, at_risk=False)
    assert without.joint_decisions == ()
    assert without.follow_ups == agenda.follow_ups

    # Then in English the case's row is highlighted as overdue
    english = to_markdown(agenda, "en")
    assert CASE_ID in english
    missed_row = (
        f"| **{CASE_ID}** | 12 months | 2025-05-09 | At risk |  | 2026-05-09 "
        "| **overdue by 11 days** | Myanmar |"
    )
    assert missed_row in english
    assert f"| {CASE_ID} | Latest follow-up (6 months): At risk | 2025-11-14 |  |  | Myanmar |" in english
    assert "## 5. Follow-ups due or missed" in english
    assert "| Follow-ups done | 1 |" in english
    # and in Burmese the sections carry their Burmese titles, the status its Burmese label
    burmese = to_markdown(agenda, "my")
    title = phrases_for("my")("sections.follow_ups")
    assert title != phrases_for("en")("sections.follow_ups")
    assert any("\u1000" <= char <= "\u109f" for char in title)  # Myanmar script
    assert f"## 5. {title}" in burmese
    assert CASE_ID in burmese
    assert labels_for("my").label(ReintegrationStatus.AtRisk) in burmese
    assert "Follow-ups due or missed" not in burmese


def test_time_travel_agenda_right_after_the_acceptance() -> None:
    # Given the story as it stood a few hours after Myanmar's acceptance (2025-02-09, 03:00 UTC)
    moment = at(ACCEPTED_ON, 9)
    states = as_of(EVENTS, moment)
    case = states[CASE_ID]
    assert (case.stage, case.next_action_by, case.handed_over_on) == (Stage.ACCEPTED, TH, None)

    # When the agenda of a CMM held then is built (the last meeting in November 2024)
    agenda = build_agenda(states, CORRIDOR, as_of=moment, last_meeting=date(2024, 11, 20))

    # Then the case is new, accepted and awaiting Thailand's return notice, due in 60 days: not delayed
    assert agenda.new_cases == (
        NewCase(
            case_id=CASE_ID,
            identified_on=IDENTIFIED_ON,
            host=TH,
            home=MM,
            status=TraffickingStatus.PossibleVictimOfTrafficking,
            age_band=AgeBand.Adult25To34,
            child=False,
            exploitation_types=(ExploitationType.ForcedLabour,),
            stage=Stage.ACCEPTED,
            owner=TH,
            due=NOTICE_DUE,
            days_overdue=0,
        ),
    )
    assert agenda.delayed_returns == ()
    assert agenda.awaiting_answer == ()
    assert agenda.missing_handovers == ()
    assert agenda.follow_ups == ()
    assert agenda.joint_decisions == ()
    # and the figures count one case identified, referred and accepted, answered in 30 days
    assert agenda.figures == Figures(
        identified=1,
        referred=1,
        accepted=1,
        declined=0,
        returned=0,
        follow_ups=0,
        children=0,
        median_days_to_answer=30.0,
    )
    english = to_markdown(agenda, "en")
    assert f"| {CASE_ID} | 2025-01-06 | Thailand | Myanmar |" in english
    assert "| Accepted | 2025-04-10 | due in 60 days | Thailand |" in english

    # When the same agenda is built as of 2025-04-14, four days past the 60 days without a notice
    late = at(date(2025, 4, 14), 12)
    delayed = build_agenda(as_of(EVENTS, late), CORRIDOR, as_of=late, last_meeting=date(2024, 11, 20))
    # Then the case has become a delayed repatriation, Thailand to act
    assert delayed.delayed_returns == (
        DelayedReturn(
            case_id=CASE_ID, accepted_on=ACCEPTED_ON, child=False, owner=TH, due=NOTICE_DUE, days_overdue=4
        ),
    )
    # And the full history's agenda no longer lists it so: the notice came on 2025-04-15
    assert (
        build_agenda(fold(EVENTS), CORRIDOR, as_of=AGENDA_AT, last_meeting=LAST_MEETING).delayed_returns == ()
    )
