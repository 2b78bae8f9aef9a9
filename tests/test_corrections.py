"""Corrections and retractions as compensating events (pure): the router's rules, the partner is told,
projections and agendas show the corrected state, an as-of view what was known then."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.contract import EventCorrected, ReceiptStatus
from hub.errors import InvalidEvent
from hub.events import Event, parse_event
from hub.routing import Reason
from projections.agenda.build import build_agenda
from projections.cases.fold import CaseState, Stage, as_of, effective_events, fold, known_as_of, state_as_of
from projections.obligations.rules import deadlines_for, obligations
from projections.stats.aggregate import regional_statistics
from tests.strategies import NOW
from tests.test_routing import AGREEMENTS, TH_MM, Case, Hub, inbox, sent_by


def amending(kind: str, target: Event, sender: str, *, at: datetime | None = None, **fields: Any) -> Event:
    case = TH_MM
    receiver = case.home if sender == case.origin else case.origin
    moment = at or NOW - timedelta(minutes=10)
    record: dict[str, Any] = {
        "envelope": {
            "event_id": uuid.uuid4(),
            "event_type": kind,
            "schema_version": 2,
            "case_id": target.envelope.case_id,
            "occurred_at": moment,
            "recorded_at": moment,
            **sent_by(sender, receiver),
            "correlation_id": None,
            "causation_id": target.envelope.event_id,
        },
        "target_event_id": target.envelope.event_id,
        **fields,
    }
    return parse_event(record, now=NOW)


def corrected(target: Event, sender: str, at: datetime | None = None, **changes: Any) -> Event:
    arrays: dict[str, list[dict[str, str]]] = {}
    for name, (array, value) in changes.items():
        arrays.setdefault(array, []).append({"field": name, "value_json": json.dumps(value)})
    return amending("EventCorrected", target, sender, at=at, **arrays)


def retracted(target: Event, sender: str, reason: str = "SentInError") -> Event:
    return amending("EventRetracted", target, sender, reason=reason)


def _story() -> list[Event]:
    case = TH_MM
    return [
        case.identified(
            envelope={"occurred_at": NOW - timedelta(days=20), "recorded_at": NOW - timedelta(days=20)}
        ),
        case.requested(
            envelope={"occurred_at": NOW - timedelta(days=19), "recorded_at": NOW - timedelta(days=19)}
        ),
        case.acknowledged(
            envelope={"occurred_at": NOW - timedelta(days=18), "recorded_at": NOW - timedelta(days=18)}
        ),
        case.answered(
            envelope={"occurred_at": NOW - timedelta(days=10), "recorded_at": NOW - timedelta(days=10)}
        ),
        case.return_notice(
            envelope={"occurred_at": NOW - timedelta(days=5), "recorded_at": NOW - timedelta(days=5)}
        ),
    ]


# -- the router ------------------------------------------------------------------------------------


def test_a_correction_by_the_sender_reaches_the_partner_with_its_withheld_parts_minimised() -> None:
    hub = Hub.v2()
    story = _story()
    for event in story:
        assert hub.submit(event).status == ReceiptStatus.Accepted
    notice = story[-1]

    correction = corrected(
        notice,
        "TH",
        planned_return_on=("core_changes", "2027-01-20"),
        personal=("personal_changes", {"given_names": "Aung Ko", "family_name": "Win"}),
    )
    decision = hub.submit(correction)

    assert decision.status == ReceiptStatus.Accepted, decision.message
    [delivered] = inbox(decision)
    read = hub.read(delivered)
    assert isinstance(read, EventCorrected)
    assert read == correction  # TH->MM grants identity, and the person consented
    assert b"Aung Ko" not in delivered.value  # sealed like any personal data


def test_only_the_sender_of_an_event_corrects_or_retracts_it() -> None:
    hub = Hub.v2()
    story = _story()
    for event in story:
        hub.submit(event)
    answer = story[3]  # Myanmar's

    assert hub.submit(corrected(answer, "TH", services_offered=("needs_changes", ["Shelter"]))).reason == (
        Reason.NOT_PARTY
    )
    assert hub.submit(retracted(answer, "TH")).reason == Reason.NOT_PARTY


def test_a_target_outside_the_case_an_identification_or_a_retracted_event_cannot_be_amended() -> None:
    hub = Hub.v2()
    story = _story()
    for event in story:
        hub.submit(event)
    stranger = Case("TH-2026-000777", "TH", "MM").requested()

    assert hub.submit(retracted(stranger, "TH")).reason == Reason.OUT_OF_SEQUENCE
    assert hub.submit(retracted(story[0], "TH")).reason == Reason.OUT_OF_SEQUENCE
    assert hub.submit(retracted(story[4], "TH")).status == ReceiptStatus.Accepted
    again = hub.submit(retracted(story[4], "TH"))
    assert again.reason == Reason.OUT_OF_SEQUENCE
    assert "already retracted" in again.message


def test_a_retracted_answer_reopens_the_referral_for_a_new_answer() -> None:
    hub = Hub.v2()
    story = _story()[:4]
    for event in story:
        hub.submit(event)

    assert hub.submit(retracted(story[3], "MM")).status == ReceiptStatus.Accepted
    assert hub.states[TH_MM.case_id].referral == "acknowledged"
    declined = TH_MM.answered("Declined")
    assert hub.submit(declined).status == ReceiptStatus.Accepted


def test_a_value_a_sequence_rule_reads_cannot_be_corrected() -> None:
    story = _story()
    with pytest.raises(InvalidEvent, match="decision cannot be corrected"):
        corrected(story[3], "MM", decision=("core_changes", "Declined"))


# -- projections -----------------------------------------------------------------------------------


def test_the_projection_shows_the_corrected_state_and_as_of_what_was_known_then() -> None:
    story = _story()
    notice = story[-1]
    correction_at = NOW - timedelta(days=1)
    correction = corrected(notice, "TH", at=correction_at, planned_return_on=("core_changes", "2027-02-01"))

    now_state = fold([*story, correction])[TH_MM.case_id]
    before = as_of([*story, correction], correction_at - timedelta(hours=1))[TH_MM.case_id]

    assert now_state.planned_return_on == date(2027, 2, 1)
    assert before.planned_return_on == date(2027, 1, 15)
    [amendment] = now_state.amendments
    assert amendment.kind == "corrected"
    assert amendment.fields == ("planned_return_on",)

    # and the next CMM agenda lists it
    corridor = AGREEMENTS.corridor("TH", "MM")
    assert corridor is not None
    agenda = build_agenda(fold([*story, correction]), corridor, as_of=NOW, last_meeting=date(2026, 10, 1))
    [row] = agenda.amendments
    assert (row.case_id, row.kind, row.fields) == (TH_MM.case_id, "corrected", ("planned_return_on",))


def test_a_retraction_undoes_its_event_in_the_projection() -> None:
    story = _story()
    state = fold([*story, retracted(story[-1], "TH")])[TH_MM.case_id]
    assert state.stage == Stage.ACCEPTED
    assert state.planned_return_on is None

    answer_retracted = fold([*story[:4], retracted(story[3], "MM")])[TH_MM.case_id]
    assert answer_retracted.stage == Stage.ACKNOWLEDGED
    assert answer_retracted.decision is None


@settings(max_examples=30, deadline=None)
@given(
    order=st.permutations(range(3)),
    repeat=st.integers(1, 3),
)
def test_amendments_fold_idempotently(order: list[int], repeat: int) -> None:
    story = _story()
    amendments = [
        corrected(story[-1], "TH", planned_return_on=("core_changes", "2027-02-01")),
        corrected(story[0], "TH", exploitation_types=("core_changes", ["ForcedLabour", "ForcedCriminality"])),
        retracted(story[2], "MM"),
    ]
    once = fold([*story, *(amendments[i] for i in order)])
    # an event applied again changes nothing, whichever of them and however often
    again = fold([*story, *(amendments[i] for i in order)] * repeat)
    assert again == once
    state = once[TH_MM.case_id]
    assert state.planned_return_on == date(2027, 2, 1)
    assert [e.value for e in state.exploitation_types] == ["ForcedLabour", "ForcedCriminality"]
    assert len(state.amendments) == 3
    assert datetime.now(UTC) > state.last_event_at


# -- the fold of the effective events ---------------------------------------------------------------


def _at(days_ago: float) -> dict[str, datetime]:
    moment = NOW - timedelta(days=days_ago)
    return {"occurred_at": moment, "recorded_at": moment}


def _long_story() -> list[Event]:
    """The case up to two follow-ups, each event a day after the one before."""
    return [
        *_story(),
        TH_MM.handover(envelope=_at(4)),
        TH_MM.follow_up(3, envelope=_at(3)),
        TH_MM.follow_up(6, envelope=_at(2), status="AtRisk"),
    ]


def _new_return_day(notice: Event, day: str, *, hours_ago: int) -> Event:
    moment = NOW - timedelta(hours=hours_ago)
    return corrected(notice, "TH", at=moment, planned_return_on=("core_changes", day))


def _without_history(states: dict[str, CaseState]) -> dict[str, CaseState]:
    # the history is the case's events in arrival order: everything else must not depend on it
    return {case_id: replace(state, history=()) for case_id, state in states.items()}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_where_amendments_arrive_does_not_matter(data: st.DataObject) -> None:
    base = _long_story()
    amendments = [
        corrected(
            base[4], "TH", at=NOW - timedelta(hours=5), planned_return_on=("core_changes", "2027-02-01")
        ),
        corrected(
            base[4], "TH", at=NOW - timedelta(hours=4), planned_return_on=("core_changes", "2027-02-03")
        ),
        corrected(base[6], "MM", at=NOW - timedelta(hours=3), status=("core_changes", "LostContact")),
        retracted(base[7], "MM"),
        retracted(base[2], "MM"),
    ]
    chosen = data.draw(st.lists(st.sampled_from(amendments), unique_by=lambda e: e.envelope.event_id))
    mixed = list(base)
    for amendment in chosen:  # anywhere after the identification, even before its target
        mixed.insert(data.draw(st.integers(1, len(mixed))), amendment)

    in_log_order = fold([*base, *chosen])
    assert _without_history(fold(mixed)) == _without_history(in_log_order)
    # and the state is the fold of the effective events, plus the amendments it has seen
    effective = fold(effective_events([*base, *chosen]))[TH_MM.case_id]
    state = in_log_order[TH_MM.case_id]
    facts = {"amendments": (), "applied": frozenset(), "history": (), "last_event_at": NOW}
    assert replace(state, **facts) == replace(effective, **facts)  # type: ignore[arg-type]
    assert len(state.amendments) == len(chosen)
    # applying any of them again changes nothing
    assert fold(mixed, fold(mixed)) == fold(mixed)


def test_the_later_recorded_correction_of_a_field_wins() -> None:
    base = _story()
    first = corrected(
        base[4], "TH", at=NOW - timedelta(hours=5), planned_return_on=("core_changes", "2027-02-01")
    )
    second = corrected(
        base[4], "TH", at=NOW - timedelta(hours=4), planned_return_on=("core_changes", "2027-02-03")
    )
    for order in ([first, second], [second, first]):
        assert fold([*base, *order])[TH_MM.case_id].planned_return_on == date(2027, 2, 3)


def test_a_retracted_follow_up_restores_the_one_it_replaced() -> None:
    base = _long_story()[:7]  # the 3-month follow-up recorded
    mistaken = TH_MM.follow_up(3, envelope=_at(1), status="ReTrafficked")
    state = fold([*base, mistaken])[TH_MM.case_id]
    assert [f.status.value for f in state.follow_ups] == ["ReTrafficked"]

    state = fold([*base, mistaken, retracted(mistaken, "MM", reason="WrongCase")])[TH_MM.case_id]
    assert [f.status.value for f in state.follow_ups] == ["Reintegrating"]
    assert [a.target_type for a in state.amendments] == ["FollowUpRecorded"]


def test_a_retracted_return_notice_after_the_handover_keeps_the_handover() -> None:
    base = _long_story()[:6]
    state = fold([*base, retracted(base[4], "TH")])[TH_MM.case_id]
    assert state.stage == Stage.HANDED_OVER
    assert (state.planned_return_on, state.return_notice_at) == (None, None)


def test_the_known_as_of_view_waits_for_the_correction_to_be_recorded() -> None:
    base = _story()
    # the correction is of something that happened 2 days ago, recorded only today
    correction = amending(
        "EventCorrected",
        base[4],
        "TH",
        at=NOW - timedelta(days=2),
        core_changes=[{"field": "planned_return_on", "value_json": '"2027-02-01"'}],
    )
    correction = correction.model_copy(
        update={"envelope": correction.envelope.model_copy(update={"recorded_at": NOW - timedelta(hours=1)})}
    )
    events = [*base, correction]
    yesterday = NOW - timedelta(days=1)

    assert known_as_of(events, yesterday)[TH_MM.case_id].planned_return_on == date(2027, 1, 15)
    assert as_of(events, yesterday)[TH_MM.case_id].planned_return_on == date(2027, 2, 1)
    assert fold(events)[TH_MM.case_id].planned_return_on == date(2027, 2, 1)
    assert state_as_of is known_as_of


def test_a_retracted_identification_leaves_no_case_to_count_or_owe() -> None:
    # the router refuses it (a case is closed instead); a replay of an older log may still hold one
    base = _story()[:2]
    states = fold([*base, retracted(base[0], "TH", reason="WrongPerson")])
    state = states[TH_MM.case_id]

    assert state.void
    assert obligations(state, deadlines_for(state, AGREEMENTS)) == []
    assert regional_statistics(states.values(), AGREEMENTS).people.value == 0
    corridor = AGREEMENTS.corridor("TH", "MM")
    assert corridor is not None
    agenda = build_agenda(states, corridor, as_of=NOW, last_meeting=date(2026, 10, 1))
    assert agenda.new_cases == ()
    assert [(row.kind, row.event_type) for row in agenda.amendments] == [("retracted", "VictimIdentified")]


def test_the_case_keeps_no_personal_data_of_its_events() -> None:
    base = _story()
    correction = corrected(base[4], "TH", personal=("personal_changes", {"given_names": "Aung Ko"}))
    state = fold([*base, correction])[TH_MM.case_id]

    assert state.history
    assert not any("given_names" in text or "Aung Ko" in text for _, text in state.history)
    assert CaseState.from_json(state.to_json()) == state
