"""Obligations and alerts: what is owed on a case, by whom, by when; pure functions of the case
state, the corridor's agreed deadlines and the time given.

Each obligation has a deterministic id (case, kind, due date), and each alert the id of its obligation
plus its level, so that a restarted or replayed alert feed never sends the same alert twice.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from hub.agreements import Agreements, Deadlines
from hub.contract import AlertLevel, CountryCode, ObligationKind, TraffickingStatus
from projections.cases.fold import CaseState, Stage

#: How long before an obligation falls due its owner is reminded.
DUE_SOON = timedelta(days=2)
#: The reflection and recovery period is flagged a week before it ends.
REFLECTION_WARNING = timedelta(days=7)


@dataclass(frozen=True, order=True)
class Obligation:
    due: datetime
    case_id: str
    kind: ObligationKind
    owner: CountryCode  # the focal point that must act
    waiting: CountryCode  # the one waiting for it
    detail: str = ""
    #: transit countries the step concerns too (the person crosses them on the way home)
    also: tuple[CountryCode, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.case_id}/{self.kind.value}/{self.due.date().isoformat()}"


@dataclass(frozen=True)
class Alert:
    obligation: Obligation
    level: AlertLevel

    @property
    def id(self) -> str:
        return f"{self.obligation.id}/{self.level.value}"

    @property
    def recipients(self) -> tuple[CountryCode, ...]:
        return (self.obligation.owner, self.obligation.waiting, *self.obligation.also)


def _end_of(day: date) -> datetime:
    """A deadline given as a day ends with that day (UTC)."""
    return datetime.combine(day, time.max, tzinfo=UTC).replace(microsecond=999_000)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _through(state: CaseState) -> str:
    if not state.transit:
        return ""
    return " through " + ", ".join(sorted(country.value for country in state.transit))


def obligations(state: CaseState, deadlines: Deadlines | None) -> list[Obligation]:
    """What is still owed on the case. Without an agreement (``deadlines`` None) only the person's
    own reflection period counts."""
    owed: list[Obligation] = []
    host, home = state.host, state.home
    transit = tuple(sorted(state.transit))
    if state.stage == Stage.CLOSED or state.void:  # nothing is owed on a retracted identification
        return owed

    ends = state.reflection_ends
    undecided = state.status == TraffickingStatus.PossibleVictimOfTrafficking and (
        state.referral_requested_at is None
    )
    if ends is not None and undecided:
        owed.append(
            Obligation(
                _end_of(ends),
                state.case_id,
                ObligationKind.DecideBeforeReflectionEnds,
                host,
                home or host,
                f"reflection period of {state.reflection_days} days ends {ends.isoformat()}",
            )
        )
    if deadlines is None or home is None:
        return sorted(owed)

    requested = state.referral_requested_at
    if requested is not None and state.answered_at is None:
        if state.acknowledged_at is None:
            owed.append(
                Obligation(
                    _end_of(requested.date() + timedelta(days=deadlines.acknowledge_days)),
                    state.case_id,
                    ObligationKind.AcknowledgeReferral,
                    home,
                    host,
                )
            )
        answer_by = requested.date() + timedelta(days=deadlines.answer_days)
        if state.respond_by is not None:
            answer_by = min(answer_by, state.respond_by)
        owed.append(Obligation(_end_of(answer_by), state.case_id, ObligationKind.AnswerReferral, home, host))

    if state.stage == Stage.ACCEPTED and state.answered_at is not None:
        owed.append(
            Obligation(
                _end_of(state.answered_at.date() + timedelta(days=deadlines.return_after_acceptance_days)),
                state.case_id,
                ObligationKind.IssueReturnNotice,
                host,
                home,
                _through(state).strip(),
                transit,  # a transit country must have the notice before the person reaches it
            )
        )
    if (
        state.stage == Stage.RETURN_NOTIFIED
        and state.planned_return_on is not None
        and state.return_notice_at is not None
    ):
        # The home country needs the agreed lead time to prepare the reception; a notice that came
        # later stays owed (overdue since its due day) until the handover settles it.
        notice_due = state.planned_return_on - timedelta(days=deadlines.return_notice_days)
        if state.return_notice_at.date() > notice_due:
            lead = (state.planned_return_on - state.return_notice_at.date()).days
            owed.append(
                Obligation(
                    _end_of(notice_due),
                    state.case_id,
                    ObligationKind.GiveReturnNoticeInTime,
                    host,
                    home,
                    f"notice given {lead} days before the return; {deadlines.return_notice_days} agreed"
                    + _through(state),
                    transit,
                )
            )
    if state.stage == Stage.RETURN_NOTIFIED and state.planned_return_on is not None:
        owed.append(
            Obligation(
                _end_of(state.planned_return_on + timedelta(days=deadlines.handover_after_return_days)),
                state.case_id,
                ObligationKind.ConfirmHandover,
                home,
                host,
                f"planned return {state.planned_return_on.isoformat()}" + _through(state),
                transit,
            )
        )
    if state.stage == Stage.RETURN_NOTIFIED:
        owed += _escorts_in_transit(state, deadlines)
    if state.handed_over_on is not None:
        recorded = {follow_up.months for follow_up in state.follow_ups}
        for months in deadlines.follow_up_months:
            if months not in recorded:
                owed.append(
                    Obligation(
                        _end_of(add_months(state.handed_over_on, months)),
                        state.case_id,
                        ObligationKind.RecordFollowUp,
                        home,
                        host,
                        f"{months}-month follow-up",
                    )
                )
    return sorted(owed)


def _escorts_in_transit(state: CaseState, deadlines: Deadlines) -> list[Obligation]:
    """Each transit country's own step: taking the person from the crossing where they enter it to
    the one where they leave it, by the day of the leg out (else the handover's due day). The home
    country's handover at the transit country's border settles it."""
    owed: list[Obligation] = []
    home = state.home
    if home is None or state.planned_return_on is None:
        return owed
    fallback = state.planned_return_on + timedelta(days=deadlines.handover_after_return_days)
    for country in sorted(state.transit):
        entering = next((leg for leg in state.legs if leg.to_country == country), None)
        leaving = next((leg for leg in state.legs if leg.from_country == country), None)
        due = leaving.planned_on if leaving is not None and leaving.planned_on is not None else fallback
        crossings = [
            leg.crossing_point.value if leg is not None and leg.crossing_point is not None else "?"
            for leg in (entering, leaving)
        ]
        owed.append(
            Obligation(
                _end_of(due),
                state.case_id,
                ObligationKind.EscortInTransit,
                country,
                home,
                f"from {crossings[0]} to {crossings[1]}, planned return {state.planned_return_on}",
                (state.host,),
            )
        )
    return owed


def alerts_for(state: CaseState, deadlines: Deadlines | None, now: datetime) -> list[Alert]:
    """Alerts for the obligations that fall due soon or are overdue at ``now``."""
    raised: list[Alert] = []
    for obligation in obligations(state, deadlines):
        warning = (
            REFLECTION_WARNING if obligation.kind is ObligationKind.DecideBeforeReflectionEnds else DUE_SOON
        )
        if now > obligation.due:
            raised.append(Alert(obligation, AlertLevel.Overdue))
        elif now >= obligation.due - warning:
            raised.append(Alert(obligation, AlertLevel.DueSoon))
    return raised


def deadlines_for(state: CaseState, agreements: Agreements) -> Deadlines | None:
    if state.home is None:
        return None
    corridor = agreements.corridor(state.host.value, state.home.value)
    return corridor.deadlines if corridor is not None else None
