"""The CMM agenda of the Thailand–Myanmar corridor, built from hand-made cases and rendered per language."""

from __future__ import annotations

import re
import string
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from hub.agreements import Corridor, default_agreements
from hub.contract import (
    AgeBand,
    CountryCode,
    CrossingPoint,
    DeclineReason,
    ExploitationType,
    ReintegrationStatus,
    TraffickingStatus,
)
from hub.errors import ConfigError
from hub.events import Event, parse_event
from projections.agenda import (
    Agenda,
    AwaitingAnswer,
    DecisionReason,
    DelayedReturn,
    Figures,
    FollowUpDue,
    JointDecision,
    MissingHandover,
    NewCase,
    build_agenda,
    to_html,
    to_markdown,
    to_pdf,
)
from projections.agenda.render import _all_phrases, phrases_for
from projections.cases.fold import Stage, as_of, fold
from tests.test_codec import fisherman

AS_OF = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # the meeting; the last one was 6 months before
PAST = datetime(2026, 9, 20, 12, 0, tzinfo=UTC)
LANGUAGES = ("en", "th", "my", "km", "lo", "vi", "ms", "id", "fil", "zh")
TH, MM = CountryCode.TH, CountryCode.MM
_IDS = uuid.UUID("0b8f8e4e-2a43-4c59-9d3c-7f0e6d1a2b3c")


def _at(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=UTC)


class Case:
    """Writes the events of one case between ``host`` (where the person was found) and ``home``."""

    def __init__(self, case_id: str, host: str = "TH", home: str = "MM") -> None:
        self.case_id, self.host, self.home = case_id, host, home

    def _event(self, event_type: str, day: date, *, by_host: bool, **fields: Any) -> Event:
        source, destination = (self.host, self.home) if by_host else (self.home, self.host)
        record = {
            "envelope": {
                "event_id": str(uuid.uuid5(_IDS, f"{self.case_id}/{event_type}/{day}/{source}")),
                "event_type": event_type,
                "schema_version": 1,
                "case_id": self.case_id,
                "occurred_at": _at(day),
                "recorded_at": _at(day),
                "source_country": source,
                "source_agency": f"{source}-NRM",
                "destination_country": destination,
            },
            **fields,
        }
        return parse_event(record, now=AS_OF)

    def identified(self, day: date, *, presumed: bool = False, child: bool = False) -> Event:
        return parse_event(
            fisherman(
                envelope__event_id=str(uuid.uuid5(_IDS, f"{self.case_id}/identified")),
                envelope__case_id=self.case_id,
                envelope__occurred_at=_at(day),
                envelope__recorded_at=_at(day),
                envelope__source_country=self.host,
                envelope__source_agency=f"{self.host}-NRM",
                envelope__destination_country=self.home,
                identified_on=day.isoformat(),
                reflection_period_start=day.isoformat(),
                status=(
                    TraffickingStatus.PossibleVictimOfTrafficking
                    if presumed
                    else TraffickingStatus.ActualVictimOfTrafficking
                ).value,
                age_band="Child15To17" if child else "Adult25To34",
                needs=["Shelter", "ChildProtection"] if child else ["Shelter"],
                nationality=self.home,
            ),
            now=AS_OF,
        )

    def referred(self, day: date, respond_by: date | None = None) -> Event:
        return self._event(
            "ReferralRequested",
            day,
            by_host=True,
            purposes=["VerifyNationalityIdentity"],
            urgency="Routine",
            respond_by=(respond_by or day + timedelta(days=30)).isoformat(),
        )

    def acknowledged(self, day: date) -> Event:
        return self._event("ReferralAcknowledged", day, by_host=False, receiving_agency=f"{self.home}-DSW")

    def accepted(self, day: date) -> Event:
        return self._event("ReferralAnswered", day, by_host=False, decision="Accepted")

    def declined(self, day: date, reason: str) -> Event:
        return self._event("ReferralAnswered", day, by_host=False, decision="Declined", decline_reason=reason)

    def return_notice(self, day: date, planned: date) -> Event:
        return self._event(
            "ReturnNoticeIssued",
            day,
            by_host=True,
            planned_return_on=planned.isoformat(),
            crossing_point="MaeSot_Myawaddy",
            travel_mode="Land",
        )

    def handed_over(self, day: date) -> Event:
        return self._event(
            "HandoverCompleted",
            day,
            by_host=False,
            handed_over_on=day.isoformat(),
            crossing_point="MaeSot_Myawaddy",
            receiving_agency=f"{self.home}-DSW",
            receiving_agency_type="SocialWelfare",
        )

    def follow_up(self, day: date, months: int, status: str) -> Event:
        return self._event(
            "FollowUpRecorded",
            day,
            by_host=False,
            months_since_return=months,
            assessed_on=day.isoformat(),
            domains_assessed=["Individual", "Family"],
            status=status,
        )

    def closed(self, day: date, *, by_host: bool) -> Event:
        return self._event(
            "CaseClosed",
            day,
            by_host=by_host,
            status="Closed",
            reason="DeclinedAssistance",
            closed_on=day.isoformat(),
        )


def d(text: str) -> date:
    return date.fromisoformat(text)


def corridor_events() -> list[Event]:
    """Every situation the agenda knows, on the TH–MM corridor, plus one TH–LA case."""
    a, b, c, dd = Case("TH-A-new"), Case("TH-B-late"), Case("TH-C-waiting"), Case("TH-D-later")
    e, f, g, h = (
        Case("TH-E-delayed"),
        Case("TH-F-nohandover"),
        Case("MM-G-atrisk", "MM", "TH"),
        Case("TH-H-missed"),
    )
    i, j, k, lc = Case("TH-I-declined"), Case("TH-J-lost"), Case("TH-K-retrafficked"), Case("TH-L-reflection")
    x, y = Case("TH-X-laos", "TH", "LA"), Case("TH-Y-closed")
    events = [
        # 1. new since the last meeting (2026-05-23): a presumed child, reflection period until 12-15
        a.identified(d("2026-11-01"), presumed=True, child=True),
        # 2. referrals awaiting an answer
        b.identified(d("2026-04-01"), presumed=True),
        b.referred(d("2026-09-01")),  # answer due 10-01
        b.acknowledged(d("2026-09-03")),
        c.identified(d("2026-04-10")),
        c.referred(d("2026-11-10"), respond_by=d("2026-12-01")),  # the earlier respond_by counts
        dd.identified(d("2026-04-15")),
        dd.referred(d("2026-08-15"), respond_by=d("2026-09-30")),  # 30 days: due 09-14
        dd.acknowledged(d("2026-08-20")),
        # 3. accepted 06-01, no return notice within 60 days
        e.identified(d("2026-04-25")),
        e.referred(d("2026-05-01")),
        e.accepted(d("2026-06-01")),
        # 4. return planned for 11-10, no handover confirmed
        f.identified(d("2026-03-15")),
        f.referred(d("2026-03-25")),
        f.accepted(d("2026-04-20")),
        f.return_notice(d("2026-10-01"), planned=d("2026-11-10")),
        # 5./6. Thai national returned from Myanmar: 3-month follow-up found her at risk
        g.identified(d("2026-01-10")),
        g.referred(d("2026-02-01")),
        g.accepted(d("2026-03-01")),
        g.return_notice(d("2026-05-01"), planned=d("2026-05-30")),
        g.handed_over(d("2026-05-30")),
        g.follow_up(d("2026-08-29"), 3, "AtRisk"),
        # 5. no follow-up at all since the return on 02-15
        h.identified(d("2025-12-01")),
        h.handed_over(d("2026-02-15")),
        # 6. declined, lost contact, re-trafficked, reflection period over without a decision
        i.identified(d("2026-05-10")),
        i.referred(d("2026-07-01")),
        i.declined(d("2026-07-21"), "FamilyNotTraced"),
        j.identified(d("2025-11-01")),
        j.handed_over(d("2026-01-05")),
        j.follow_up(d("2026-04-05"), 3, "Reintegrating"),
        j.follow_up(d("2026-07-05"), 6, "LostContact"),
        k.identified(d("2025-10-01")),
        k.handed_over(d("2025-12-01")),
        k.follow_up(d("2026-03-01"), 3, "Reintegrating"),
        k.follow_up(d("2026-06-01"), 6, "ReTrafficked"),
        lc.identified(d("2026-03-01"), presumed=True),  # 45 days: ends 04-15
        # another corridor: identified and referred in the period, overdue; never on this agenda
        x.identified(d("2026-06-01"), presumed=True, child=True),
        x.referred(d("2026-07-01")),
        # declined and closed by both countries before the period: nothing left to discuss
        y.identified(d("2026-02-01")),
        y.referred(d("2026-02-05")),
        y.declined(d("2026-03-01"), "NationalityNotVerified"),
        y.closed(d("2026-03-10"), by_host=True),
        y.closed(d("2026-03-12"), by_host=False),
    ]
    return sorted(events, key=lambda event: event.envelope.occurred_at)


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return corridor_events()


@pytest.fixture(scope="module")
def corridor() -> Corridor:
    found = default_agreements().corridor("TH", "MM")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def agenda(events: list[Event], corridor: Corridor) -> Agenda:
    return build_agenda(fold(events), corridor, as_of=AS_OF)


# -- the sections ---------------------------------------------------------------------------------------


def test_the_period_runs_from_the_last_meeting_one_cadence_ago(agenda: Agenda) -> None:
    assert agenda.corridor_id == "TH-MM"
    assert agenda.countries == (TH, MM)
    assert agenda.last_meeting == d("2026-05-23")  # TH–MM meets every 6 months
    assert agenda.next_meeting == d("2027-05-23")


def test_new_cases_are_those_identified_since_the_last_meeting(agenda: Agenda) -> None:
    assert agenda.new_cases == (
        NewCase(
            case_id="TH-A-new",
            identified_on=d("2026-11-01"),
            host=TH,
            home=MM,
            status=TraffickingStatus.PossibleVictimOfTrafficking,
            age_band=AgeBand.Child15To17,
            child=True,
            exploitation_types=(ExploitationType.ForcedLabour,),
            stage=Stage.IDENTIFIED,
            owner=TH,  # Thailand decides before the reflection period ends
            due=d("2026-12-15"),
            days_overdue=0,
        ),
    )


def test_referrals_awaiting_an_answer_overdue_first_then_by_due_date(agenda: Agenda) -> None:
    assert agenda.awaiting_answer == (
        AwaitingAnswer("TH-D-later", d("2026-08-15"), d("2026-08-20"), False, MM, d("2026-09-14"), 70),
        AwaitingAnswer("TH-B-late", d("2026-09-01"), d("2026-09-03"), False, MM, d("2026-10-01"), 53),
        AwaitingAnswer("TH-C-waiting", d("2026-11-10"), None, False, MM, d("2026-12-01"), 0),
    )


def test_accepted_cases_without_a_return_notice_in_time_are_delayed_repatriations(agenda: Agenda) -> None:
    assert agenda.delayed_returns == (
        DelayedReturn("TH-E-delayed", d("2026-06-01"), False, TH, d("2026-07-31"), 115),
    )


def test_returns_past_their_day_without_a_handover(agenda: Agenda) -> None:
    assert agenda.missing_handovers == (
        MissingHandover(
            "TH-F-nohandover", d("2026-11-10"), CrossingPoint.MaeSot_Myawaddy, False, MM, d("2026-11-11"), 12
        ),
    )


def test_follow_ups_one_row_per_missing_milestone_missed_first(agenda: Agenda) -> None:
    at_risk = ReintegrationStatus.AtRisk
    assert agenda.follow_ups == (
        FollowUpDue("TH-H-missed", 3, d("2026-02-15"), None, False, MM, d("2026-05-15"), 192),
        FollowUpDue("TH-H-missed", 6, d("2026-02-15"), None, False, MM, d("2026-08-15"), 100),
        FollowUpDue("MM-G-atrisk", 6, d("2026-05-30"), at_risk, False, TH, d("2026-11-30"), 0),
        FollowUpDue(
            "TH-K-retrafficked",
            12,
            d("2025-12-01"),
            ReintegrationStatus.ReTrafficked,
            False,
            MM,
            d("2026-12-01"),
            0,
        ),
        FollowUpDue(
            "TH-J-lost", 12, d("2026-01-05"), ReintegrationStatus.LostContact, False, MM, d("2027-01-05"), 0
        ),
        FollowUpDue("TH-H-missed", 12, d("2026-02-15"), None, False, MM, d("2027-02-15"), 0),
    )
    # MM-G-atrisk's 12-month follow-up falls due on 2027-05-30, after the next meeting: not yet listed
    assert ("MM-G-atrisk", 12) not in {(row.case_id, row.months) for row in agenda.follow_ups}


def test_cases_needing_a_joint_decision_most_pressing_first(agenda: Agenda) -> None:
    assert agenda.joint_decisions == (
        JointDecision(
            "TH-K-retrafficked", DecisionReason.RE_TRAFFICKED, d("2026-06-01"), None, 6, False, MM, 0
        ),
        JointDecision("TH-J-lost", DecisionReason.LOST_CONTACT, d("2026-07-05"), None, 6, False, MM, 0),
        JointDecision(
            "TH-I-declined",
            DecisionReason.DECLINED,
            d("2026-07-21"),
            DeclineReason.FamilyNotTraced,
            None,
            False,
            TH,
            0,
        ),
        JointDecision(
            "TH-L-reflection", DecisionReason.REFLECTION_ENDED, d("2026-04-14"), None, None, False, TH, 223
        ),
        JointDecision("MM-G-atrisk", DecisionReason.AT_RISK, d("2026-08-29"), None, 3, False, TH, 0),
    )


def test_at_risk_cases_can_be_left_out_of_the_joint_decisions(
    events: list[Event], corridor: Corridor
) -> None:
    agenda = build_agenda(fold(events), corridor, as_of=AS_OF, at_risk=False)
    assert [row.case_id for row in agenda.joint_decisions] == [
        "TH-K-retrafficked",
        "TH-J-lost",
        "TH-I-declined",
        "TH-L-reflection",
    ]


def test_figures_of_the_period(agenda: Agenda) -> None:
    assert agenda.figures == Figures(
        identified=1,
        referred=4,  # B, C, D, I (E was referred before the period)
        accepted=1,  # E, 31 days after its referral
        declined=1,  # I, 20 days after its referral
        returned=1,  # G
        follow_ups=3,  # G 3 months, J 6 months, K 6 months
        children=1,
        median_days_to_answer=25.5,
    )


def test_figures_since_a_given_last_meeting(events: list[Event], corridor: Corridor) -> None:
    agenda = build_agenda(fold(events), corridor, as_of=AS_OF, last_meeting=d("2026-10-01"))
    assert agenda.last_meeting == d("2026-10-01")
    assert [row.case_id for row in agenda.new_cases] == ["TH-A-new"]
    assert agenda.figures == Figures(1, 1, 0, 0, 0, 0, 1, None)


def test_a_case_of_another_corridor_never_appears(events: list[Event], agenda: Agenda) -> None:
    states = fold(events)
    assert "TH-X-laos" in states
    assert "TH-X-laos" not in agenda.case_ids
    laos = default_agreements().corridor("TH", "LA")
    assert laos is not None
    assert build_agenda(states, laos, as_of=AS_OF).case_ids == {"TH-X-laos"}


def test_a_case_closed_by_both_countries_is_not_discussed(agenda: Agenda) -> None:
    assert "TH-Y-closed" not in agenda.case_ids


def test_as_of_a_past_moment_shows_the_cases_as_they_stood_then(
    events: list[Event], corridor: Corridor
) -> None:
    agenda = build_agenda(as_of(events, PAST), corridor, as_of=PAST)

    assert agenda.last_meeting == d("2026-03-20")
    assert [row.case_id for row in agenda.new_cases] == [
        "TH-B-late",
        "TH-C-waiting",
        "TH-D-later",
        "TH-E-delayed",
        "TH-I-declined",
    ]
    assert [(row.case_id, row.days_overdue) for row in agenda.awaiting_answer] == [
        ("TH-D-later", 6),
        ("TH-B-late", 0),  # C was referred only on 11-10
    ]
    # F's return notice came on 10-01: on 09-20 it was still a delayed repatriation, not a missing handover
    assert [(row.case_id, row.days_overdue) for row in agenda.delayed_returns] == [
        ("TH-F-nohandover", 93),
        ("TH-E-delayed", 51),
    ]
    assert agenda.missing_handovers == ()
    assert "TH-A-new" not in agenda.case_ids
    assert agenda.figures.identified == 5


def test_cases_identified_after_as_of_are_left_out_even_from_current_states(
    events: list[Event], corridor: Corridor
) -> None:
    agenda = build_agenda(fold(events), corridor, as_of=PAST)
    assert "TH-A-new" not in agenda.case_ids


def test_as_of_must_be_timezone_aware(events: list[Event], corridor: Corridor) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_agenda(fold(events), corridor, as_of=AS_OF.replace(tzinfo=None))


def test_the_agenda_is_deterministic(events: list[Event], corridor: Corridor, agenda: Agenda) -> None:
    """Events of different cases in another order, and the states in another order, change nothing."""
    by_case = sorted(events, key=lambda event: (event.envelope.case_id, event.envelope.occurred_at))
    states = dict(reversed(fold(by_case).items()))
    assert list(states) != list(fold(events))
    assert build_agenda(states, corridor, as_of=AS_OF) == agenda


# -- rendering ------------------------------------------------------------------------------------------


def test_every_language_has_every_phrase_with_the_same_placeholders() -> None:
    table = _all_phrases()
    assert set(LANGUAGES) <= set(table)
    english = table["en"]

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for language in LANGUAGES:
        assert set(table[language]) == set(english), language
        for key, text in english.items():
            assert fields(table[language][key]) == fields(text), (language, key)


def test_a_missing_phrase_falls_back_to_english() -> None:
    english = phrases_for("en")
    partial = type(english)("my", {"title": "ခေါင်းစဉ်"}, english.fallback)
    assert partial("title") == "ခေါင်းစဉ်"
    assert partial("sections.figures") == "Figures for the period"


def test_markdown_in_burmese(agenda: Agenda) -> None:
    markdown = to_markdown(agenda, "my")
    say = phrases_for("my")

    for number, key in enumerate(
        [
            "new_cases",
            "awaiting_answer",
            "delayed_returns",
            "missing_handovers",
            "follow_ups",
            "joint_decisions",
            "figures",
        ],
        start=1,
    ):
        assert f"## {number}. {say(f'sections.{key}')}\n" in markdown
    assert "## 6. ပူးတွဲဆုံးဖြတ်ရန် လိုအပ်သော အမှုတွဲများ" in markdown
    assert "မြန်မာ" in markdown  # Myanmar, from the CountryCode labels
    assert "**70 ရက် နောက်ကျ**" in markdown  # TH-D-later, overdue
    assert "| TH-C-waiting | 2026-11-10 | အကြောင်းမပြန်ရသေး |" in markdown
    assert "Referrals awaiting" not in markdown


def test_markdown_in_english_names_codes_and_lateness(agenda: Agenda) -> None:
    markdown = to_markdown(agenda, "en")
    assert "## 2. Referrals awaiting an answer" in markdown
    assert "**overdue by 70 days**" in markdown
    assert "due in 8 days" in markdown  # TH-C-waiting, due 12-01
    assert "| TH-I-declined | Referral declined: Family not traced | 2026-07-21 |" in markdown
    assert "Latest follow-up (6 months): Re-trafficked" in markdown
    assert "| Median days from referral to answer | 25.5 |" in markdown
    assert "TH-X-laos" not in markdown


@pytest.mark.parametrize("language", LANGUAGES)
def test_html_is_a_complete_standalone_document(agenda: Agenda, language: str) -> None:
    page = to_html(agenda, language)

    assert page.startswith("<!DOCTYPE html>\n")
    assert f'<html lang="{language}">' in page
    assert '<meta charset="utf-8">' in page
    assert "<title>" in page
    assert "<style>" in page
    assert page.rstrip().endswith("</html>")
    assert "http://" not in page
    assert "https://" not in page
    assert not re.search(r"<link|<script|<img|@import|url\(", page)
    assert "sans-serif" in page  # the generic family ends the font stack
    assert phrases_for(language)("sections.joint_decisions") in page


def test_html_escapes_and_marks_overdue_rows(agenda: Agenda) -> None:
    page = to_html(agenda, "th")
    assert '<tr class="overdue"><td class="case late">TH-D-later</td>' in page
    assert "เลยกำหนด 70 วัน" in page


def test_an_unknown_language_is_an_error(agenda: Agenda) -> None:
    with pytest.raises(ConfigError, match="no labels for language"):
        to_markdown(agenda, "xx")


def test_pdf(agenda: Agenda) -> None:
    pytest.importorskip("weasyprint", reason="weasyprint is not installed: the PDF cannot be rendered")
    pdf = to_pdf(agenda, "my")
    assert pdf.startswith(b"%PDF")
