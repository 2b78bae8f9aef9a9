"""Case state: a pure fold over a case's events, ``evolve(state, event) -> state``.

Idempotent (an event id already applied changes nothing) and per case, so that events of different
cases may arrive in any order and a replay from offset 0 equals the live state.

Corrections and retractions are compensating events: the state is the fold of the case's *effective*
events (each target replaced by its corrected version, retracted ones left out). A case keeps its
events (without personal data) for that; until its first amendment the fold is incremental, after it
the state is recomputed, so that where an amendment arrives among the case's events does not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, assert_never

from pydantic import TypeAdapter

from hub.contract import (
    EVENT_MODELS,
    AgeBand,
    AgencyType,
    CaseClosed,
    ConsentChanged,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DeclineReason,
    EventCorrected,
    EventRetracted,
    ExploitationType,
    FieldChange,
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
    #: the type of the event amended; None while the target has not arrived
    target_type: str | None = None


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
    #: the type of agency that identified the person (police, labour inspection, an NGO…)
    agency_type: AgencyType | None = None
    #: transit countries the person crosses on the way home, and the route as legs
    transit: frozenset[CountryCode] = frozenset()
    legs: tuple[RouteLeg, ...] = ()
    #: the corrections and retractions received, by time recorded (shown on the next agenda)
    amendments: tuple[Amendment, ...] = ()
    #: the identification itself was retracted: the case never was one (not counted, nothing due)
    void: bool = False
    last_event_at: datetime
    #: ids of the events applied (as 128-bit integers: half the memory of their text), so that
    #: applying one twice changes nothing
    applied: frozenset[int] = frozenset()
    #: the case's events as received, each as (event type, contract JSON without personal data):
    #: what a correction or retraction arriving later is applied to
    history: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> bytes:
        """Canonical JSON: sets sorted, so equal states give equal bytes (a set's iteration order
        depends on its insertion history, and the read store compares stored states)."""
        data = _CASE_STATE.dump_python(self, mode="json")
        for name in _SET_FIELDS:
            data[name] = sorted(data[name])
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

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


_SET_FIELDS = ("consent", "closed_by", "transit", "applied")
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
        agency_type=event.identifying_agency_type,
        last_event_at=envelope.occurred_at,
        applied=frozenset({envelope.event_id.int}),
    )


_Amending = EventCorrected | EventRetracted


def _stage_after_answer(state: CaseState) -> Stage:
    return Stage.ACKNOWLEDGED if state.acknowledged_at is not None else Stage.REFERRED


def _apply(state: CaseState, event: Event, **also: object) -> CaseState:
    """``state`` after one effective event (an amendment only counts as seen here), with ``also``
    replaced in the same copy (a case's copy is most of the fold's cost)."""
    event_id = event.envelope.event_id.int
    at = event.envelope.occurred_at
    changes: dict[str, object] = {
        "applied": state.applied | {event_id},
        "last_event_at": max(state.last_event_at, at),
        **also,
    }
    match event:
        case VictimIdentified():
            changes |= {
                "labour_sectors": event.labour_sectors,
                "agency_type": event.identifying_agency_type,
                "status": event.status,
                "identified_on": event.identified_on,
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
                "acknowledged_at": None,
                "answered_at": None,
                "decision": None,
                "decline_reason": None,
                "home": state.home or event.envelope.destination_country,
            }
        case ReferralAcknowledged():
            changes["acknowledged_at"] = at
            if state.stage == Stage.REFERRED:
                changes["stage"] = Stage.ACKNOWLEDGED
        case ReferralAnswered():
            accepted = event.decision == ReferralDecision.Accepted
            changes |= {
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
            }
        case HandoverCompleted():
            changes |= {"stage": Stage.HANDED_OVER, "handed_over_on": event.handed_over_on}
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
            changes |= {"closed_by": closed_by, "closed_on": event.closed_on}
            if state.home is None or closed_by >= {state.host, state.home}:
                changes["stage"] = Stage.CLOSED
        case ConsentChanged():
            changes["consent"] = frozenset(event.consent_scope)
        case TransitPartyChanged():
            country = event.transit_country
            added = event.transit_change == TransitChange.Added
            changes["transit"] = state.transit | {country} if added else state.transit - {country}
        case EventCorrected() | EventRetracted():
            pass  # they change which events are effective: see _recomputed
        case _:
            assert_never(event)
    return replace(state, **changes)  # type: ignore[arg-type]


# -- the case's history, and the effective events ---------------------------------------------------


def _without_personal(event: Event) -> Event:
    """What the case keeps of an event: projections hold no personal data."""
    update: dict[str, object] = {}
    if getattr(event, "personal", None) is not None:
        update["personal"] = None
    if isinstance(event, EventCorrected) and event.personal_changes:
        update["personal_changes"] = ()
    return event.model_copy(update=update) if update else event


def _entry(event: Event) -> tuple[str, str]:
    return type(event).__name__, _without_personal(event).model_dump_json()


def _loaded(entry: tuple[str, str]) -> Event:
    kind, text = entry
    return EVENT_MODELS[kind].model_validate_json(text)


def _changes(event: EventCorrected) -> tuple[FieldChange, ...]:
    return (
        *event.core_changes,
        *event.needs_changes,
        *event.legal_changes,
        *event.health_changes,
        *event.personal_changes,
    )


def _when(event: Event) -> tuple[datetime, int]:
    """The order amendments take effect in: as recorded, whatever order they arrived in."""
    return event.envelope.recorded_at, event.envelope.event_id.int


def corrected_event(event: Event, corrections: Iterable[EventCorrected]) -> Event:
    """``event`` with the values of ``corrections`` (later recorded wins). A change naming a field the
    event lacks, or a value the field cannot take, changes nothing (the router rejects those)."""
    model = type(event)
    values: dict[str, Any] = event.model_dump(mode="json")
    changed = False
    for correction in sorted(corrections, key=_when):
        for change in _changes(correction):
            if change.field not in model.model_fields or change.field == "envelope":
                continue
            try:
                candidate = {**values, change.field: json.loads(change.value_json)}
                model.model_validate(candidate)
            except ValueError:
                continue
            values, changed = candidate, True
    return model.model_validate(values) if changed else event


def effective_events(events: Iterable[Event]) -> list[Event]:
    """A case's events as they count: amendments applied to their targets, retracted events and the
    amendments themselves left out, in the order the case received the rest."""
    received = list(events)
    retracted = {e.target_event_id.int for e in received if isinstance(e, EventRetracted)}
    corrections: dict[int, list[EventCorrected]] = {}
    for event in received:
        if isinstance(event, EventCorrected):
            corrections.setdefault(event.target_event_id.int, []).append(event)
    seen: set[int] = set()
    effective: list[Event] = []
    for event in received:
        event_id = event.envelope.event_id.int
        if isinstance(event, _Amending) or event_id in retracted or event_id in seen:
            continue
        seen.add(event_id)
        effective.append(corrected_event(event, corrections.get(event_id, ())))
    return effective


def _amendment(event: EventCorrected | EventRetracted, types: Mapping[int, str]) -> Amendment:
    target = event.target_event_id.int
    corrected = isinstance(event, EventCorrected)
    return Amendment(
        event_id=event.envelope.event_id.int,
        target_event_id=target,
        kind="corrected" if corrected else "retracted",
        fields=tuple(change.field for change in _changes(event)) if isinstance(event, EventCorrected) else (),
        recorded_at=event.envelope.recorded_at,
        target_type=types.get(target),
    )


def _recomputed(history: tuple[tuple[str, str], ...]) -> CaseState | None:
    """The case from its whole history: the fold of its effective events."""
    received = [_loaded(entry) for entry in history]
    opening = next((e for e in received if isinstance(e, VictimIdentified)), None)
    if opening is None:
        return None
    effective = effective_events(received)
    state: CaseState | None = None
    for event in effective:
        if state is None:
            if isinstance(event, VictimIdentified):
                state = _opened(event)
            continue
        state = _apply(state, event)
    void = state is None  # every identification of the case was retracted
    if state is None:
        state = _opened(opening)
    types = {e.envelope.event_id.int: type(e).__name__ for e in received}
    amendments = sorted((e for e in received if isinstance(e, _Amending)), key=_when)
    return replace(
        state,
        void=void,
        amendments=tuple(_amendment(event, types) for event in amendments),
        applied=frozenset(types),
        last_event_at=max(e.envelope.occurred_at for e in received),
        history=history,
    )


def evolve(state: CaseState | None, event: Event) -> CaseState | None:
    """The case after ``event``. A case exists from its identification on; events that came before
    it (the router rejects those) leave it absent."""
    if state is None:
        if not isinstance(event, VictimIdentified):
            return None
        return replace(_opened(event), history=(_entry(event),))
    if event.envelope.event_id.int in state.applied:
        return state
    history = (*state.history, _entry(event))
    if isinstance(event, _Amending) or state.amendments:
        return _recomputed(history)
    return _apply(state, event, history=history)


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
    """The cases as they stood at ``moment`` in event time (``occurred_at``): for a dispute at a CMM
    about what had happened by then."""
    return fold(event for event in events if event.envelope.occurred_at <= moment)


def known_as_of(events: Iterable[Event], moment: datetime) -> dict[str, CaseState]:
    """The cases as the hub knew them at ``moment``: only what had been recorded (``recorded_at``) by
    then, so a correction recorded later is not yet applied. An agenda built on it shows what a
    meeting knew; :func:`fold` of everything is the corrected state."""
    return fold(event for event in events if event.envelope.recorded_at <= moment)


#: The same, under the name of the view it gives.
state_as_of = known_as_of
