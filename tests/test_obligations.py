"""Obligations the scenario does not reach: the return notice's lead time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from hub.agreements import load_agreements
from hub.contract import AlertLevel, CountryCode, ObligationKind, ReferralDecision
from projections.cases.fold import CaseState, Stage
from projections.obligations.rules import alerts_for, obligations

DEADLINES = load_agreements().corridor("TH", "MM").deadlines  # type: ignore[union-attr]


def notified(days_before_return: int) -> CaseState:
    """A TH-MM case whose return notice came ``days_before_return`` days before the planned return."""
    planned = date(2026, 3, 31)
    return CaseState(
        case_id="TH-2026-LEAD",
        host=CountryCode.TH,
        home=CountryCode.MM,
        stage=Stage.RETURN_NOTIFIED,
        identified_at=datetime(2026, 1, 5, tzinfo=UTC),
        identified_on=date(2026, 1, 5),
        referral_requested_at=datetime(2026, 1, 8, tzinfo=UTC),
        answered_at=datetime(2026, 2, 1, tzinfo=UTC),
        decision=ReferralDecision.Accepted,
        return_notice_at=datetime.combine(
            date.fromordinal(planned.toordinal() - days_before_return), datetime.min.time(), UTC
        ),
        planned_return_on=planned,
        last_event_at=datetime(2026, 3, 1, tzinfo=UTC),
    )


def kinds(state: CaseState) -> list[ObligationKind]:
    return [owed.kind for owed in obligations(state, DEADLINES)]


def test_a_notice_given_with_the_agreed_lead_time_owes_nothing_more() -> None:
    assert DEADLINES.return_notice_days == 15
    assert kinds(notified(15)) == [ObligationKind.ConfirmHandover]
    assert kinds(notified(30)) == [ObligationKind.ConfirmHandover]


def test_a_late_notice_is_owed_overdue_from_the_day_it_was_due_until_the_handover() -> None:
    late = notified(5)

    [lead, handover] = obligations(late, DEADLINES)

    assert lead.kind is ObligationKind.GiveReturnNoticeInTime
    assert (lead.owner, lead.waiting) == (CountryCode.TH, CountryCode.MM)
    assert lead.due.date() == date(2026, 3, 16)  # 15 days before 31 March
    assert lead.detail == "notice given 5 days before the return; 15 agreed"
    assert handover.kind is ObligationKind.ConfirmHandover
    [alert] = [
        a
        for a in alerts_for(late, DEADLINES, datetime(2026, 3, 27, tzinfo=UTC))
        if a.obligation.kind is ObligationKind.GiveReturnNoticeInTime
    ]
    assert alert.level is AlertLevel.Overdue
    handed_over = replace(late, stage=Stage.HANDED_OVER, handed_over_on=date(2026, 4, 1))
    assert ObligationKind.GiveReturnNoticeInTime not in kinds(handed_over)
