"""A live plan: the events the region's national systems publish around a given now, each with the
simulated time at which it is published and the door it goes through. Pure: a seed and a time in,
a plan out; the same seed and now give the same plan.

Cases are opened between ``now - history`` and ``now + horizon``, so a case opened a few days ago is
new and its deadlines fall due while the simulation runs. Each case is one of the stories
:func:`hub.synthetic.synthetic_case` writes, re-timed: every step follows the one before by hours to
days, counted from when the one before was *published* (a partner answers only what it has
received). A seeded share of cases goes wrong the ways real cases do (:class:`Mode`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from random import Random
from types import MappingProxyType
from typing import Any, Final

from hub.contract import (
    CaseClosed,
    CaseStatus,
    ClosureReason,
    ConsentChanged,
    DataCategory,
    DeclineReason,
    EventCorrected,
    EventRetracted,
    EventType,
    FieldChange,
    FollowUpRecorded,
    HandoverCompleted,
    Need,
    ReferralAcknowledged,
    ReferralDecision,
    ReferralRequested,
    ReintegrationStatus,
    ReturnNoticeIssued,
    ServiceType,
    VictimIdentified,
)
from hub.events import Event
from hub.simulation.exports import importable, imported_id
from hub.synthetic import CORRIDORS, Corridor, synthetic_case

__all__ = [
    "DOORS",
    "MODE_WEIGHTS",
    "Door",
    "Mode",
    "Scheduled",
    "Step",
    "door_of",
    "live_plan",
    "schedule_case",
]


class Door(StrEnum):
    """How a national system reaches the hub."""

    API = "api"  # POST /v1/events with the system's credential
    IMPORT = "import"  # batch files of its exports, through ``lintas import``
    KAFKA = "kafka"  # its own Kafka producer, as ``nrm-<cc>``


#: The door of each national system of the simulation.
DOORS: Final[Mapping[str, Door]] = MappingProxyType(
    {
        "TH": Door.API,
        "MY": Door.API,
        "PH": Door.API,
        "ID": Door.API,
        "KH": Door.IMPORT,
        "MM": Door.KAFKA,
        "LA": Door.KAFKA,
        "VN": Door.KAFKA,
        "CN": Door.KAFKA,
        "JP": Door.KAFKA,
    }
)


def door_of(country: str) -> Door:
    """A country's door; a system the simulation does not list publishes to Kafka directly."""
    return DOORS.get(country, Door.KAFKA)


#: When a country's batch import runs each day (UTC): an export at the end of the working day.
EXPORT_HOUR: Final = 10


@dataclass(frozen=True)
class Scheduled:
    """``event`` is published through ``door`` once the simulated clock reaches ``at``."""

    at: datetime
    door: Door
    event: Event


class Mode(StrEnum):
    """How a case goes: as it should, or wrong in one of the ways the focal points see every week."""

    SMOOTH = "smooth"
    SLOW_ACKNOWLEDGEMENT = "slow_acknowledgement"  # acknowledged days after the agreed time
    NO_ACKNOWLEDGEMENT = "no_acknowledgement"  # the referral is never acknowledged nor answered
    DECLINED = "declined"  # the partner declines, with a reason; the host closes the case
    DELAYED_REPATRIATION = "delayed_repatriation"  # notice given late, handover days after the plan
    CORRECTED = "corrected"  # the host corrects its referral
    CONSENT_WITHDRAWN = "consent_withdrawn"  # the person withdraws consent to share their identity
    MISSED_FOLLOW_UP = "missed_follow_up"  # the 3-month follow-up is never recorded
    LOST_CONTACT = "lost_contact"  # a follow-up finds the person gone; the case is closed
    RE_TRAFFICKED = "re_trafficked"  # a follow-up finds the person trafficked again


#: Seeded shares of the modes (weights).
MODE_WEIGHTS: Final[Mapping[Mode, float]] = MappingProxyType(
    {
        Mode.SMOOTH: 40,
        Mode.SLOW_ACKNOWLEDGEMENT: 10,
        Mode.NO_ACKNOWLEDGEMENT: 6,
        Mode.DECLINED: 9,
        Mode.DELAYED_REPATRIATION: 9,
        Mode.CORRECTED: 7,
        Mode.CONSENT_WITHDRAWN: 4,
        Mode.MISSED_FOLLOW_UP: 6,
        Mode.LOST_CONTACT: 5,
        Mode.RE_TRAFFICKED: 4,
    }
)
#: Modes whose story is in the follow-ups, months after the return: such cases were opened before
#: the window, or nothing of what goes wrong would fall due in it.
_FOLLOW_UP_MODES: Final = frozenset({Mode.MISSED_FOLLOW_UP, Mode.LOST_CONTACT, Mode.RE_TRAFFICKED})
#: How long before the window a follow-up case may have been opened (days).
_FOLLOW_UP_OPENED: Final = (110.0, 330.0)
_HOUR: Final = timedelta(hours=1)
_DAY: Final = timedelta(days=1)
_DECLINE_REASONS: Final = (
    DeclineReason.NationalityNotVerified,
    DeclineReason.IdentityNotVerified,
    DeclineReason.FamilyNotTraced,
    DeclineReason.HomeNotSafe,
    DeclineReason.PersonDoesNotWishToReturn,
    DeclineReason.InsufficientInformation,
)


def _ms(moment: datetime) -> datetime:
    """To the millisecond, as the contract's timestamps hold it."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _export_after(moment: datetime) -> datetime:
    """The first daily export at or after ``moment``."""
    export = datetime.combine(moment.date(), time(EXPORT_HOUR), tzinfo=UTC)
    return export if export >= moment else export + _DAY


@dataclass(frozen=True)
class Step:
    """One step of a case's story: ``event`` (re-timed and re-dated when scheduled) ``gap`` after the
    step before was published; or at ``exactly``; or ``after_planned`` the start of the planned day
    of return (a handover). A return notice plans the return ``lead_days`` after it is given."""

    event: Event
    gap: timedelta = timedelta(0)
    exactly: datetime | None = None
    after_planned: timedelta | None = None
    lead_days: int = 0


def _span(rng: Random, low: timedelta, high: timedelta) -> timedelta:
    return low + (high - low) * rng.random()


def _uuid(rng: Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _dated(event: Event, day: date, step: Step, timed: Mapping[uuid.UUID, Event]) -> Event:
    """``event`` with the dates its fields hold moved to ``day``, when it occurs."""
    match event:
        case VictimIdentified():
            start = day if event.reflection_period_start is not None else None
            return event.model_copy(update={"identified_on": day, "reflection_period_start": start})
        case ReferralRequested():
            return event.model_copy(update={"respond_by": day + timedelta(days=30)})
        case ReferralAcknowledged():
            return event.model_copy(update={"expected_answer_by": day + timedelta(days=21)})
        case ReturnNoticeIssued():
            planned = day + timedelta(days=step.lead_days)
            legs = tuple(
                leg.model_copy(update={"planned_on": planned + timedelta(days=index)})
                for index, leg in enumerate(event.legs)
            )
            return event.model_copy(update={"planned_return_on": planned, "legs": legs})
        case HandoverCompleted():
            return event.model_copy(update={"handed_over_on": day})
        case FollowUpRecorded():
            return event.model_copy(update={"assessed_on": day})
        case CaseClosed():
            return event.model_copy(update={"closed_on": day})
        case ConsentChanged():
            return event.model_copy(update={"changed_on": day})
        case EventCorrected():
            target = timed.get(event.target_event_id)
            if not isinstance(target, ReferralRequested):
                return event
            later = json.dumps((target.respond_by + timedelta(days=14)).isoformat())
            changes = tuple(
                change.model_copy(update={"value_json": later}) if change.field == "respond_by" else change
                for change in event.core_changes
            )
            return event.model_copy(update={"core_changes": changes})
        case _:
            return event


def schedule_case(rng: Random, steps: Sequence[Step]) -> list[Scheduled]:
    """Time ``steps`` one after the other: each occurs its gap after the step before was published, is
    recorded minutes to hours later, and is published through its country's door (at once, or with the
    next daily export); its causation is the step before. An IMPORT country's events get the ids the
    importer derives, and what refers to them follows."""
    scheduled: list[Scheduled] = []
    published: datetime | None = None
    previous: uuid.UUID | None = None
    planned: date | None = None
    renamed: dict[uuid.UUID, uuid.UUID] = {}
    timed: dict[uuid.UUID, Event] = {}
    for step in steps:
        event = step.event
        if step.exactly is not None:
            occurred = step.exactly
        elif step.after_planned is not None and planned is not None:
            occurred = datetime.combine(planned, time(), tzinfo=UTC) + step.after_planned
        else:
            assert published is not None, "a story's first step is given its time"
            occurred = published + step.gap
        if published is not None:
            occurred = max(occurred, published + _HOUR)
        occurred = _ms(occurred)
        recorded = _ms(occurred + _span(rng, timedelta(minutes=1), timedelta(hours=3)))
        source = event.envelope.source_country.value
        door = door_of(source)
        at = _export_after(recorded) if door is Door.IMPORT else recorded
        original = event.envelope.event_id
        event = _dated(event, occurred.date(), step, timed)
        if isinstance(event, ReturnNoticeIssued):
            planned = event.planned_return_on
        if isinstance(event, EventCorrected | EventRetracted):
            event = event.model_copy(
                update={"target_event_id": renamed.get(event.target_event_id, event.target_event_id)}
            )
        envelope = event.envelope.model_copy(
            update={"occurred_at": occurred, "recorded_at": recorded, "causation_id": previous}
        )
        event = event.model_copy(update={"envelope": envelope})
        timed[original] = event
        if door is Door.IMPORT:
            assert importable(event), f"{envelope.event_type} of {source} cannot be exported"
            new_id = imported_id(source, event)
            renamed[original] = new_id
            event = event.model_copy(update={"envelope": envelope.model_copy(update={"event_id": new_id})})
        scheduled.append(Scheduled(at, door, event))
        published, previous = at, event.envelope.event_id
    return scheduled


def _on(event: Any, **fields: Any) -> Any:
    return event.model_copy(update=fields)


def _story(
    rng: Random, corridor: Corridor, number: int, opened: datetime, mode: Mode, run_tag: str
) -> list[Step]:
    """The steps of one case: a synthetic case's events, in the order and with the failure of ``mode``."""
    base = synthetic_case(rng, corridor, number, opened, complete=1.0, run_tag=run_tag)
    first: dict[EventType, Event] = {}
    follow_ups: list[FollowUpRecorded] = []
    retracted = {e.target_event_id for e in base if isinstance(e, EventRetracted)}
    for event in base:
        # the milestones in order; a follow-up recorded on the wrong case goes with its retraction
        if isinstance(event, FollowUpRecorded) and event.envelope.event_id not in retracted:
            follow_ups.append(event)
            continue
        first.setdefault(event.envelope.event_type, event)
    identified = first[EventType.VictimIdentified]
    requested = first[EventType.ReferralRequested]
    acknowledged = first[EventType.ReferralAcknowledged]
    answered = first[EventType.ReferralAnswered]
    closed = first[EventType.CaseClosed]
    assert isinstance(identified, VictimIdentified)
    assert isinstance(requested, ReferralRequested)
    host_imports = door_of(corridor.host) is Door.IMPORT
    home_imports = door_of(corridor.home) is Door.IMPORT
    if host_imports and identified.personal is not None:
        # An export has one column per field: no lists of documents or contacts in it.
        personal = identified.personal.model_copy(update={"documents": (), "contacts": ()})
        identified = _on(identified, personal=personal)

    steps = [Step(identified, exactly=opened), Step(requested, _span(rng, 4 * _HOUR, 3 * _DAY))]
    transit = first.get(EventType.TransitPartyChanged)
    if transit is not None:
        steps.append(Step(transit, _span(rng, _HOUR, _DAY)))
    if mode is Mode.CORRECTED and not host_imports:
        # The host entered the wrong answer date and too few services; it corrects both.
        correction = EventCorrected(
            envelope=requested.envelope.model_copy(
                update={"event_id": _uuid(rng), "event_type": EventType.EventCorrected}
            ),
            target_event_id=requested.envelope.event_id,
            core_changes=(FieldChange(field="respond_by", value_json="null"),),  # dated when timed
            needs_changes=(
                FieldChange(
                    field="services_requested",
                    value_json=json.dumps([*requested.services_requested, ServiceType.CaseManagement.value]),
                ),
            ),
        )
        steps.append(Step(correction, _span(rng, _HOUR, 2 * _DAY)))
    if mode is Mode.NO_ACKNOWLEDGEMENT:
        return steps
    slow = mode is Mode.SLOW_ACKNOWLEDGEMENT
    ack_gap = _span(rng, 8 * _DAY, 16 * _DAY) if slow else _span(rng, 2 * _HOUR, 4 * _DAY)
    steps.append(Step(acknowledged, ack_gap))
    if mode is Mode.CONSENT_WITHDRAWN:
        withdrawn = ConsentChanged(
            envelope=identified.envelope.model_copy(
                update={"event_id": _uuid(rng), "event_type": EventType.ConsentChanged}
            ),
            consent_scope=(DataCategory.CaseCore,),
            changed_on=opened.date(),
        )
        gone = _on(closed, reason=ClosureReason.ConsentWithdrawn, status=CaseStatus.Closed)
        return [*steps, Step(withdrawn, _span(rng, _DAY, 10 * _DAY)), Step(gone, _span(rng, _DAY, 5 * _DAY))]

    answer_gap = _span(rng, 3 * _DAY, 20 * _DAY)
    if mode is Mode.DECLINED:
        reason = rng.choice(_DECLINE_REASONS)
        declined = _on(
            answered,
            decision=ReferralDecision.Declined,
            decline_reason=reason,
            services_offered=(),
            nationality_verified=reason is not DeclineReason.NationalityNotVerified,
        )
        unwilling = reason is DeclineReason.PersonDoesNotWishToReturn
        ending = ClosureReason.DeclinedAssistance if unwilling else ClosureReason.Other
        gone = _on(closed, reason=ending, status=CaseStatus.Closed)
        return [*steps, Step(declined, answer_gap), Step(gone, _span(rng, 2 * _DAY, 10 * _DAY))]
    accepted = _on(
        answered,
        decision=ReferralDecision.Accepted,
        decline_reason=None,
        services_offered=(ServiceType.Reception, ServiceType.CaseManagement),
        nationality_verified=True,
    )
    steps.append(Step(accepted, answer_gap))

    notice = first.get(EventType.ReturnNoticeIssued)
    handover = first.get(EventType.HandoverCompleted)
    if notice is None or handover is None:
        return steps
    delayed = mode is Mode.DELAYED_REPATRIATION
    # The agreed lead time is up to 15 days; a late notice gives a few days only.
    lead = rng.randint(2, 5) if delayed else rng.randint(16, 30)
    steps.append(Step(notice, _span(rng, 2 * _DAY, 10 * _DAY), lead_days=lead))
    # Through a transit country, the handover at the home border is on the last leg's day.
    arrival = timedelta(days=1 if corridor.via else 0) + _span(rng, 8 * _HOUR, 16 * _HOUR)
    if delayed:
        arrival += timedelta(days=rng.randint(3, 12))
    steps.append(Step(handover, after_planned=arrival))
    retraction = first.get(EventType.EventRetracted)
    wrong = first.get(EventType.FollowUpRecorded)
    if retraction is not None and wrong is not None and not home_imports:
        steps += [Step(wrong, _span(rng, 20 * _DAY, 40 * _DAY)), Step(retraction, _DAY)]

    month = timedelta(days=30.4)
    done = 0
    for follow_up in follow_ups:
        months = follow_up.months_since_return
        if mode is Mode.MISSED_FOLLOW_UP and months == 3:
            continue
        gap = (months - done) * month - _span(rng, 0 * _DAY, 3 * _DAY)
        done = months
        status = follow_up.status
        if months == 3 and mode is Mode.LOST_CONTACT:
            status = ReintegrationStatus.LostContact
        elif months == 3 and mode is Mode.RE_TRAFFICKED:
            status = ReintegrationStatus.ReTrafficked
        elif status is ReintegrationStatus.LostContact:
            status = ReintegrationStatus.AtRisk
        needs = follow_up.needs
        if status is ReintegrationStatus.ReTrafficked:
            needs = (Need.Shelter, Need.PsychosocialSupport, Need.Security)
        steps.append(Step(_on(follow_up, status=status, needs=needs), gap))
        if status is ReintegrationStatus.LostContact:
            gone = _on(closed, reason=ClosureReason.LostContact, status=CaseStatus.Closed)
            return [*steps, Step(gone, _span(rng, 5 * _DAY, 20 * _DAY))]
        if status is ReintegrationStatus.ReTrafficked:
            return steps  # the partners take the case up again: nothing closes it
    steps.append(Step(closed, _span(rng, 5 * _DAY, 30 * _DAY)))
    return steps


def _opened(rng: Random, now: datetime, mode: Mode, history: timedelta, horizon: timedelta) -> datetime:
    if mode in _FOLLOW_UP_MODES:
        low, high = _FOLLOW_UP_OPENED
        return _ms(now - history - timedelta(days=rng.uniform(low, high)))
    return _ms(now - history + (history + horizon) * rng.random())


def live_plan(
    seed: int,
    now: datetime,
    *,
    cases: int,
    run_tag: str,
    history: timedelta = timedelta(days=45),
    horizon: timedelta = timedelta(days=30),
) -> list[Scheduled]:
    """The events of ``cases`` cases along the shipped corridors, published up to ``now + horizon``,
    sorted by publication time (a case's events in their order). Cases are opened from
    ``now - history`` on; those whose story is in the follow-ups (:data:`MODE_WEIGHTS`) months
    before. ``run_tag`` goes into every case id, keeping runs apart on one hub."""
    # The tag and the time are part of the seed: two runs on one hub never reuse an event id.
    rng = Random(f"lintas-simulation|{seed}|{run_tag}|{now.isoformat()}")
    modes, weights = list(MODE_WEIGHTS), list(MODE_WEIGHTS.values())
    end = now + horizon
    plan: list[tuple[datetime, int, int, Scheduled]] = []
    for number in range(cases):
        corridor = rng.choice(CORRIDORS)
        mode = rng.choices(modes, weights)[0]
        opened = _opened(rng, now, mode, history, horizon)
        for position, item in enumerate(
            schedule_case(rng, _story(rng, corridor, number, opened, mode, run_tag))
        ):
            if item.at > end:
                break
            plan.append((item.at, number, position, item))
    plan.sort(key=lambda entry: entry[:3])
    return [item for *_, item in plan]
