"""Case state: a pure fold over a case's events, ``evolve(state, event) -> state``.

Idempotent (an event id already applied changes nothing) and per case, so that events of different
cases may arrive in any order and a replay from offset 0 equals the live state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import assert_never

from pydantic import TypeAdapter

from hub.contract import (
    EVENT_MODELS,
    AgeBand,
    CaseClosed,
    ConsentChanged,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DeclineReason,
    EventCorrected,
    EventRetracted,
    ExploitationType,
    FollowUpRecorded,
    Gender,
    HandoverCompleted,
    LabourSector,
    ReferralAcknowledged,
    ReferralAnswered,
    ReferralDecision,
    ReferralRequested,
    ReintegrationStatus,
    ReturnNoticeIssued,
    RouteLeg,
    TraffickingStatus,
    TransitChange,
    TransitPartyChanged,
    VictimIdentified,
)
from hub.events import CHILD_BANDS, Event


class Stage(StrEnum):
    IDENTIFIED = "identified"
    REFERRED = "referred"
    ACKNOWLEDGED = "acknowledged"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    RETURN_NOTIFIED = "return_notified"
    HANDED_OVER = "handed_over"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class FollowUp:
    months: int
    assessed_on: date
    status: ReintegrationStatus
    #: the FollowUpRecorded it came from (0: not known), so a retraction can take it back
    event_id: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Amendment:
    """A correction or retraction the case received: shown on the agenda of the next meeting."""

    event_id: int
    target_event_id: int
    kind: str  # "corrected" or "retracted"
    fields: tuple[str, ...]
    recorded_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class CaseState:
    """Everything the read models need to know about one case; no personal data.

    A slotted dataclass rather than a pydantic model: a region holds hundreds of thousands of cases
    in memory, and this is about a third of the size."""

    case_id: str
    host: CountryCode  # where the person was identified
    home: CountryCode | None = None  # the partner country, usually the country of origin
    stage: Stage = Stage.IDENTIFIED
    status: TraffickingStatus = TraffickingStatus.PossibleVictimOfTrafficking
    identified_at: datetime
    identified_on: date
    sex: Gender = Gender.Unknown
    age_band: AgeBand = AgeBand.UncertainPresumedChild
    nationality: CountryCode = CountryCode.ZZ
    exploitation_types: tuple[ExploitationType, ...] = ()
    consent: frozenset[DataCategory] = frozenset()
    reflection_start: date | None = None
    reflection_days: int | None = None
    referral_requested_at: datetime | None = None
    respond_by: date | None = None
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    decision: ReferralDecision | None = None
    decline_reason: DeclineReason | None = None
    return_notice_at: datetime | None = None
    planned_return_on: date | None = None
    crossing_point: CrossingPoint | None = None
    handed_over_on: date | None = None
    follow_ups: tuple[FollowUp, ...] = ()
    closed_by: frozenset[CountryCode] = frozenset()
    closed_on: date | None = None
    labour_sectors: tuple[LabourSector, ...] = ()
    #: transit countries the person crosses on the way home, and the route as legs
    transit: frozenset[CountryCode] = frozenset()
    legs: tuple[RouteLeg, ...] = ()
    #: the events whose facts the case holds, by role, so a correction or retraction finds them
    milestones: tuple[tuple[str, int], ...] = ()
    amendments: tuple[Amendment, ...] = ()
    last_event_at: datetime
    #: ids of the events applied (as 128-bit integers: half the memory of their text), so that
    #: applying one twice changes nothing
    applied: frozenset[int] = frozenset()

    def to_json(self) -> bytes:
        return _CASE_STATE.dump_json(self)

    @staticmethod
    def from_json(data: bytes) -> CaseState:
        return _CASE_STATE.validate_json(data)

    @property
    def child(self) -> bool:
        """A child, or presumed one because the age is uncertain: child protection is involved."""
        return self.age_band in CHILD_BANDS

    @property
    def presumed(self) -> bool:
        return self.status == TraffickingStatus.PossibleVictimOfTrafficking

    @property
    def reflection_ends(self) -> date | None:
        """The last day of the reflection and recovery period: its start is day 1 (Thailand:
        identified on 6 January, 45 days, so the period's last day is 19 February)."""
        if self.reflection_start is None or self.reflection_days is None:
            return None
        return self.reflection_start + timedelta(days=self.reflection_days - 1)

    @property
    def latest_follow_up(self) -> FollowUp | None:
        return max(self.follow_ups, key=lambda f: f.assessed_on, default=None)

    @property
    def next_action_by(self) -> CountryCode | None:
        """The country that holds the next step of the case."""
        match self.stage:
            case Stage.IDENTIFIED | Stage.ACCEPTED | Stage.DECLINED:
                return self.host
            case Stage.REFERRED | Stage.ACKNOWLEDGED | Stage.HANDED_OVER:
                return self.home
            case Stage.RETURN_NOTIFIED:
                return self.home  # the receiving side confirms the handover
            case Stage.CLOSED:
                return None
            case _:
                assert_never(self.stage)


_CASE_STATE: TypeAdapter[CaseState] = TypeAdapter(CaseState)


def _opened(event: VictimIdentified) -> CaseState:
    envelope = event.envelope
    return CaseState(
        case_id=envelope.case_id,
        host=envelope.source_country,
        home=envelope.destination_country,
        status=event.status,
        identified_at=envelope.occurred_at,
        identified_on=event.identified_on,
        sex=event.sex,
        age_band=event.age_band,
        nationality=event.nationality,
        exploitation_types=event.exploitation_types,
        consent=frozenset(event.consent_scope),
        reflection_start=event.reflection_period_start,
        reflection_days=event.reflection_period_days,
        labour_sectors=event.labour_sectors,
        milestones=(("VictimIdentified", envelope.event_id.int),),
        last_event_at=envelope.occurred_at,
        applied=frozenset({envelope.event_id.int}),
    )


def _milestone(state: CaseState, kind: str, event_id: int) -> tuple[tuple[str, int], ...]:
    return (*((k, i) for k, i in state.milestones if k != kind), (kind, event_id))


def _kind_of(state: CaseState, event_id: int) -> str | None:
    for kind, known in state.milestones:
        if known == event_id:
            return kind
    if any(follow_up.event_id == event_id for follow_up in state.follow_ups):
        return "FollowUpRecorded"
    return None


#: The case facts each corrected field of an event sets: (event type, field) -> CaseState field.
_CORRECTED: dict[tuple[str, str], str] = {
    ("VictimIdentified", "status"): "status",
    ("VictimIdentified", "identified_on"): "identified_on",
    ("VictimIdentified", "sex"): "sex",
    ("VictimIdentified", "age_band"): "age_band",
    ("VictimIdentified", "nationality"): "nationality",
    ("VictimIdentified", "exploitation_types"): "exploitation_types",
    ("VictimIdentified", "labour_sectors"): "labour_sectors",
    ("VictimIdentified", "reflection_period_start"): "reflection_start",
    ("VictimIdentified", "reflection_period_days"): "reflection_days",
    ("ReferralRequested", "respond_by"): "respond_by",
    ("ReferralAnswered", "decline_reason"): "decline_reason",
    ("ReturnNoticeIssued", "planned_return_on"): "planned_return_on",
    ("ReturnNoticeIssued", "crossing_point"): "crossing_point",
    ("ReturnNoticeIssued", "legs"): "legs",
    ("HandoverCompleted", "handed_over_on"): "handed_over_on",
    ("CaseClosed", "closed_on"): "closed_on",
}


def _corrected(state: CaseState, event: EventCorrected) -> dict[str, object]:
    """The case facts ``event`` corrects (those of its target the case holds)."""
    target = event.target_event_id.int
    kind = _kind_of(state, target)
    changes: dict[str, object] = {}
    if kind is None:
        return changes
    model = EVENT_MODELS[kind]
    for change in (
        *event.core_changes,
        *event.needs_changes,
        *event.legal_changes,
        *event.health_changes,
        *event.personal_changes,
    ):
        field = model.model_fields.get(change.field)
        if field is None or field.annotation is None:
            continue
        try:
            value = TypeAdapter(field.annotation).validate_json(change.value_json)
        except ValueError:
            continue  # a value the target's field cannot take changes nothing
        if kind == "FollowUpRecorded" and change.field in ("assessed_on", "status"):
            changes["follow_ups"] = tuple(
                replace(f, **{change.field: value}) if f.event_id == target else f
                for f in changes.get("follow_ups", state.follow_ups)  # type: ignore[attr-defined]
            )
            continue
        name = _CORRECTED.get((kind, change.field))
        if name is not None:
            changes[name] = value
    return changes


def _retracted(state: CaseState, target: int) -> dict[str, object]:
    """The case with the effect of its event ``target`` undone, for the events a case's stage
    rests on (an identification is not retracted: the case is closed instead)."""
    kind = _kind_of(state, target)
    others = tuple((k, i) for k, i in state.milestones if i != target)
    match kind:
        case "ReferralAnswered":
            stage = Stage.ACKNOWLEDGED if state.acknowledged_at is not None else Stage.REFERRED
            return {
                "stage": stage,
                "answered_at": None,
                "decision": None,
                "decline_reason": None,
                "milestones": others,
            }
        case "ReturnNoticeIssued":
            return {
                "stage": Stage.ACCEPTED,
                "return_notice_at": None,
                "planned_return_on": None,
                "crossing_point": None,
                "legs": (),
                "milestones": others,
            }
        case "HandoverCompleted":
            stage = Stage.RETURN_NOTIFIED if state.return_notice_at is not None else Stage.ACCEPTED
            return {"stage": stage, "handed_over_on": None, "milestones": others}
        case "ReferralAcknowledged":
            stage = Stage.REFERRED if state.stage == Stage.ACKNOWLEDGED else state.stage
            return {"stage": stage, "acknowledged_at": None, "milestones": others}
        case "FollowUpRecorded":
            return {"follow_ups": tuple(f for f in state.follow_ups if f.event_id != target)}
        case "CaseClosed":
            return {
                "closed_by": frozenset(),
                "closed_on": None,
                "milestones": others,
                **(
                    {"stage": Stage.HANDED_OVER}
                    if state.stage == Stage.CLOSED and state.handed_over_on
                    else {"stage": Stage.ACCEPTED}
                    if state.stage == Stage.CLOSED
                    else {}
                ),
            }
        case _:
            return {}


def evolve(state: CaseState | None, event: Event) -> CaseState | None:
    """The case after ``event``. A case exists from its identification on; events that came before
    it (the router rejects those) leave it absent."""
    event_id = event.envelope.event_id.int
    if state is None:
        return _opened(event) if isinstance(event, VictimIdentified) else None
    if event_id in state.applied:
        return state
    at = event.envelope.occurred_at
    changes: dict[str, object] = {
        "applied": state.applied | {event_id},
        "last_event_at": max(state.last_event_at, at),
    }
    match event:
        case VictimIdentified():
            changes |= {
                "labour_sectors": event.labour_sectors,
                "status": event.status,
                "sex": event.sex,
                "age_band": event.age_band,
                "nationality": event.nationality,
                "exploitation_types": event.exploitation_types,
                "consent": frozenset(event.consent_scope),
                "reflection_start": event.reflection_period_start,
                "reflection_days": event.reflection_period_days,
                "home": state.home or event.envelope.destination_country,
            }
        case ReferralRequested():
            changes |= {
                "stage": Stage.REFERRED,
                "referral_requested_at": at,
                "respond_by": event.respond_by,
                "milestones": _milestone(state, "ReferralRequested", event_id),
                "acknowledged_at": None,
                "answered_at": None,
                "decision": None,
                "decline_reason": None,
                "home": state.home or event.envelope.destination_country,
            }
        case ReferralAcknowledged():
            changes |= {
                "acknowledged_at": at,
                "milestones": _milestone(state, "ReferralAcknowledged", event_id),
            }
            if state.stage == Stage.REFERRED:
                changes["stage"] = Stage.ACKNOWLEDGED
        case ReferralAnswered():
            accepted = event.decision == ReferralDecision.Accepted
            changes |= {
                "milestones": _milestone(state, "ReferralAnswered", event_id),
                "answered_at": at,
                "decision": event.decision,
                "decline_reason": event.decline_reason,
                "stage": Stage.ACCEPTED if accepted else Stage.DECLINED,
            }
        case ReturnNoticeIssued():
            changes |= {
                "stage": Stage.RETURN_NOTIFIED,
                "return_notice_at": at,
                "planned_return_on": event.planned_return_on,
                "crossing_point": event.crossing_point,
                "legs": event.legs,
                "milestones": _milestone(state, "ReturnNoticeIssued", event_id),
            }
        case HandoverCompleted():
            changes |= {
                "stage": Stage.HANDED_OVER,
                "handed_over_on": event.handed_over_on,
                "milestones": _milestone(state, "HandoverCompleted", event_id),
            }
        case FollowUpRecorded():
            others = tuple(f for f in state.follow_ups if f.months != event.months_since_return)
            follow_up = FollowUp(
                months=event.months_since_return,
                assessed_on=event.assessed_on,
                status=event.status,
                event_id=event_id,
            )
            changes["follow_ups"] = tuple(sorted((*others, follow_up), key=lambda f: f.months))
        case CaseClosed():
            closed_by = state.closed_by | {event.envelope.source_country}
            changes |= {
                "closed_by": closed_by,
                "closed_on": event.closed_on,
                "milestones": _milestone(state, "CaseClosed", event_id),
            }
            if state.home is None or closed_by >= {state.host, state.home}:
                changes["stage"] = Stage.CLOSED
        case ConsentChanged():
            changes["consent"] = frozenset(event.consent_scope)
        case TransitPartyChanged():
            country = event.transit_country
            added = event.transit_change == TransitChange.Added
            changes["transit"] = state.transit | {country} if added else state.transit - {country}
        case EventCorrected():
            changes |= _corrected(state, event)
            fields = tuple(
                change.field
                for change in (
                    *event.core_changes,
                    *event.needs_changes,
                    *event.legal_changes,
                    *event.health_changes,
                    *event.personal_changes,
                )
            )
            amendment = Amendment(
                event_id=event_id,
                target_event_id=event.target_event_id.int,
                kind="corrected",
                fields=fields,
                recorded_at=event.envelope.recorded_at,
            )
            changes["amendments"] = (*state.amendments, amendment)
        case EventRetracted():
            changes |= _retracted(state, event.target_event_id.int)
            amendment = Amendment(
                event_id=event_id,
                target_event_id=event.target_event_id.int,
                kind="retracted",
                fields=(),
                recorded_at=event.envelope.recorded_at,
            )
            changes["amendments"] = (*state.amendments, amendment)
        case _:
            assert_never(event)
    return replace(state, **changes)  # type: ignore[arg-type]


def fold(events: Iterable[Event], states: Mapping[str, CaseState] | None = None) -> dict[str, CaseState]:
    """Every case after ``events``, starting from ``states``."""
    result = dict(states or {})
    for event in events:
        case_id = event.envelope.case_id
        new = evolve(result.get(case_id), event)
        if new is not None:
            result[case_id] = new
    return result


def as_of(events: Iterable[Event], moment: datetime) -> dict[str, CaseState]:
    """The cases as they stood at ``moment`` (event time): for a dispute at a CMM."""
    return fold(event for event in events if event.envelope.occurred_at <= moment)
