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
    AgeBand,
    CaseClosed,
    ConsentChanged,
    CountryCode,
    CrossingPoint,
    DataCategory,
    DeclineReason,
    ExploitationType,
    FollowUpRecorded,
    Gender,
    HandoverCompleted,
    ReferralAcknowledged,
    ReferralAnswered,
    ReferralDecision,
    ReferralRequested,
    ReintegrationStatus,
    ReturnNoticeIssued,
    TraffickingStatus,
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
        last_event_at=envelope.occurred_at,
        applied=frozenset({envelope.event_id.int}),
    )


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
                "acknowledged_at": None,
                "answered_at": None,
                "decision": None,
                "decline_reason": None,
                "home": state.home or event.envelope.destination_country,
            }
        case ReferralAcknowledged():
            changes |= {"acknowledged_at": at}
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
            }
        case HandoverCompleted():
            changes |= {"stage": Stage.HANDED_OVER, "handed_over_on": event.handed_over_on}
        case FollowUpRecorded():
            others = tuple(f for f in state.follow_ups if f.months != event.months_since_return)
            follow_up = FollowUp(
                months=event.months_since_return, assessed_on=event.assessed_on, status=event.status
            )
            changes["follow_ups"] = tuple(sorted((*others, follow_up), key=lambda f: f.months))
        case CaseClosed():
            closed_by = state.closed_by | {event.envelope.source_country}
            changes |= {"closed_by": closed_by, "closed_on": event.closed_on}
            if state.home is None or closed_by >= {state.host, state.home}:
                changes["stage"] = Stage.CLOSED
        case ConsentChanged():
            changes["consent"] = frozenset(event.consent_scope)
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
