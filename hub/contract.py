"""The Lintas contract as pydantic models. GENERATED from schemas/avro/v2: do not edit.

Regenerate with ``lintas schemas codegen``; a test fails when this file and the schemas disagree.
"""

# ruff: noqa: E501

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)


def _utc_millis(value: datetime) -> datetime:
    # Avro timestamp-millis keeps milliseconds in UTC; normalising here makes every valid event
    # round-trip to an equal one.
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


TimestampMillis = Annotated[AwareDatetime, AfterValidator(_utc_millis)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]


class ContractModel(BaseModel):
    """Base of every record: immutable, and unknown fields are an error, never dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Full Avro name of the record this model mirrors.
    avro_name: ClassVar[str]


class AgeBand(StrEnum):
    """Age band at identification. UncertainPresumedChild: age cannot be established, so the person is presumed a child and child protection must be involved."""

    Child0To11 = "Child0To11"
    Child12To14 = "Child12To14"
    Child15To17 = "Child15To17"
    UncertainPresumedChild = "UncertainPresumedChild"
    Adult18To24 = "Adult18To24"
    Adult25To34 = "Adult25To34"
    Adult35To49 = "Adult35To49"
    Adult50Plus = "Adult50Plus"


class AgencyType(StrEnum):
    """Kind of agency. Extends HTCDS org_Type with the NRM actors of the region (labour inspection, social welfare, child protection, consular service, hotline)."""

    LawEnforcement = "LawEnforcement"
    ImmigrationService = "ImmigrationService"
    LabourInspection = "LabourInspection"
    SocialWelfare = "SocialWelfare"
    ChildProtection = "ChildProtection"
    HealthServiceOrganisation = "HealthServiceOrganisation"
    CentralGovernmentOrganisation = "CentralGovernmentOrganisation"
    LocalGovernmentOrganisation = "LocalGovernmentOrganisation"
    LegalService = "LegalService"
    ConsularService = "ConsularService"
    NGO = "NGO"
    InternationalOrganisation = "InternationalOrganisation"
    Hotline = "Hotline"
    CorporateBusiness = "CorporateBusiness"
    Other = "Other"


class CaseStatus(StrEnum):
    """HTCDS cas_Status."""

    Active = "Active"
    FollowUp = "FollowUp"
    Closed = "Closed"
    ClosedReferred = "ClosedReferred"


class ClosureReason(StrEnum):
    """Why a case was closed."""

    ReintegrationCompleted = "ReintegrationCompleted"
    ConsentWithdrawn = "ConsentWithdrawn"
    DeclinedAssistance = "DeclinedAssistance"
    LostContact = "LostContact"
    TransferredToOtherCountry = "TransferredToOtherCountry"
    NotAVictimOfTrafficking = "NotAVictimOfTrafficking"
    Deceased = "Deceased"
    Other = "Other"


class ContactKind(StrEnum):
    """Channel of a contact detail."""

    Phone = "Phone"
    Email = "Email"
    Line = "Line"
    WeChat = "WeChat"
    WhatsApp = "WhatsApp"
    Viber = "Viber"
    Telegram = "Telegram"
    Facebook = "Facebook"
    Zalo = "Zalo"
    Other = "Other"


class CountryCode(StrEnum):
    """ISO 3166-1 alpha-2: the 11 ASEAN member states and partner countries of origin, transit or destination. ZZ: unknown or not listed (user-assigned code)."""

    BN = "BN"
    KH = "KH"
    ID = "ID"
    LA = "LA"
    MY = "MY"
    MM = "MM"
    PH = "PH"
    SG = "SG"
    TH = "TH"
    TL = "TL"
    VN = "VN"
    CN = "CN"
    JP = "JP"
    KR = "KR"
    IN = "IN"
    BD = "BD"
    LK = "LK"
    NP = "NP"
    PK = "PK"
    AU = "AU"
    NZ = "NZ"
    AE = "AE"
    SA = "SA"
    QA = "QA"
    KW = "KW"
    US = "US"
    GB = "GB"
    ZZ = "ZZ"


class CrossingPoint(StrEnum):
    """Border crossing or international airport where a return passes (land crossings named country-side first, airports by IATA code)."""

    MaeSot_Myawaddy = "MaeSot_Myawaddy"
    Ranong_Kawthaung = "Ranong_Kawthaung"
    MaeSai_Tachileik = "MaeSai_Tachileik"
    NongKhai_Vientiane = "NongKhai_Vientiane"
    Mukdahan_Savannakhet = "Mukdahan_Savannakhet"
    ChongMek_Vangtao = "ChongMek_Vangtao"
    Aranyaprathet_Poipet = "Aranyaprathet_Poipet"
    HatLek_ChamYeam = "HatLek_ChamYeam"
    Bavet_MocBai = "Bavet_MocBai"
    HaTien_Prek_Chak = "HaTien_Prek_Chak"
    MongCai_Dongxing = "MongCai_Dongxing"
    LaoCai_Hekou = "LaoCai_Hekou"
    Boten_Mohan = "Boten_Mohan"
    Muse_Ruili = "Muse_Ruili"
    Entikong_Tebedu = "Entikong_Tebedu"
    Sandakan_Zamboanga = "Sandakan_Zamboanga"
    Batam_Stulang = "Batam_Stulang"
    BKK_Suvarnabhumi = "BKK_Suvarnabhumi"
    DMK_DonMueang = "DMK_DonMueang"
    KUL_KualaLumpur = "KUL_KualaLumpur"
    CGK_Jakarta = "CGK_Jakarta"
    MNL_Manila = "MNL_Manila"
    RGN_Yangon = "RGN_Yangon"
    PNH_PhnomPenh = "PNH_PhnomPenh"
    VTE_Vientiane = "VTE_Vientiane"
    HAN_Hanoi = "HAN_Hanoi"
    SGN_HoChiMinh = "SGN_HoChiMinh"
    SIN_Singapore = "SIN_Singapore"
    DIL_Dili = "DIL_Dili"
    BWN_BandarSeriBegawan = "BWN_BandarSeriBegawan"
    PEK_Beijing = "PEK_Beijing"
    KMG_Kunming = "KMG_Kunming"
    NRT_Tokyo = "NRT_Tokyo"
    ICN_Seoul = "ICN_Seoul"
    Other = "Other"
    Sadao_BukitKayuHitam = "Sadao_BukitKayuHitam"


class DataCategory(StrEnum):
    """Data categories that consent and bilateral agreements are written in."""

    CaseCore = "CaseCore"
    AssistanceNeeds = "AssistanceNeeds"
    PersonalIdentity = "PersonalIdentity"
    Health = "Health"
    Legal = "Legal"


class DeclineReason(StrEnum):
    """Why a referral was declined."""

    NationalityNotVerified = "NationalityNotVerified"
    IdentityNotVerified = "IdentityNotVerified"
    FamilyNotTraced = "FamilyNotTraced"
    HomeNotSafe = "HomeNotSafe"
    PersonDoesNotWishToReturn = "PersonDoesNotWishToReturn"
    InsufficientInformation = "InsufficientInformation"
    NotCompetent = "NotCompetent"
    Other = "Other"


class DocumentType(StrEnum):
    """Documents handed over, or identity documents held."""

    TravelDocument = "TravelDocument"
    CertificateOfIdentity = "CertificateOfIdentity"
    NationalIdentityCard = "NationalIdentityCard"
    BirthCertificate = "BirthCertificate"
    VictimIdentificationCertificate = "VictimIdentificationCertificate"
    CaseSummary = "CaseSummary"
    MedicalRecord = "MedicalRecord"
    CourtDocument = "CourtDocument"
    Other = "Other"


class EscortType(StrEnum):
    """Who escorts the person on return."""

    SocialWorker = "SocialWorker"
    LawEnforcement = "LawEnforcement"
    ImmigrationOfficer = "ImmigrationOfficer"
    ChildProtectionOfficer = "ChildProtectionOfficer"
    InternationalOrganisationStaff = "InternationalOrganisationStaff"
    NGOStaff = "NGOStaff"
    MedicalStaff = "MedicalStaff"
    FamilyMember = "FamilyMember"
    Unescorted = "Unescorted"


class EventType(StrEnum):
    """The kind of event an envelope carries; each names one event record. Unknown: a type this reader does not know (newer writer)."""

    VictimIdentified = "VictimIdentified"
    ReferralRequested = "ReferralRequested"
    ReferralAcknowledged = "ReferralAcknowledged"
    ReferralAnswered = "ReferralAnswered"
    ReturnNoticeIssued = "ReturnNoticeIssued"
    HandoverCompleted = "HandoverCompleted"
    FollowUpRecorded = "FollowUpRecorded"
    CaseClosed = "CaseClosed"
    ConsentChanged = "ConsentChanged"
    Unknown = "Unknown"
    TransitPartyChanged = "TransitPartyChanged"
    EventCorrected = "EventCorrected"
    EventRetracted = "EventRetracted"


class ExploitationType(StrEnum):
    """Form of exploitation. HTCDS vic_TypeOfExploitation (ForcedLabour, SexualExploitation, Other) extended with the forms seen in the region; 'Both' is expressed by listing several."""

    SexualExploitation = "SexualExploitation"
    ForcedLabour = "ForcedLabour"
    ForcedMarriage = "ForcedMarriage"
    ForcedCriminality = "ForcedCriminality"
    Begging = "Begging"
    BabyTrafficking = "BabyTrafficking"
    Surrogacy = "Surrogacy"
    OrganRemoval = "OrganRemoval"
    Other = "Other"


class FollowUpDomain(StrEnum):
    """Reintegration domains assessed at follow-up."""

    Individual = "Individual"
    Family = "Family"
    Community = "Community"
    Economic = "Economic"
    LegalRights = "LegalRights"


class Gender(StrEnum):
    """HTCDS prs_Gender."""

    Male = "Male"
    Female = "Female"
    TransgenderNonConforming = "TransgenderNonConforming"
    Unknown = "Unknown"


class LabourSector(StrEnum):
    """HTCDS vic_TypeOfLabourExploitation, with Fishing (at sea) and OnlineScamOperations (cyberscam compounds) made explicit."""

    Agriculture = "Agriculture"
    Aquafarming = "Aquafarming"
    Fishing = "Fishing"
    Begging = "Begging"
    Construction = "Construction"
    DomesticWork = "DomesticWork"
    Hospitality = "Hospitality"
    IllicitActivities = "IllicitActivities"
    OnlineScamOperations = "OnlineScamOperations"
    Manufacturing = "Manufacturing"
    MiningOrDrilling = "MiningOrDrilling"
    Peddling = "Peddling"
    Transportation = "Transportation"
    Other = "Other"


class LanguageCode(StrEnum):
    """ISO 639-1 where it exists, ISO 639-2/3 otherwise (fil, tet, shn, kar, hmn). und: undetermined."""

    en = "en"
    th = "th"
    my = "my"
    km = "km"
    lo = "lo"
    vi = "vi"
    ms = "ms"
    id = "id"
    fil = "fil"
    tl = "tl"
    zh = "zh"
    ja = "ja"
    ko = "ko"
    tet = "tet"
    pt = "pt"
    shn = "shn"
    kar = "kar"
    hmn = "hmn"
    bn = "bn"
    hi = "hi"
    ne = "ne"
    ta = "ta"
    si = "si"
    ur = "ur"
    ar = "ar"
    und = "und"


class MethodOfControl(StrEnum):
    """HTCDS vic_MethodsOfControl."""

    DebtBondage = "DebtBondage"
    TakesEarnings = "TakesEarnings"
    RestrictsFinancialAccess = "RestrictsFinancialAccess"
    Threats = "Threats"
    PsychologicalAbuse = "PsychologicalAbuse"
    PhysicalAbuse = "PhysicalAbuse"
    SexualAbuse = "SexualAbuse"
    FalsePromises = "FalsePromises"
    PsychoactiveSubstances = "PsychoactiveSubstances"
    RestrictsMovement = "RestrictsMovement"
    RestrictsMedicalCare = "RestrictsMedicalCare"
    ExcessiveWorkingHours = "ExcessiveWorkingHours"
    UsesChildren = "UsesChildren"
    ThreatOfLawEnforcement = "ThreatOfLawEnforcement"
    WithholdsNecessities = "WithholdsNecessities"
    WithholdsDocuments = "WithholdsDocuments"
    Other = "Other"


class Need(StrEnum):
    """Assistance needs and special needs (also used for the special needs on return)."""

    Shelter = "Shelter"
    MedicalCare = "MedicalCare"
    MentalHealth = "MentalHealth"
    PsychosocialSupport = "PsychosocialSupport"
    LegalAssistance = "LegalAssistance"
    Interpretation = "Interpretation"
    ChildProtection = "ChildProtection"
    FamilyTracing = "FamilyTracing"
    Documentation = "Documentation"
    FinancialSupport = "FinancialSupport"
    Education = "Education"
    Livelihood = "Livelihood"
    SafeReturn = "SafeReturn"
    Security = "Security"
    Disability = "Disability"
    Pregnancy = "Pregnancy"
    Other = "Other"


class RecruitmentMethod(StrEnum):
    """HTCDS vic_MethodOfRecruitment."""

    Abduction = "Abduction"
    EducationalFacility = "EducationalFacility"
    Familial = "Familial"
    Internet = "Internet"
    InternationalMarriageBroker = "InternationalMarriageBroker"
    IntimatePartner = "IntimatePartner"
    JobOffer = "JobOffer"
    PosingAsBenefactor = "PosingAsBenefactor"
    PublicArea = "PublicArea"
    OfferOfAccommodation = "OfferOfAccommodation"
    Shelter = "Shelter"
    Smuggling = "Smuggling"
    Work = "Work"
    Other = "Other"
    Unknown = "Unknown"


class ReferralDecision(StrEnum):
    """The partner's answer to a referral."""

    Accepted = "Accepted"
    Declined = "Declined"


class ReferralPurpose(StrEnum):
    """What the partner focal point is asked to do."""

    VerifyNationalityIdentity = "VerifyNationalityIdentity"
    TraceFamily = "TraceFamily"
    AssessHomeForSafeReturn = "AssessHomeForSafeReturn"
    PrepareServices = "PrepareServices"
    RemoteParticipationInProceedings = "RemoteParticipationInProceedings"
    Other = "Other"


class ReintegrationStatus(StrEnum):
    """Status of the person at a follow-up."""

    Reintegrating = "Reintegrating"
    AtRisk = "AtRisk"
    LostContact = "LostContact"
    ReTrafficked = "ReTrafficked"


class RetractionReason(StrEnum):
    """Why a country retracts an event it sent."""

    SentInError = "SentInError"
    WrongCase = "WrongCase"
    WrongPerson = "WrongPerson"
    Duplicate = "Duplicate"
    Other = "Other"


class ServiceType(StrEnum):
    """Services requested from, or prepared by, the partner country."""

    Reception = "Reception"
    Shelter = "Shelter"
    MedicalCare = "MedicalCare"
    PsychosocialSupport = "PsychosocialSupport"
    LegalAssistance = "LegalAssistance"
    FamilyReunification = "FamilyReunification"
    ChildProtection = "ChildProtection"
    Education = "Education"
    VocationalTraining = "VocationalTraining"
    LivelihoodSupport = "LivelihoodSupport"
    CaseManagement = "CaseManagement"
    Interpretation = "Interpretation"
    Other = "Other"


class TraffickingStatus(StrEnum):
    """HTCDS vic_TraffickingStatus. PossibleVictimOfTrafficking: presumed victim (reasonable grounds), entitled to assistance at once; ActualVictimOfTrafficking: formally identified by the competent authority."""

    PossibleVictimOfTrafficking = "PossibleVictimOfTrafficking"
    ActualVictimOfTrafficking = "ActualVictimOfTrafficking"


class TransitChange(StrEnum):
    """Whether a transit country joins a case or leaves it."""

    Added = "Added"
    Removed = "Removed"


class TravelMode(StrEnum):
    """How the person travels home."""

    Land = "Land"
    Air = "Air"
    Sea = "Sea"
    River = "River"


class Urgency(StrEnum):
    """Urgency of a referral. Emergency: risk to life or safety."""

    Routine = "Routine"
    Urgent = "Urgent"
    Emergency = "Emergency"


class AlertLevel(StrEnum):
    """How urgent an obligation is."""

    DueSoon = "DueSoon"
    Overdue = "Overdue"


class ObligationKind(StrEnum):
    """What is owed on a case."""

    AcknowledgeReferral = "AcknowledgeReferral"
    AnswerReferral = "AnswerReferral"
    IssueReturnNotice = "IssueReturnNotice"
    GiveReturnNoticeInTime = "GiveReturnNoticeInTime"
    ConfirmHandover = "ConfirmHandover"
    RecordFollowUp = "RecordFollowUp"
    DecideBeforeReflectionEnds = "DecideBeforeReflectionEnds"
    Other = "Other"
    EscortInTransit = "EscortInTransit"


class ReceiptStatus(StrEnum):
    """What the hub did with a submitted event."""

    Accepted = "Accepted"
    Duplicate = "Duplicate"
    Rejected = "Rejected"


class Envelope(ContractModel):
    """What every event carries: identity, case, time and the route. The routing layer reads only this."""

    avro_name: ClassVar[str] = "lintas.Envelope"

    event_id: UUID = Field(description="Unique id of this event, set by the publishing system; a resubmission keeps it.")
    event_type: EventType
    schema_version: Int32 = Field(description="Version of the Lintas contract the writer used (the folder schemas/avro/v<N>); 2 for the sectioned, sealed, signed wire format.")
    case_id: StrictStr = Field(description="Cross-border case id, stable for the life of the case: '<CC>-<local reference>' of the country that opened it.")
    occurred_at: TimestampMillis = Field(description="When the fact happened (event time, UTC).")
    recorded_at: TimestampMillis = Field(description="When the national system recorded it (UTC).")
    source_country: CountryCode
    source_agency: StrictStr = Field(description="Directory id of the publishing agency, e.g. 'TH-DSDW'.")
    destination_country: CountryCode | None = Field(default=None, description="Partner country the event is addressed to; null when it stays national.")
    correlation_id: UUID | None = Field(default=None, description="Groups the events of one exchange (e.g. a referral and its answers).")
    causation_id: UUID | None = Field(default=None, description="The event this one answers or follows from.")


class FieldChange(ContractModel):
    """A corrected value of one top-level field of an event, as the contract's JSON (codes as symbols, dates ISO)."""

    avro_name: ClassVar[str] = "lintas.codes.FieldChange"

    field: StrictStr = Field(description="The name of the target event's field, e.g. needs.")
    value_json: StrictStr = Field(description="The field's new value as JSON.")


class RouteLeg(ContractModel):
    """One leg of the route home: from one country to the next, at a crossing point."""

    avro_name: ClassVar[str] = "lintas.codes.RouteLeg"

    from_country: CountryCode
    to_country: CountryCode
    crossing_point: CrossingPoint | None = Field(default=None)
    travel_mode: TravelMode | None = Field(default=None)
    planned_on: date | None = Field(default=None)


class CaseClosed(ContractModel):
    """The case is closed in the publishing country."""

    avro_name: ClassVar[str] = "lintas.events.CaseClosed"

    envelope: Envelope
    status: CaseStatus = Field(description="Closed or ClosedReferred.")
    reason: ClosureReason
    closed_on: date


class ConsentChanged(ContractModel):
    """The person changed what may be shared. An empty scope withdraws consent: sharing stops and personal data must become unreadable."""

    avro_name: ClassVar[str] = "lintas.events.ConsentChanged"

    envelope: Envelope
    consent_scope: tuple[DataCategory, ...]
    changed_on: date


class EventCorrected(ContractModel):
    """The sender corrects fields of an event it sent; each change is carried with the data category of its field, so minimisation withholds it as it would the field."""

    avro_name: ClassVar[str] = "lintas.events.EventCorrected"

    envelope: Envelope
    target_event_id: UUID = Field(description="The event corrected.")
    core_changes: tuple[FieldChange, ...] = Field(default=(), description="Changes to case-core fields.")
    needs_changes: tuple[FieldChange, ...] = Field(default=(), description="Changes to assistance-needs fields.")
    legal_changes: tuple[FieldChange, ...] = Field(default=(), description="Changes to legal fields.")
    health_changes: tuple[FieldChange, ...] = Field(default=(), description="Changes to health fields.")
    personal_changes: tuple[FieldChange, ...] = Field(default=(), description="Changes to the person's identity (sealed on the wire).")


class EventRetracted(ContractModel):
    """The sender retracts an event it sent in error; projections undo its effect."""

    avro_name: ClassVar[str] = "lintas.events.EventRetracted"

    envelope: Envelope
    target_event_id: UUID = Field(description="The event retracted.")
    reason: RetractionReason


class FollowUpRecorded(ContractModel):
    """A reintegration follow-up after return."""

    avro_name: ClassVar[str] = "lintas.events.FollowUpRecorded"

    envelope: Envelope
    months_since_return: Int32 = Field(description="Scheduled milestone: typically 3, 6 or 12.")
    assessed_on: date
    domains_assessed: tuple[FollowUpDomain, ...]
    status: ReintegrationStatus
    needs: tuple[Need, ...] = Field(default=())


class IdentityDocument(ContractModel):

    avro_name: ClassVar[str] = "lintas.personal.IdentityDocument"

    document_type: DocumentType
    number: StrictStr
    issuing_country: CountryCode


class Contact(ContractModel):

    avro_name: ClassVar[str] = "lintas.personal.Contact"

    kind: ContactKind
    value: StrictStr


class PersonalDetails(ContractModel):
    """Everything that identifies the person. Kept in one record so that it can be encrypted, withheld or shredded whole."""

    avro_name: ClassVar[str] = "lintas.personal.PersonalDetails"

    given_names: StrictStr
    family_name: StrictStr | None = Field(default=None)
    name_in_native_script: StrictStr | None = Field(default=None)
    date_of_birth: date | None = Field(default=None)
    place_of_birth: StrictStr | None = Field(default=None)
    documents: tuple[IdentityDocument, ...] = Field(default=())
    contacts: tuple[Contact, ...] = Field(default=())
    home_address: StrictStr | None = Field(default=None)
    family_contact: StrictStr | None = Field(default=None)


class HandoverCompleted(ContractModel):
    """The person was physically handed over to the receiving agency."""

    avro_name: ClassVar[str] = "lintas.events.HandoverCompleted"

    envelope: Envelope
    handed_over_on: date
    crossing_point: CrossingPoint
    receiving_agency: StrictStr
    receiving_agency_type: AgencyType
    documents_handed_over: tuple[DocumentType, ...] = Field(default=())
    personal: PersonalDetails | None = Field(default=None, description="Personal data; omitted unless needed and granted.")


class ReferralAcknowledged(ContractModel):
    """The partner's focal point received a referral and is working on it."""

    avro_name: ClassVar[str] = "lintas.events.ReferralAcknowledged"

    envelope: Envelope
    receiving_agency: StrictStr = Field(description="Directory id of the agency that took the referral.")
    expected_answer_by: date | None = Field(default=None)


class ReferralAnswered(ContractModel):
    """The partner accepted or declined a referral."""

    avro_name: ClassVar[str] = "lintas.events.ReferralAnswered"

    envelope: Envelope
    decision: ReferralDecision
    decline_reason: DeclineReason | None = Field(default=None, description="Required when the decision is Declined.")
    services_offered: tuple[ServiceType, ...] = Field(default=())
    nationality_verified: StrictBool | None = Field(default=None)


class ReferralRequested(ContractModel):
    """The identifying country asks a partner's focal point to act on a case."""

    avro_name: ClassVar[str] = "lintas.events.ReferralRequested"

    envelope: Envelope
    purposes: tuple[ReferralPurpose, ...]
    services_requested: tuple[ServiceType, ...] = Field(default=())
    urgency: Urgency
    respond_by: date
    note_code: StrictStr | None = Field(default=None, description="Optional code of a standard note from the corridor's SOP; free text is not exchanged.")
    personal: PersonalDetails | None = Field(default=None, description="Personal data; omitted unless needed and granted.")


class ReturnNoticeIssued(ContractModel):
    """Advance notice of a planned return, so the home country can prepare the reception."""

    avro_name: ClassVar[str] = "lintas.events.ReturnNoticeIssued"

    envelope: Envelope
    planned_return_on: date
    crossing_point: CrossingPoint
    travel_mode: TravelMode
    escorts: tuple[EscortType, ...] = Field(default=())
    special_needs: tuple[Need, ...] = Field(default=())
    legs: tuple[RouteLeg, ...] = Field(default=(), description="The route home as legs with their crossing points, through any transit country; empty for a direct return.")
    personal: PersonalDetails | None = Field(default=None, description="Personal data; omitted unless needed and granted.")


class TransitPartyChanged(ContractModel):
    """A party to a case adds a transit country the person crosses on the way home, or removes it."""

    avro_name: ClassVar[str] = "lintas.events.TransitPartyChanged"

    envelope: Envelope
    transit_country: CountryCode
    transit_change: TransitChange
    crossing_points: tuple[CrossingPoint, ...] = Field(default=(), description="Where the person enters and leaves the transit country.")


class VictimIdentified(ContractModel):
    """A first responder or competent authority identified a (presumed) victim of trafficking."""

    avro_name: ClassVar[str] = "lintas.events.VictimIdentified"

    envelope: Envelope
    status: TraffickingStatus
    identified_on: date
    identifying_agency_type: AgencyType
    exploitation_types: tuple[ExploitationType, ...]
    labour_sectors: tuple[LabourSector, ...] = Field(default=())
    methods_of_control: tuple[MethodOfControl, ...] = Field(default=())
    recruitment_methods: tuple[RecruitmentMethod, ...] = Field(default=())
    sex: Gender
    age_band: AgeBand
    nationality: CountryCode
    languages: tuple[LanguageCode, ...]
    needs: tuple[Need, ...] = Field(default=())
    reflection_period_start: date | None = Field(default=None, description="Start of the reflection and recovery period; null when none was granted yet.")
    reflection_period_days: Int32 | None = Field(default=None, description="Length of the reflection and recovery period in days (e.g. Thailand 45 = 15 + 30).")
    consent_scope: tuple[DataCategory, ...] = Field(description="Data categories the person consented to share with partner countries.")
    personal: PersonalDetails | None = Field(default=None, description="Personal data; omitted unless needed and granted.")


class Alert(ContractModel):
    """An obligation on a case that falls due soon or is overdue, sent to the focal point that must act and to the one waiting. The id is stable: the same obligation at the same level is never alerted twice."""

    avro_name: ClassVar[str] = "lintas.hub.Alert"

    alert_id: StrictStr
    obligation_id: StrictStr
    kind: ObligationKind
    level: AlertLevel
    case_id: StrictStr
    due: TimestampMillis
    owner: CountryCode = Field(description="The focal point that must act.")
    waiting: CountryCode = Field(description="The focal point waiting for it.")
    detail: StrictStr | None = Field(default=None)
    raised_at: TimestampMillis


class Receipt(ContractModel):
    """The hub's answer to the national system that published an event: accepted (and routed), a duplicate of one already accepted, or rejected with a reason."""

    avro_name: ClassVar[str] = "lintas.hub.Receipt"

    status: ReceiptStatus
    reason_code: StrictStr | None = Field(default=None, description="Stable machine-readable reason when not plainly accepted, e.g. out_of_sequence.")
    message: StrictStr = Field(description="Human-readable explanation, naming the field at fault.")
    event_id: UUID | None = Field(default=None)
    event_type: EventType | None = Field(default=None)
    case_id: StrictStr | None = Field(default=None)
    source_topic: StrictStr
    source_partition: Int32
    source_offset: Int64
    routed_to: tuple[CountryCode, ...] = Field(default=(), description="Countries whose focal points received the event.")
    withheld: tuple[StrictStr, ...] = Field(default=(), description="Fields removed because the agreement or the person's consent does not grant them.")


CONTRACT_VERSION = 2


Event = CaseClosed | ConsentChanged | EventCorrected | EventRetracted | FollowUpRecorded | HandoverCompleted | ReferralAcknowledged | ReferralAnswered | ReferralRequested | ReturnNoticeIssued | TransitPartyChanged | VictimIdentified

EVENT_MODELS: dict[str, type[Event]] = {
    "CaseClosed": CaseClosed,
    "ConsentChanged": ConsentChanged,
    "EventCorrected": EventCorrected,
    "EventRetracted": EventRetracted,
    "FollowUpRecorded": FollowUpRecorded,
    "HandoverCompleted": HandoverCompleted,
    "ReferralAcknowledged": ReferralAcknowledged,
    "ReferralAnswered": ReferralAnswered,
    "ReferralRequested": ReferralRequested,
    "ReturnNoticeIssued": ReturnNoticeIssued,
    "TransitPartyChanged": TransitPartyChanged,
    "VictimIdentified": VictimIdentified,
}
