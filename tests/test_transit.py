"""A transit case end to end (pure): a Lao man identified in Malaysia goes home overland through
Thailand. Each country's inbox holds exactly what its agreements grant; the case state, obligations,
alerts and agendas include the transit country's steps."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hub.contract import CountryCode, DataCategory, Event, ObligationKind, ReceiptStatus, ReturnNoticeIssued
from hub.events import parse_event
from hub.routing import Decision, Reason
from projections.agenda.build import build_agenda
from projections.cases.fold import fold
from projections.obligations.rules import alerts_for, deadlines_for, obligations
from tests.strategies import NOW
from tests.test_routing import AGREEMENTS, Case, Hub, agency, inbox, sent_by

CASE = Case("MY-2026-TR0001", "MY", "LA")
LEGS = [
    {
        "from_country": "MY",
        "to_country": "TH",
        "crossing_point": "Sadao_BukitKayuHitam",
        "travel_mode": "Land",
    },
    {"from_country": "TH", "to_country": "LA", "crossing_point": "NongKhai_Vientiane", "travel_mode": "Land"},
]


def transit(change: str = "Added", sender: str = "MY", *, case: Case = CASE, country: str = "TH") -> Event:
    receiver = case.home if sender == case.origin else case.origin
    occurred = NOW - timedelta(hours=1)
    return parse_event(
        {
            "envelope": {
                "event_id": uuid.uuid4(),
                "event_type": "TransitPartyChanged",
                "schema_version": 2,
                "case_id": case.case_id,
                "occurred_at": occurred,
                "recorded_at": occurred,
                **sent_by(sender, receiver),
                "correlation_id": None,
                "causation_id": None,
            },
            "transit_country": country,
            "transit_change": change,
            "crossing_points": ["Sadao_BukitKayuHitam", "NongKhai_Vientiane"],
        },
        now=NOW,
    )


def _run(hub: Hub, events: list[Event]) -> tuple[list[Decision], dict[str, list[Any]]]:
    decisions, inboxes = [], defaultdict(list)
    for event in events:
        decision = hub.submit(event)
        assert decision.status == ReceiptStatus.Accepted, (type(event).__name__, decision.message)
        decisions.append(decision)
        for out in inbox(decision):
            country = out.topic.split(".")[2].upper()
            inboxes[country].append(hub.wire.open(out.value, reader=country))
    return decisions, inboxes


def _story() -> list[Event]:
    return [
        CASE.identified(),
        CASE.requested(),
        CASE.acknowledged(),
        CASE.answered(),
        transit(),
        CASE.return_notice(legs=LEGS, crossing_point="NongKhai_Vientiane"),
        CASE.handover(crossing_point="NongKhai_Vientiane"),
        CASE.follow_up(3),
    ]


def test_each_country_of_a_transit_case_receives_exactly_what_its_agreements_grant() -> None:
    hub = Hub.v2()
    events = _story()

    decisions, inboxes = _run(hub, events)

    kinds = {country: [type(o.event).__name__ for o in opened] for country, opened in inboxes.items()}
    # the home country gets the whole exchange; the host gets the home country's answers
    assert kinds["LA"] == [
        "VictimIdentified",
        "ReferralRequested",
        "TransitPartyChanged",
        "ReturnNoticeIssued",
    ]
    assert kinds["MY"] == [
        "ReferralAcknowledged",
        "ReferralAnswered",
        "HandoverCompleted",
        "FollowUpRecorded",
    ]
    # the transit country only what concerns the crossing, from the moment it takes part
    assert kinds["TH"] == [
        "TransitPartyChanged",
        "ReturnNoticeIssued",
        "HandoverCompleted",
        "FollowUpRecorded",
    ]
    assert "TH" in decisions[5].message  # the receipt names every country the notice went to
    # the transit country reads the route and what MY->TH and LA->TH both grant, nothing more
    notice = next(o for o in inboxes["TH"] if isinstance(o.event, ReturnNoticeIssued))
    assert isinstance(notice.event, ReturnNoticeIssued)
    assert [leg.to_country.value for leg in notice.event.legs] == ["TH", "LA"]
    both = AGREEMENTS.terms("MY", "TH").grants & AGREEMENTS.terms("LA", "TH").grants  # type: ignore[union-attr]
    assert set(notice.read) <= {category.value for category in both}
    # it may open the sealed identity only because both agreements and the consent grant it
    assert (DataCategory.PersonalIdentity in both) == ("TH" in hub.keys.readers(CASE.case_id))
    # and the origin's signature verifies on its thinned copy
    assert notice.signer == "MY"


def test_the_transit_country_cannot_be_a_party_and_is_removed_by_an_event() -> None:
    hub = Hub.v2()
    _run(hub, _story()[:5])

    # a party cannot be made a transit party
    party = transit(country="LA")
    assert hub.submit(party).reason == Reason.NOT_PARTY

    # removed, it receives nothing more
    assert hub.submit(transit("Removed")).status == ReceiptStatus.Accepted
    assert hub.states[CASE.case_id].transit == frozenset()
    notice = hub.submit(CASE.return_notice(legs=LEGS))
    assert [out.topic for out in inbox(notice)] == ["lintas.focal.la.inbox"]
    # and removing it again is out of sequence
    assert hub.submit(transit("Removed")).reason == Reason.OUT_OF_SEQUENCE


def test_the_case_state_obligations_alerts_and_agenda_include_the_transit_steps() -> None:
    events = _story()[:6]  # up to the return notice: the handover is owed
    state = fold(events)[CASE.case_id]

    assert {country.value for country in state.transit} == {"TH"}
    assert [leg.from_country.value for leg in state.legs] == ["MY", "TH"]
    owed = obligations(state, deadlines_for(state, AGREEMENTS))
    handover = next(o for o in owed if o.kind.value == "ConfirmHandover")
    assert [country.value for country in handover.also] == ["TH"]
    assert "through TH" in handover.detail
    due = handover.due + timedelta(hours=1)
    alerts = [a for a in alerts_for(state, deadlines_for(state, AGREEMENTS), due) if a.obligation == handover]
    assert alerts
    assert {country.value for country in alerts[0].recipients} == {"LA", "MY", "TH"}

    # Thailand's agenda with Malaysia lists the case it is a transit country for
    corridor = AGREEMENTS.corridor("MY", "TH")
    assert corridor is not None
    agenda = build_agenda(
        fold(events), corridor, as_of=datetime(2026, 11, 30, tzinfo=UTC), last_meeting=date(2026, 1, 1)
    )
    [row] = agenda.transits
    assert (row.case_id, row.transit.value, row.home.value) == (CASE.case_id, "TH", "LA")
    assert "Sadao_BukitKayuHitam" in row.route


def test_a_transit_party_event_needs_an_agreement_with_the_transit_country() -> None:
    hub = Hub.v2()
    case = Case("TH-2026-TR0002", "TH", "MM")
    for step in (case.identified, case.requested, case.acknowledged, case.answered):
        hub.submit(step())
    # no corridor joins Thailand or Myanmar with Japan: Japan receives nothing of the case
    decision = hub.submit(transit("Added", "TH", case=case, country="JP"))
    assert decision.status == ReceiptStatus.Accepted
    assert [out.topic for out in inbox(decision)] == ["lintas.focal.mm.inbox"]
    assert agency("TH") == "TH-NRM"


def test_the_transit_country_owes_the_escort_between_its_crossings_until_the_handover() -> None:
    legs = [
        {**LEGS[0], "planned_on": "2027-01-15"},
        {**LEGS[1], "planned_on": "2027-01-16"},
    ]
    story = [*_story()[:5], CASE.return_notice(legs=legs, crossing_point="NongKhai_Vientiane")]
    state = fold(story)[CASE.case_id]
    deadlines = deadlines_for(state, AGREEMENTS)
    assert deadlines is not None

    [escort] = [o for o in obligations(state, deadlines) if o.kind == ObligationKind.EscortInTransit]
    assert (escort.owner.value, escort.waiting.value, escort.due.date()) == ("TH", "LA", date(2027, 1, 16))
    assert "from Sadao_BukitKayuHitam to NongKhai_Vientiane" in escort.detail
    # Thailand is alerted for its own step, as the owner
    [alert] = [
        a for a in alerts_for(state, deadlines, escort.due - timedelta(days=1)) if a.obligation == escort
    ]
    assert alert.recipients[0].value == "TH"

    # the handover at the Friendship Bridge settles it
    handed = fold([*story, CASE.handover(crossing_point="NongKhai_Vientiane")])[CASE.case_id]
    assert ObligationKind.EscortInTransit not in {o.kind for o in obligations(handed, deadlines)}


def test_the_case_forgets_a_removed_or_retracted_transit_country() -> None:
    story = _story()[:5]  # Thailand added as transit
    assert {c.value for c in fold(story)[CASE.case_id].transit} == {"TH"}

    removed = fold([*story, transit("Removed")])[CASE.case_id]
    assert removed.transit == frozenset()

    added = story[-1]
    retraction = parse_event(
        {
            "envelope": {
                **added.envelope.model_dump(),
                "event_id": uuid.uuid4(),
                "event_type": "EventRetracted",
            },
            "target_event_id": added.envelope.event_id,
            "reason": "SentInError",
        },
        now=NOW,
    )
    retracted = fold([*story, retraction])[CASE.case_id]
    assert retracted.transit == frozenset()
    # no step of the case is owed by Thailand any more
    notice = CASE.return_notice(legs=LEGS, crossing_point="NongKhai_Vientiane")
    after = fold([*story, retraction, notice])[CASE.case_id]
    owed = obligations(after, deadlines_for(after, AGREEMENTS))
    assert all(CountryCode.TH not in (o.owner, *o.also) for o in owed)
