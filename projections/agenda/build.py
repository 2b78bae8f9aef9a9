"""The agenda of a corridor's Case Management Meeting (CMM), built from the case states: pure, no I/O.

What the two countries' focal points go through when they meet: new cases, referrals waiting for an
answer, delayed repatriations, returns without a confirmed handover, follow-ups due or missed, cases that
need a joint decision, and the figures of the period since the last meeting. Due dates come from
:func:`projections.obligations.rules.obligations`, so the agenda and the alerts always agree.

Rows carry case ids and codes only, never personal data. ``states`` should be the cases as they stood at
``as_of`` (:func:`projections.cases.fold.as_of`); a case identified after ``as_of`` is left out.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum

from hub.agreements import Corridor
from hub.contract import (
    AgeBand,
    CountryCode,
    CrossingPoint,
    DeclineReason,
    ExploitationType,
    ObligationKind,
    ReferralDecision,
    ReintegrationStatus,
    TraffickingStatus,
)
from projections.cases.fold import CaseState, Stage
from projections.obligations.rules import Obligation, add_months, obligations

__all__ = [
    "Agenda",
    "AwaitingAnswer",
    "DecisionReason",
    "DelayedReturn",
    "Figures",
    "FollowUpDue",
    "JointDecision",
    "MissingHandover",
    "NewCase",
    "build_agenda",
    "corridor_cases",
]


class DecisionReason(StrEnum):
    """Why a case needs a joint decision, most pressing first."""

    RE_TRAFFICKED = "re_trafficked"
    LOST_CONTACT = "lost_contact"
    DECLINED = "declined"
    REFLECTION_ENDED = "reflection_ended"
    AT_RISK = "at_risk"


_FOLLOW_UP_REASONS = {
    ReintegrationStatus.ReTrafficked: DecisionReason.RE_TRAFFICKED,
    ReintegrationStatus.LostContact: DecisionReason.LOST_CONTACT,
    ReintegrationStatus.AtRisk: DecisionReason.AT_RISK,
}
_REASON_ORDER = {reason: index for index, reason in enumerate(DecisionReason)}


@dataclass(frozen=True)
class NewCase:
    """1. A case identified since the last meeting; ``due`` and ``owner`` are its next obligation's."""

    case_id: str
    identified_on: date
    host: CountryCode
    home: CountryCode
    status: TraffickingStatus
    age_band: AgeBand
    child: bool
    exploitation_types: tuple[ExploitationType, ...]
    stage: Stage
    owner: CountryCode | None
    due: date | None
    days_overdue: int


@dataclass(frozen=True)
class AwaitingAnswer:
    """2. A referral not yet accepted or declined; ``owner`` is the country that must answer."""

    case_id: str
    requested_on: date
    acknowledged_on: date | None
    child: bool
    owner: CountryCode
    due: date
    days_overdue: int


@dataclass(frozen=True)
class DelayedReturn:
    """3. Accepted, but no return notice within the agreed days: a delayed repatriation."""

    case_id: str
    accepted_on: date
    child: bool
    owner: CountryCode
    due: date
    days_overdue: int


@dataclass(frozen=True)
class MissingHandover:
    """4. A return was notified and its day has passed, but no handover is confirmed."""

    case_id: str
    planned_return_on: date
    crossing_point: CrossingPoint | None
    child: bool
    owner: CountryCode
    due: date
    days_overdue: int


@dataclass(frozen=True)
class FollowUpDue:
    """5. One follow-up milestone not recorded, missed or falling due before the next meeting."""

    case_id: str
    months: int
    handed_over_on: date
    latest_status: ReintegrationStatus | None
    child: bool
    owner: CountryCode
    due: date
    days_overdue: int


@dataclass(frozen=True)
class JointDecision:
    """6. A case both countries must decide on together.

    ``since`` is when the reason arose (the answer, the follow-up, the end of the reflection period).
    """

    case_id: str
    reason: DecisionReason
    since: date
    decline_reason: DeclineReason | None
    follow_up_months: int | None
    child: bool
    owner: CountryCode
    days_overdue: int


@dataclass(frozen=True)
class Figures:
    """7. What happened in the corridor from ``last_meeting`` to ``as_of`` (both days included)."""

    identified: int
    referred: int
    accepted: int
    declined: int
    returned: int  # handed over
    follow_ups: int
    children: int  # among the cases identified in the period
    median_days_to_answer: float | None  # from referral to acceptance or decline, answers in the period


@dataclass(frozen=True)
class TransitCase:
    """A case between two other countries whose person crosses one of this corridor's countries on
    the way home: what the transit country prepares for."""

    case_id: str
    host: CountryCode
    home: CountryCode
    transit: CountryCode
    planned_return_on: date | None
    route: str  # the legs, e.g. "MY -> TH at Sadao, TH -> LA at the Friendship Bridge"


@dataclass(frozen=True)
class AmendmentRow:
    """An event of a corridor case corrected or retracted since the last meeting."""

    case_id: str
    kind: str  # corrected / retracted
    fields: tuple[str, ...]
    recorded_on: date
    event_type: str | None = None  # the type of the event amended


@dataclass(frozen=True)
class Agenda:
    corridor_id: str
    countries: tuple[CountryCode, CountryCode]
    as_of: datetime
    last_meeting: date
    next_meeting: date  # as_of plus the cadence: follow-ups due up to this day are listed
    new_cases: tuple[NewCase, ...]
    awaiting_answer: tuple[AwaitingAnswer, ...]
    delayed_returns: tuple[DelayedReturn, ...]
    missing_handovers: tuple[MissingHandover, ...]
    follow_ups: tuple[FollowUpDue, ...]
    joint_decisions: tuple[JointDecision, ...]
    figures: Figures
    transits: tuple[TransitCase, ...] = ()
    amendments: tuple[AmendmentRow, ...] = ()

    @property
    def case_ids(self) -> frozenset[str]:
        """Every case the agenda names."""
        return frozenset(
            {row.case_id for row in self.new_cases}
            | {row.case_id for row in self.awaiting_answer}
            | {row.case_id for row in self.delayed_returns}
            | {row.case_id for row in self.missing_handovers}
            | {row.case_id for row in self.follow_ups}
            | {row.case_id for row in self.joint_decisions}
        )


def corridor_cases(states: Mapping[str, CaseState], corridor: Corridor) -> list[CaseState]:
    """The cases between the corridor's two countries, in either direction, by case id."""
    pair = set(corridor.countries)
    return sorted(
        (state for state in states.values() if state.home is not None and {state.host, state.home} == pair),
        key=lambda state: state.case_id,
    )


def _days_overdue(obligation: Obligation, now: datetime) -> int:
    """Whole days past the due day (which ends at midnight UTC); 0 while not overdue."""
    if now <= obligation.due:
        return 0
    return (now.astimezone(UTC).date() - obligation.due.date()).days


def _in_period(day: date | None, start: date, end: date) -> bool:
    return day is not None and start <= day <= end


def _figures(cases: list[CaseState], start: date, end: date) -> Figures:
    new = [state for state in cases if _in_period(state.identified_on, start, end)]
    answered = [
        state
        for state in cases
        if state.answered_at is not None
        and state.decision is not None
        and _in_period(state.answered_at.date(), start, end)
    ]
    waits = [
        (state.answered_at.date() - state.referral_requested_at.date()).days
        for state in answered
        if state.answered_at is not None and state.referral_requested_at is not None
    ]
    return Figures(
        identified=len(new),
        referred=sum(
            1
            for state in cases
            if state.referral_requested_at is not None
            and _in_period(state.referral_requested_at.date(), start, end)
        ),
        accepted=sum(1 for state in answered if state.decision == ReferralDecision.Accepted),
        declined=sum(1 for state in answered if state.decision == ReferralDecision.Declined),
        returned=sum(1 for state in cases if _in_period(state.handed_over_on, start, end)),
        follow_ups=sum(
            1
            for state in cases
            for follow_up in state.follow_ups
            if _in_period(follow_up.assessed_on, start, end)
        ),
        children=sum(1 for state in new if state.child),
        median_days_to_answer=float(statistics.median(waits)) if waits else None,
    )


def _overdue_first(days_overdue: int, due: date, case_id: str) -> tuple[bool, date, str]:
    return (days_overdue == 0, due, case_id)


def transit_cases(states: Mapping[str, CaseState], corridor: Corridor) -> list[tuple[CaseState, CountryCode]]:
    """The cases of a party of the corridor whose person crosses its other country, with that country."""
    found = []
    for state in states.values():
        if state.home is None:
            continue
        for country in corridor.countries:
            other = next(c for c in corridor.countries if c != country)
            if country in state.transit and other in (state.host, state.home):
                found.append((state, country))
    return sorted(found, key=lambda item: item[0].case_id)


def _route(state: CaseState) -> str:
    return ", ".join(
        f"{leg.from_country.value} -> {leg.to_country.value}"
        + (f" at {leg.crossing_point.value}" if leg.crossing_point is not None else "")
        for leg in state.legs
    )


def build_agenda(
    states: Mapping[str, CaseState],
    corridor: Corridor,
    *,
    as_of: datetime,
    last_meeting: date | None = None,
    at_risk: bool = True,
) -> Agenda:
    """The agenda of ``corridor``'s CMM held at ``as_of`` (timezone-aware).

    ``last_meeting`` defaults to ``as_of`` less the corridor's CMM cadence; ``at_risk`` puts cases whose
    latest follow-up found the person at risk among the joint decisions too.
    """
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware (event times are UTC)")
    today = as_of.astimezone(UTC).date()
    cadence = corridor.cmm.cadence_months
    start = last_meeting if last_meeting is not None else add_months(today, -cadence)
    next_meeting = add_months(today, cadence)
    deadlines = corridor.deadlines
    known = [state for state in corridor_cases(states, corridor) if state.identified_at <= as_of]
    # A case whose identification was retracted is only listed as retracted, not as a case.
    cases = [state for state in known if not state.void]

    new_cases: list[NewCase] = []
    awaiting: list[AwaitingAnswer] = []
    delayed: list[DelayedReturn] = []
    handovers: list[MissingHandover] = []
    follow_ups: list[FollowUpDue] = []
    decisions: list[JointDecision] = []

    for state in cases:
        home = state.home
        assert home is not None  # corridor_cases keeps only cases with a partner country
        owed = obligations(state, deadlines)
        if _in_period(state.identified_on, start, today):
            first = owed[0] if owed else None
            new_cases.append(
                NewCase(
                    case_id=state.case_id,
                    identified_on=state.identified_on,
                    host=state.host,
                    home=home,
                    status=state.status,
                    age_band=state.age_band,
                    child=state.child,
                    exploitation_types=state.exploitation_types,
                    stage=state.stage,
                    owner=first.owner if first is not None else state.next_action_by,
                    due=first.due.date() if first is not None else None,
                    days_overdue=_days_overdue(first, as_of) if first is not None else 0,
                )
            )
        if state.stage == Stage.CLOSED:
            continue
        handed = state.handed_over_on
        for obligation in owed:
            late = _days_overdue(obligation, as_of)
            due = obligation.due.date()
            match obligation.kind:
                case ObligationKind.AnswerReferral if state.referral_requested_at is not None:
                    awaiting.append(
                        AwaitingAnswer(
                            case_id=state.case_id,
                            requested_on=state.referral_requested_at.date(),
                            acknowledged_on=state.acknowledged_at.date() if state.acknowledged_at else None,
                            child=state.child,
                            owner=obligation.owner,
                            due=due,
                            days_overdue=late,
                        )
                    )
                case ObligationKind.IssueReturnNotice if late and state.answered_at is not None:
                    delayed.append(
                        DelayedReturn(
                            case_id=state.case_id,
                            accepted_on=state.answered_at.date(),
                            child=state.child,
                            owner=obligation.owner,
                            due=due,
                            days_overdue=late,
                        )
                    )
                case ObligationKind.ConfirmHandover if late and state.planned_return_on is not None:
                    handovers.append(
                        MissingHandover(
                            case_id=state.case_id,
                            planned_return_on=state.planned_return_on,
                            crossing_point=state.crossing_point,
                            child=state.child,
                            owner=obligation.owner,
                            due=due,
                            days_overdue=late,
                        )
                    )
                case ObligationKind.RecordFollowUp if handed is not None and due <= next_meeting:
                    latest = state.latest_follow_up
                    follow_ups.append(
                        FollowUpDue(
                            case_id=state.case_id,
                            months=_milestone(obligation, handed, deadlines.follow_up_months),
                            handed_over_on=handed,
                            latest_status=latest.status if latest is not None else None,
                            child=state.child,
                            owner=obligation.owner,
                            due=due,
                            days_overdue=late,
                        )
                    )
                case ObligationKind.DecideBeforeReflectionEnds if late:
                    decisions.append(
                        JointDecision(
                            case_id=state.case_id,
                            reason=DecisionReason.REFLECTION_ENDED,
                            since=due,
                            decline_reason=None,
                            follow_up_months=None,
                            child=state.child,
                            owner=obligation.owner,
                            days_overdue=late,
                        )
                    )
                case _:
                    pass  # acknowledgements, and obligations not yet due, are not on the agenda
        if state.stage == Stage.DECLINED and state.answered_at is not None:
            decisions.append(
                JointDecision(
                    case_id=state.case_id,
                    reason=DecisionReason.DECLINED,
                    since=state.answered_at.date(),
                    decline_reason=state.decline_reason,
                    follow_up_months=None,
                    child=state.child,
                    owner=state.host,
                    days_overdue=0,
                )
            )
        latest = state.latest_follow_up
        reason = _FOLLOW_UP_REASONS.get(latest.status) if latest is not None else None
        if latest is not None and reason is not None and (at_risk or reason != DecisionReason.AT_RISK):
            decisions.append(
                JointDecision(
                    case_id=state.case_id,
                    reason=reason,
                    since=latest.assessed_on,
                    decline_reason=None,
                    follow_up_months=latest.months,
                    child=state.child,
                    owner=home,
                    days_overdue=0,
                )
            )

    return Agenda(
        corridor_id=corridor.id,
        countries=corridor.countries,
        as_of=as_of,
        last_meeting=start,
        next_meeting=next_meeting,
        new_cases=tuple(sorted(new_cases, key=lambda row: (row.identified_on, row.case_id))),
        awaiting_answer=tuple(
            sorted(awaiting, key=lambda row: _overdue_first(row.days_overdue, row.due, row.case_id))
        ),
        delayed_returns=tuple(sorted(delayed, key=lambda row: (row.due, row.case_id))),
        missing_handovers=tuple(sorted(handovers, key=lambda row: (row.due, row.case_id))),
        follow_ups=tuple(
            sorted(
                follow_ups,
                key=lambda row: (*_overdue_first(row.days_overdue, row.due, row.case_id), row.months),
            )
        ),
        joint_decisions=tuple(
            sorted(decisions, key=lambda row: (_REASON_ORDER[row.reason], row.since, row.case_id))
        ),
        figures=_figures(cases, start, today),
        transits=tuple(
            TransitCase(
                case_id=state.case_id,
                host=state.host,
                home=state.home,
                transit=country,
                planned_return_on=state.planned_return_on,
                route=_route(state),
            )
            for state, country in transit_cases(states, corridor)
            if state.home is not None and state.identified_at <= as_of and state.stage != Stage.CLOSED
        ),
        amendments=tuple(
            AmendmentRow(
                case_id=state.case_id,
                kind=amendment.kind,
                fields=amendment.fields,
                recorded_on=amendment.recorded_at.date(),
                event_type=amendment.target_type,
            )
            for state in known
            for amendment in state.amendments
            if _in_period(amendment.recorded_at.date(), start, today) and amendment.recorded_at <= as_of
        ),
    )


def _milestone(obligation: Obligation, handed_over_on: date, milestones: tuple[int, ...]) -> int:
    """The agreed milestone (months after the handover) that a follow-up obligation falls due on."""
    due = obligation.due.date()
    for months in milestones:
        if add_months(handed_over_on, months) == due:
            return months
    raise ValueError(f"{obligation.id}: due day is no whole number of months after {handed_over_on}")
