"""A mass release, pure: thousands of people released from scam compounds at once, crossing into one
country within days, as some 7,000 foreign nationals of more than twenty countries were handed over
to the Thai authorities at Mae Sot from the compounds of Myawaddy in February and March 2025.

Everyone is screened on arrival and recorded as a presumed victim first (identification interviews
confirm some of them later); each is referred to their home country, whose focal point
acknowledges and answers; the returns go in waves, one flight or convoy after another, each with its
return notice and its handover. The same seed and now give the same release.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from random import Random
from typing import Final

from hub.contract import (
    AgeBand,
    AgencyType,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DeclineReason,
    DocumentType,
    Envelope,
    EscortType,
    EventType,
    ExploitationType,
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
    ReturnNoticeIssued,
    ServiceType,
    TraffickingStatus,
    TravelMode,
    Urgency,
    VictimIdentified,
)
from hub.events import CONTRACT_VERSION
from hub.simulation.plan import Door, Scheduled, Step, door_of, schedule_case

__all__ = ["HOME_COUNTRIES", "Home", "mass_release", "release_counts"]


@dataclass(frozen=True)
class Home:
    """A home country of the people released: its share of them, how they go home (crossing, mode,
    people per flight or convoy), its focal points and its people's languages and names."""

    country: str
    weight: float
    crossing: CrossingPoint
    travel_mode: TravelMode
    wave: int
    agencies: tuple[str, ...]
    languages: tuple[LanguageCode, ...]
    names: tuple[str, ...]
    #: days its focal point takes to answer a referral (low, high)
    answer_days: tuple[float, float] = (3.0, 12.0)


#: The nationalities of the 2025 releases that the contract has codes for and Thailand has a corridor
#: with, in rough proportion: Chinese nationals by far the most, then Indonesians, Vietnamese,
#: Indians, Pakistanis, Bangladeshis, Nepalis, Sri Lankans, and smaller numbers from the region.
#: (Filipinos and Koreans were among them too; Thailand has no corridor with their countries yet.)
HOME_COUNTRIES: Final[tuple[Home, ...]] = (
    Home(
        "CN",
        52,
        CrossingPoint.KMG_Kunming,
        TravelMode.Air,
        500,
        ("CN-MPS",),
        (LanguageCode.zh,),
        ("Wei", "Jun", "Li", "Hao", "Ming", "Yan"),
        (2.0, 6.0),
    ),
    Home(
        "ID",
        8,
        CrossingPoint.CGK_Jakarta,
        TravelMode.Air,
        150,
        ("ID-KEMENPPPA", "ID-BP2MI"),
        (LanguageCode.id,),
        ("Agus", "Rina", "Budi", "Dewi"),
    ),
    Home(
        "VN",
        7,
        CrossingPoint.HAN_Hanoi,
        TravelMode.Air,
        150,
        ("VN-MOLISA", "VN-BG"),
        (LanguageCode.vi,),
        ("Minh", "Hung", "Lan", "Tuan"),
    ),
    Home(
        "IN",
        6,
        CrossingPoint.BKK_Suvarnabhumi,
        TravelMode.Air,
        250,
        ("IN-MHA",),
        (LanguageCode.hi, LanguageCode.en),
        ("Rahul", "Amit", "Priya", "Vikram"),
    ),
    Home(
        "PK",
        3,
        CrossingPoint.BKK_Suvarnabhumi,
        TravelMode.Air,
        100,
        ("PK-FIA",),
        (LanguageCode.ur,),
        ("Ahmed", "Bilal", "Usman"),
        (5.0, 15.0),
    ),
    Home(
        "BD",
        3,
        CrossingPoint.BKK_Suvarnabhumi,
        TravelMode.Air,
        100,
        ("BD-MOHA",),
        (LanguageCode.bn,),
        ("Rahim", "Karim", "Shakil"),
        (5.0, 15.0),
    ),
    Home(
        "NP",
        2,
        CrossingPoint.BKK_Suvarnabhumi,
        TravelMode.Air,
        80,
        ("NP-MOWCSC",),
        (LanguageCode.ne,),
        ("Ram", "Suman", "Bikash"),
    ),
    Home(
        "LK",
        2,
        CrossingPoint.BKK_Suvarnabhumi,
        TravelMode.Air,
        80,
        ("LK-NAHTTF",),
        (LanguageCode.si, LanguageCode.ta),
        ("Nuwan", "Kasun", "Dilshan"),
    ),
    Home(
        "LA",
        3,
        CrossingPoint.NongKhai_Vientiane,
        TravelMode.Land,
        60,
        ("LA-MLSW",),
        (LanguageCode.lo,),
        ("Khamla", "Souk", "Bounmy"),
    ),
    Home(
        "KH",
        2,
        CrossingPoint.Aranyaprathet_Poipet,
        TravelMode.Land,
        60,
        ("KH-MOSVY",),
        (LanguageCode.km,),
        ("Dara", "Vanna", "Sokha"),
    ),
    Home(
        "MY",
        2,
        CrossingPoint.Sadao_BukitKayuHitam,
        TravelMode.Land,
        60,
        ("MY-MAPO",),
        (LanguageCode.ms,),
        ("Hafiz", "Amir", "Farid"),
    ),
    Home(
        "JP",
        1,
        CrossingPoint.NRT_Tokyo,
        TravelMode.Air,
        30,
        ("JP-NPA",),
        (LanguageCode.ja,),
        ("Takumi", "Kenta", "Daiki"),
    ),
)
#: The host's agencies: the screening is joint, the referrals go from the social-welfare focal point.
_HOST_AGENCIES: Final[Mapping[str, tuple[str, ...]]] = {"TH": ("TH-DSDW", "TH-ATPD")}
#: The share recorded as identified (not presumed) once their interviews are done.
_CONFIRMED_SHARE: Final = 0.55
#: The share a home country cannot verify as its nationals (no documents, no records).
_NOT_VERIFIED_SHARE: Final = 0.03
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)


def release_counts(people: int, homes: Sequence[Home] = HOME_COUNTRIES) -> dict[str, int]:
    """How many of ``people`` come from each home country: everyone of them at least one, the rest
    by weight (largest remainders), so the counts add up to ``people`` exactly."""
    counts = {home.country: 1 if people >= len(homes) else 0 for home in homes}
    rest = people - sum(counts.values())
    total = sum(home.weight for home in homes)
    shares = {home.country: rest * home.weight / total for home in homes}
    for country, share in shares.items():
        counts[country] += int(share)
    left = people - sum(counts.values())
    for country in sorted(shares, key=lambda c: (int(shares[c]) - shares[c], c))[:left]:
        counts[country] += 1
    return counts


def _uuid(rng: Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


class _Person:
    """Stamps the envelopes of one person's case (times are set when the steps are scheduled)."""

    def __init__(self, rng: Random, case_id: str, host: str, home: Home, now: datetime) -> None:
        self.rng, self.case_id, self.host, self.home, self.now = rng, case_id, host, home, now
        self.correlation = _uuid(rng)
        self.host_agency = rng.choice(_HOST_AGENCIES.get(host, (f"{host}-NRM",)))
        self.home_agency = rng.choice(home.agencies)

    def envelope(self, event_type: EventType, *, by_host: bool) -> Envelope:
        source, destination = (self.host, self.home.country) if by_host else (self.home.country, self.host)
        return Envelope(
            event_id=_uuid(self.rng),
            event_type=event_type,
            schema_version=CONTRACT_VERSION,
            case_id=self.case_id,
            occurred_at=self.now,
            recorded_at=self.now,
            source_country=CountryCode(source),
            source_agency=self.host_agency if by_host else self.home_agency,
            destination_country=CountryCode(destination),
            correlation_id=self.correlation,
        )


def _identified(
    person: _Person, status: TraffickingStatus, personal: PersonalDetails | None
) -> VictimIdentified:
    rng, home = person.rng, person.home
    child = rng.random() < 0.03
    age_band = (
        AgeBand.Child15To17
        if child
        else rng.choice((AgeBand.Adult18To24, AgeBand.Adult25To34, AgeBand.Adult35To49))
    )
    needs = {Need.Shelter, Need.MedicalCare, Need.PsychosocialSupport, Need.SafeReturn, Need.Documentation}
    if child:
        needs.add(Need.ChildProtection)
    return VictimIdentified(
        envelope=person.envelope(EventType.VictimIdentified, by_host=True),
        status=status,
        identified_on=date(2000, 1, 1),  # dated when scheduled
        identifying_agency_type=AgencyType.ImmigrationService
        if status is TraffickingStatus.PossibleVictimOfTrafficking
        else AgencyType.LawEnforcement,
        exploitation_types=(ExploitationType.ForcedCriminality,),
        labour_sectors=(LabourSector.OnlineScamOperations,),
        methods_of_control=(
            MethodOfControl.WithholdsDocuments,
            MethodOfControl.RestrictsMovement,
            MethodOfControl.Threats,
        ),
        recruitment_methods=(rng.choice((RecruitmentMethod.JobOffer, RecruitmentMethod.Internet)),),
        sex=Gender.Male if rng.random() < 0.75 else Gender.Female,
        age_band=age_band,
        nationality=CountryCode(home.country),
        languages=(rng.choice(home.languages),),
        needs=tuple(sorted(needs)),
        reflection_period_start=date(2000, 1, 1),
        reflection_period_days=45 if person.host == "TH" else 30,
        consent_scope=(DataCategory.CaseCore, DataCategory.AssistanceNeeds, DataCategory.PersonalIdentity),
        personal=personal,
    )


def _personal(rng: Random, home: Home) -> PersonalDetails:
    # Most passports were kept by the compounds; a person without one is identified by interview.
    documents: tuple[IdentityDocument, ...] = ()
    if rng.random() < 0.35 and door_of(home.country) is not Door.IMPORT:
        documents = (
            IdentityDocument(
                document_type=DocumentType.TravelDocument,
                number=f"{home.country}{rng.randint(10**7, 10**8 - 1)}",
                issuing_country=CountryCode(home.country),
            ),
        )
    return PersonalDetails(
        given_names=rng.choice(home.names),
        date_of_birth=date(rng.randint(1975, 2006), rng.randint(1, 12), rng.randint(1, 28)),
        documents=documents,
    )


def _steps(person: _Person, crossed: datetime, wave_day: datetime) -> list[Step]:
    rng, home = person.rng, person.home
    personal = _personal(rng, home)
    screened = crossed + rng.uniform(2, 72) * _HOUR
    steps = [
        Step(_identified(person, TraffickingStatus.PossibleVictimOfTrafficking, personal), exactly=screened)
    ]
    confirmed = rng.random() < _CONFIRMED_SHARE
    referral = ReferralRequested(
        envelope=person.envelope(EventType.ReferralRequested, by_host=True),
        purposes=(ReferralPurpose.VerifyNationalityIdentity, ReferralPurpose.PrepareServices),
        services_requested=(ServiceType.Reception, ServiceType.PsychosocialSupport),
        urgency=Urgency.Urgent,
        respond_by=date(2000, 1, 1),
    )
    steps.append(Step(referral, rng.uniform(6, 60) * _HOUR))
    steps.append(
        Step(
            ReferralAcknowledged(
                envelope=person.envelope(EventType.ReferralAcknowledged, by_host=False),
                receiving_agency=person.home_agency,
            ),
            rng.uniform(4, 96) * _HOUR,
        )
    )
    if confirmed:
        # The interview confirms the presumption: the same case, now an identified victim.
        steps.append(
            Step(
                _identified(person, TraffickingStatus.ActualVictimOfTrafficking, None),
                rng.uniform(1, 5) * _DAY,
            )
        )
    low, high = home.answer_days
    verified = rng.random() >= _NOT_VERIFIED_SHARE
    answer = ReferralAnswered(
        envelope=person.envelope(EventType.ReferralAnswered, by_host=False),
        decision=ReferralDecision.Accepted if verified else ReferralDecision.Declined,
        decline_reason=None if verified else DeclineReason.NationalityNotVerified,
        services_offered=(ServiceType.Reception, ServiceType.FamilyReunification) if verified else (),
        nationality_verified=verified,
    )
    steps.append(Step(answer, rng.uniform(low, high) * _DAY))
    if not verified:
        return steps
    lead = rng.randint(3, 7)
    notice = ReturnNoticeIssued(
        envelope=person.envelope(EventType.ReturnNoticeIssued, by_host=True),
        planned_return_on=date(2000, 1, 1),
        crossing_point=home.crossing,
        travel_mode=home.travel_mode,
        escorts=(EscortType.ImmigrationOfficer,)
        if home.travel_mode is TravelMode.Air
        else (EscortType.SocialWorker,),
    )
    steps.append(Step(notice, exactly=wave_day - lead * _DAY, lead_days=lead))
    handover = HandoverCompleted(
        envelope=person.envelope(EventType.HandoverCompleted, by_host=False),
        handed_over_on=date(2000, 1, 1),
        crossing_point=home.crossing,
        receiving_agency=person.home_agency,
        receiving_agency_type=AgencyType.SocialWelfare,
        documents_handed_over=(DocumentType.CertificateOfIdentity, DocumentType.CaseSummary),
    )
    steps.append(Step(handover, after_planned=rng.uniform(8, 20) * _HOUR))
    return steps


def mass_release(
    seed: int, now: datetime, *, people: int = 7000, host: str = "TH", run_tag: str
) -> list[Scheduled]:
    """The events of a release of ``people`` persons into ``host`` beginning at ``now``: they cross
    over the first three days; each home country's returns go in waves from the second week on."""
    rng = Random(f"lintas-mass-release|{seed}|{host}|{run_tag}|{now.isoformat()}")
    counts = release_counts(people, [home for home in HOME_COUNTRIES if home.country != host])
    homes = {home.country: home for home in HOME_COUNTRIES}
    entries: list[tuple[datetime, int, int, Scheduled]] = []
    number = 0
    for country, count in counts.items():
        home = homes[country]
        for index in range(count):
            # The n-th flight or convoy leaves from day 10, one every two to four days.
            wave = index // home.wave
            wave_day = now + timedelta(days=10 + 3 * wave + rng.uniform(0, 1))
            crossed = now + rng.uniform(0, 72) * _HOUR
            person = _Person(rng, f"{host}-{now.year}-{run_tag}R{number:05d}", host, home, now)
            for position, item in enumerate(schedule_case(rng, _steps(person, crossed, wave_day))):
                entries.append((item.at, number, position, item))
            number += 1
    entries.sort(key=lambda entry: entry[:3])
    return [item for *_, item in entries]
