"""Realistic synthetic cases along the region's corridors, for the demo and the benchmarks.

Pure: a seeded ``random.Random`` and a start time in, events out. Names are invented.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random

from hub.contract import (
    CONTRACT_VERSION,
    AgeBand,
    AgencyType,
    CaseClosed,
    CaseStatus,
    ClosureReason,
    Contact,
    ContactKind,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DeclineReason,
    DocumentType,
    Envelope,
    EscortType,
    EventCorrected,
    EventRetracted,
    EventType,
    ExploitationType,
    FieldChange,
    FollowUpDomain,
    FollowUpRecorded,
    Gender,
    HandoverCompleted,
    IdentityDocument,
    LabourSector,
    LanguageCode,
    MethodOfControl,
    Need,
    PersonalDetails,
    RecruitmentMethod,
    ReferralAcknowledged,
    ReferralAnswered,
    ReferralDecision,
    ReferralPurpose,
    ReferralRequested,
    ReintegrationStatus,
    RetractionReason,
    ReturnNoticeIssued,
    RouteLeg,
    ServiceType,
    TraffickingStatus,
    TransitChange,
    TransitPartyChanged,
    TravelMode,
    Urgency,
    VictimIdentified,
)
from hub.events import CHILD_BANDS, Event


@dataclass(frozen=True)
class Corridor:
    """Where people are found (``host``) and where they come from (``home``); with ``via``, the
    return crosses a transit country, entering it at ``entry`` (``crossing`` is where it is left)."""

    host: str
    home: str
    crossing: CrossingPoint
    travel_mode: TravelMode
    exploitation: tuple[ExploitationType, ...]
    sectors: tuple[LabourSector, ...]
    languages: tuple[LanguageCode, ...]
    via: str | None = None
    entry: CrossingPoint | None = None


CORRIDORS: tuple[Corridor, ...] = (
    Corridor(
        "TH",
        "MM",
        CrossingPoint.MaeSot_Myawaddy,
        TravelMode.Land,
        (ExploitationType.ForcedLabour,),
        (LabourSector.Fishing, LabourSector.Construction),
        (LanguageCode.my, LanguageCode.kar, LanguageCode.shn),
    ),
    Corridor(
        "TH",
        "KH",
        CrossingPoint.Aranyaprathet_Poipet,
        TravelMode.Land,
        (ExploitationType.ForcedLabour, ExploitationType.Begging),
        (LabourSector.Agriculture, LabourSector.Begging),
        (LanguageCode.km,),
    ),
    Corridor(
        "TH",
        "LA",
        CrossingPoint.NongKhai_Vientiane,
        TravelMode.Land,
        (ExploitationType.SexualExploitation, ExploitationType.ForcedLabour),
        (LabourSector.Hospitality, LabourSector.DomesticWork),
        (LanguageCode.lo,),
    ),
    Corridor(
        "CN",
        "VN",
        CrossingPoint.MongCai_Dongxing,
        TravelMode.Land,
        (ExploitationType.ForcedMarriage, ExploitationType.SexualExploitation),
        (),
        (LanguageCode.vi,),
    ),
    Corridor(
        "CN",
        "LA",
        CrossingPoint.Boten_Mohan,
        TravelMode.Land,
        (ExploitationType.ForcedMarriage,),
        (),
        (LanguageCode.lo, LanguageCode.hmn),
    ),
    Corridor(
        "CN",
        "MM",
        CrossingPoint.Muse_Ruili,
        TravelMode.Land,
        (ExploitationType.ForcedMarriage, ExploitationType.ForcedLabour),
        (),
        (LanguageCode.my,),
    ),
    Corridor(
        "KH",
        "VN",
        CrossingPoint.Bavet_MocBai,
        TravelMode.Land,
        (ExploitationType.ForcedCriminality,),
        (LabourSector.OnlineScamOperations,),
        (LanguageCode.vi,),
    ),
    Corridor(
        "MM",
        "TH",
        CrossingPoint.MaeSot_Myawaddy,
        TravelMode.Land,
        (ExploitationType.ForcedCriminality,),
        (LabourSector.OnlineScamOperations,),
        (LanguageCode.th,),
    ),
    Corridor(
        "MY",
        "ID",
        CrossingPoint.Entikong_Tebedu,
        TravelMode.Land,
        (ExploitationType.ForcedLabour,),
        (LabourSector.DomesticWork, LabourSector.Agriculture),
        (LanguageCode.id,),
    ),
    Corridor(
        "MY",
        "PH",
        CrossingPoint.Sandakan_Zamboanga,
        TravelMode.Sea,
        (ExploitationType.ForcedLabour, ExploitationType.SexualExploitation),
        (LabourSector.DomesticWork, LabourSector.Hospitality),
        (LanguageCode.fil,),
    ),
    Corridor(
        "JP",
        "PH",
        CrossingPoint.MNL_Manila,
        TravelMode.Air,
        (ExploitationType.SexualExploitation, ExploitationType.ForcedLabour),
        (LabourSector.Hospitality, LabourSector.Manufacturing),
        (LanguageCode.fil,),
    ),
    # Lao men identified on Malaysian plantations and building sites go home overland through
    # Thailand: into it at Sadao, out of it over the Friendship Bridge at Nong Khai.
    Corridor(
        "MY",
        "LA",
        CrossingPoint.NongKhai_Vientiane,
        TravelMode.Land,
        (ExploitationType.ForcedLabour,),
        (LabourSector.Agriculture, LabourSector.Construction),
        (LanguageCode.lo,),
        via="TH",
        entry=CrossingPoint.Sadao_BukitKayuHitam,
    ),
)
#: Shares of cases in which a sender corrects its referral, and in which the partner retracts a
#: follow-up it recorded on the wrong case: real systems do both, and the read models must show it.
CORRECTED_SHARE = 0.08
RETRACTED_SHARE = 0.05

_GIVEN = {
    "MM": ("Aung", "Kyaw", "Thiri", "Hnin", "Zaw", "Su"),
    "KH": ("Sokha", "Dara", "Srey", "Vanna"),
    "LA": ("Khamla", "Noy", "Souk", "Bounmy"),
    "VN": ("Lan", "Minh", "Thu", "Hung", "Mai"),
    "ID": ("Siti", "Dewi", "Agus", "Rina"),
    "PH": ("Maria", "Jose", "Ana", "Mark"),
    "TH": ("Somchai", "Malee", "Niran", "Ploy"),
}
_FAMILY = {
    "KH": ("Chan", "Sok", "Kim"),
    "LA": ("Phommasak", "Vongsa"),
    "VN": ("Nguyen", "Tran", "Le"),
    "ID": ("Wati", "Santoso"),
    "PH": ("Santos", "Reyes", "Cruz"),
    "TH": ("Srisuk", "Chaiyaporn"),
}
_AGENCY = {
    "TH": ("TH-DSDW", "TH-ATPD", "TH-DLPW"),
    "MM": ("MM-DSW", "MM-ATIPD"),
    "KH": ("KH-MOSVY", "KH-NCCT"),
    "LA": ("LA-MLSW", "LA-ATD"),
    "VN": ("VN-MOLISA", "VN-BG"),
    "CN": ("CN-MPS", "CN-MCA"),
    "MY": ("MY-MAPO", "MY-KPWKM"),
    "ID": ("ID-KEMENPPPA", "ID-BP2MI"),
    "PH": ("PH-IACAT", "PH-DSWD"),
    "JP": ("JP-MOJ", "JP-NPA"),
}
_FIRST_RESPONDER = (
    AgencyType.LawEnforcement,
    AgencyType.LabourInspection,
    AgencyType.SocialWelfare,
    AgencyType.ImmigrationService,
    AgencyType.NGO,
    AgencyType.Hotline,
)
_ADULT_BANDS = (AgeBand.Adult18To24, AgeBand.Adult25To34, AgeBand.Adult35To49, AgeBand.Adult50Plus)
_CHILD_BANDS = (AgeBand.Child12To14, AgeBand.Child15To17, AgeBand.UncertainPresumedChild)
_DECLINE_REASONS = (
    DeclineReason.NationalityNotVerified,
    DeclineReason.FamilyNotTraced,
    DeclineReason.HomeNotSafe,
)
_MS_PER_DAY = 86_400_000


class _CaseWriter:
    """Stamps envelopes for one case, keeping time moving forward and linking causes."""

    def __init__(self, rng: Random, corridor: Corridor, case_id: str, start: datetime) -> None:
        self.rng = rng
        self.corridor = corridor
        self.case_id = case_id
        self.now = start
        self.correlation = uuid.UUID(int=rng.getrandbits(128), version=4)
        self.previous: uuid.UUID | None = None

    def envelope(self, event_type: EventType, *, by_host: bool, days: float) -> Envelope:
        self.now += timedelta(milliseconds=int(days * _MS_PER_DAY))
        event_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        source, destination = (
            (self.corridor.host, self.corridor.home) if by_host else (self.corridor.home, self.corridor.host)
        )
        envelope = Envelope(
            event_id=event_id,
            event_type=event_type,
            schema_version=CONTRACT_VERSION,
            case_id=self.case_id,
            occurred_at=self.now,
            recorded_at=self.now + timedelta(minutes=self.rng.randint(1, 240)),
            source_country=CountryCode(source),
            source_agency=self.rng.choice(_AGENCY.get(source, (f"{source}-NRM",))),
            destination_country=CountryCode(destination),
            correlation_id=self.correlation,
            causation_id=self.previous,
        )
        self.previous = event_id
        return envelope

    @property
    def today(self) -> date:
        return self.now.date()


def _personal(rng: Random, home: str) -> PersonalDetails:
    given = rng.choice(_GIVEN.get(home, ("Ana",)))
    family = rng.choice(_FAMILY[home]) if home in _FAMILY else None
    return PersonalDetails(
        given_names=given,
        family_name=family,
        date_of_birth=date(rng.randint(1975, 2008), rng.randint(1, 12), rng.randint(1, 28)),
        documents=(
            IdentityDocument(
                document_type=DocumentType.NationalIdentityCard,
                number=f"{home}{rng.randint(10**8, 10**9 - 1)}",
                issuing_country=CountryCode(home),
            ),
        )
        if rng.random() < 0.6
        else (),
        contacts=(Contact(kind=ContactKind.Phone, value=f"+{rng.randint(10**10, 10**11 - 1)}"),)
        if rng.random() < 0.5
        else (),
    )


def synthetic_case(
    rng: Random,
    corridor: Corridor,
    case_number: int,
    start: datetime,
    *,
    complete: float = 1.0,
    run_tag: str = "",
) -> list[Event]:
    """The events of one case, from identification to closure; ``complete`` cuts the story short
    (0.3 stops around the referral), as real cases are at all stages at once."""
    case_id = f"{corridor.host}-{start.year}-{run_tag}{case_number:06d}"
    w = _CaseWriter(rng, corridor, case_id, start)
    child = rng.random() < 0.2
    age_band = rng.choice(_CHILD_BANDS if child else _ADULT_BANDS)
    needs = {Need.Shelter, Need.MedicalCare, Need.PsychosocialSupport, Need.SafeReturn}
    if age_band in CHILD_BANDS:
        needs.add(Need.ChildProtection)
    presumed = rng.random() < 0.7
    events: list[Event] = [
        VictimIdentified(
            envelope=w.envelope(EventType.VictimIdentified, by_host=True, days=0),
            status=TraffickingStatus.PossibleVictimOfTrafficking
            if presumed
            else TraffickingStatus.ActualVictimOfTrafficking,
            identified_on=w.today,
            identifying_agency_type=rng.choice(_FIRST_RESPONDER),
            exploitation_types=(rng.choice(corridor.exploitation),),
            labour_sectors=(rng.choice(corridor.sectors),) if corridor.sectors else (),
            methods_of_control=tuple(
                rng.sample(
                    (
                        MethodOfControl.DebtBondage,
                        MethodOfControl.WithholdsDocuments,
                        MethodOfControl.RestrictsMovement,
                        MethodOfControl.Threats,
                    ),
                    k=2,
                )
            ),
            recruitment_methods=(
                rng.choice(
                    (
                        RecruitmentMethod.JobOffer,
                        RecruitmentMethod.Internet,
                        RecruitmentMethod.Familial,
                    )
                ),
            ),
            sex=rng.choice((Gender.Male, Gender.Female)),
            age_band=age_band,
            nationality=CountryCode(corridor.home),
            languages=(rng.choice(corridor.languages),),
            needs=tuple(sorted(needs)),
            reflection_period_start=w.today,
            reflection_period_days=45 if corridor.host == "TH" else rng.choice((30, 60, 90)),
            consent_scope=(
                DataCategory.CaseCore,
                DataCategory.AssistanceNeeds,
                DataCategory.PersonalIdentity,
            ),
            personal=_personal(rng, corridor.home),
        ),
    ]
    steps: list[tuple[float, Event]] = []
    requested = ReferralRequested(
        envelope=w.envelope(EventType.ReferralRequested, by_host=True, days=rng.uniform(1, 10)),
        purposes=(
            ReferralPurpose.VerifyNationalityIdentity,
            ReferralPurpose.TraceFamily,
            ReferralPurpose.AssessHomeForSafeReturn,
        ),
        services_requested=(ServiceType.Reception, ServiceType.FamilyReunification),
        urgency=Urgency.Urgent if age_band in CHILD_BANDS else Urgency.Routine,
        respond_by=w.today + timedelta(days=30),
    )
    steps.append((0.2, requested))
    steps.append(
        (
            0.3,
            ReferralAcknowledged(
                envelope=w.envelope(EventType.ReferralAcknowledged, by_host=False, days=rng.uniform(0.5, 5)),
                receiving_agency=rng.choice(_AGENCY.get(corridor.home, (f"{corridor.home}-NRM",))),
                expected_answer_by=w.today + timedelta(days=21),
            ),
        )
    )
    transit = CountryCode(corridor.via) if corridor.via else None
    if transit is not None:
        # Both parties and the transit country learn of the route as soon as the host has one.
        steps.append(
            (
                0.33,
                TransitPartyChanged(
                    envelope=w.envelope(
                        EventType.TransitPartyChanged, by_host=True, days=rng.uniform(0.5, 3)
                    ),
                    transit_country=transit,
                    transit_change=TransitChange.Added,
                    crossing_points=tuple(c for c in (corridor.entry, corridor.crossing) if c is not None),
                ),
            )
        )
    if rng.random() < CORRECTED_SHARE:
        # The host entered the wrong answer date and too few services; it corrects both.
        steps.append(
            (
                0.38,
                EventCorrected(
                    envelope=w.envelope(EventType.EventCorrected, by_host=True, days=rng.uniform(0.2, 2)),
                    target_event_id=requested.envelope.event_id,
                    core_changes=(
                        FieldChange(
                            field="respond_by",
                            value_json=json.dumps((requested.respond_by + timedelta(days=14)).isoformat()),
                        ),
                    ),
                    needs_changes=(
                        FieldChange(
                            field="services_requested",
                            value_json=json.dumps(
                                [*requested.services_requested, ServiceType.CaseManagement.value]
                            ),
                        ),
                    ),
                ),
            )
        )
    declined = rng.random() < 0.1
    steps.append(
        (
            0.4,
            ReferralAnswered(
                envelope=w.envelope(EventType.ReferralAnswered, by_host=False, days=rng.uniform(5, 40)),
                decision=ReferralDecision.Declined if declined else ReferralDecision.Accepted,
                decline_reason=rng.choice(_DECLINE_REASONS) if declined else None,
                services_offered=() if declined else (ServiceType.Reception, ServiceType.CaseManagement),
                nationality_verified=not declined,
            ),
        )
    )
    if not declined:
        planned = w.today + timedelta(days=rng.randint(10, 40))
        steps.append(
            (
                0.55,
                ReturnNoticeIssued(
                    envelope=w.envelope(EventType.ReturnNoticeIssued, by_host=True, days=rng.uniform(2, 10)),
                    planned_return_on=planned,
                    crossing_point=corridor.crossing,
                    travel_mode=corridor.travel_mode,
                    escorts=(EscortType.SocialWorker,),
                    special_needs=(Need.ChildProtection,) if age_band in CHILD_BANDS else (),
                    legs=_legs(corridor, planned),
                ),
            )
        )
        # Through a transit country, the handover at the home border is on the last leg's day.
        arrival = planned + timedelta(days=1 if corridor.via else 0)
        w.now = datetime.combine(arrival, w.now.timetz())
        steps.append(
            (
                0.7,
                HandoverCompleted(
                    envelope=w.envelope(EventType.HandoverCompleted, by_host=False, days=0.1),
                    handed_over_on=w.today,
                    crossing_point=corridor.crossing,
                    receiving_agency=rng.choice(_AGENCY.get(corridor.home, (f"{corridor.home}-NRM",))),
                    receiving_agency_type=AgencyType.SocialWelfare,
                    documents_handed_over=(
                        DocumentType.CertificateOfIdentity,
                        DocumentType.CaseSummary,
                    ),
                ),
            )
        )
        handed_over = w.now
        if rng.random() < RETRACTED_SHARE:
            # A follow-up recorded on this case by mistake, taken back the next day.
            wrong = FollowUpRecorded(
                envelope=w.envelope(EventType.FollowUpRecorded, by_host=False, days=rng.uniform(20, 40)),
                months_since_return=6,
                assessed_on=w.today,
                domains_assessed=(FollowUpDomain.Economic,),
                status=ReintegrationStatus.AtRisk,
            )
            retraction = EventRetracted(
                envelope=w.envelope(EventType.EventRetracted, by_host=False, days=1),
                target_event_id=wrong.envelope.event_id,
                reason=RetractionReason.WrongCase,
            )
            steps += [(0.75, wrong), (0.76, retraction)]
        for share, months in ((0.8, 3), (0.9, 6), (0.95, 12)):
            w.now = handed_over + timedelta(days=months * 30.4 - 1)
            steps.append(
                (
                    share,
                    FollowUpRecorded(
                        envelope=w.envelope(
                            EventType.FollowUpRecorded, by_host=False, days=rng.uniform(0, 2)
                        ),
                        months_since_return=months,
                        assessed_on=w.today,
                        domains_assessed=tuple(FollowUpDomain),
                        status=rng.choices(
                            (
                                ReintegrationStatus.Reintegrating,
                                ReintegrationStatus.AtRisk,
                                ReintegrationStatus.LostContact,
                            ),
                            weights=(8, 2, 1),
                        )[0],
                    ),
                )
            )
    steps.append(
        (
            1.0,
            CaseClosed(
                envelope=w.envelope(EventType.CaseClosed, by_host=True, days=rng.uniform(5, 30)),
                status=CaseStatus.Closed,
                reason=ClosureReason.DeclinedAssistance if declined else ClosureReason.ReintegrationCompleted,
                closed_on=w.today,
            ),
        )
    )
    events += [event for share, event in steps if share <= complete]
    return events


def _legs(corridor: Corridor, planned: date) -> tuple[RouteLeg, ...]:
    """The route home: one leg per border, the transit country's crossing the next day."""
    if corridor.via is None:
        return ()
    host, via, home = (CountryCode(c) for c in (corridor.host, corridor.via, corridor.home))
    mode = corridor.travel_mode
    return (
        RouteLeg(
            from_country=host,
            to_country=via,
            crossing_point=corridor.entry,
            travel_mode=mode,
            planned_on=planned,
        ),
        RouteLeg(
            from_country=via,
            to_country=home,
            crossing_point=corridor.crossing,
            travel_mode=mode,
            planned_on=planned + timedelta(days=1),
        ),
    )


def synthetic_stream(
    seed: int,
    cases: int,
    *,
    start: datetime,
    until: datetime,
    opening_days: float = 60,
    run_tag: str = "",
) -> Iterator[Event]:
    """Events of many cases opened over ``opening_days`` from ``start``, interleaved by time as
    national systems would publish them; nothing recorded after ``until``."""
    rng = Random(seed)
    pending: list[Event] = []
    for number in range(cases):
        corridor = rng.choice(CORRIDORS)
        opened = start + timedelta(hours=rng.uniform(0, 24 * opening_days))
        story = synthetic_case(rng, corridor, number, opened, complete=rng.random(), run_tag=run_tag)
        pending += [event for event in story if event.envelope.recorded_at <= until]
    pending.sort(key=lambda event: event.envelope.occurred_at)
    yield from pending


def causal_rounds(events: Iterable[Event]) -> list[list[Event]]:
    """Events in rounds: round k holds the k-th event of every case. A partner answers only what it
    has received, so a replay publishes a round only after the hub has routed the one before."""
    rounds: list[list[Event]] = []
    position: dict[str, int] = {}
    for event in sorted(events, key=lambda e: e.envelope.occurred_at):
        index = position.get(event.envelope.case_id, 0)
        position[event.envelope.case_id] = index + 1
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(event)
    return rounds
