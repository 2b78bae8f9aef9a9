"""The simulation's plans, pure: deterministic, causal, valid at their time, anchored to now, with
the failure modes and doors they promise; the mass release; the logins file; the API door's
requests and the run loop against doors that only record."""

from __future__ import annotations

import asyncio
import itertools
import json
import stat
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.importer.convert import SourceRow, convert_row
from hub.agreements import load_agreements
from hub.codec import Codec
from hub.contract import (
    CaseClosed,
    ClosureReason,
    ConsentChanged,
    EventCorrected,
    FollowUpRecorded,
    HandoverCompleted,
    ReferralAnswered,
    ReferralDecision,
    ReintegrationStatus,
    ReturnNoticeIssued,
    TraffickingStatus,
    VictimIdentified,
)
from hub.events import Event, event_problems
from hub.routing import CaseRoute, Incoming, Router
from hub.simulation.exports import export_mapping, export_row
from hub.simulation.logins import DemoLogins, Login
from hub.simulation.mass_release import HOME_COUNTRIES, mass_release, release_counts
from hub.simulation.plan import DOORS, Door, Scheduled, door_of, live_plan
from hub.simulation.run import Doors, api_requests, events_url, run
from hub.topics import nrm_events
from projections.cases.fold import fold
from projections.obligations.rules import deadlines_for, obligations

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
TEN = {"TH", "MM", "KH", "LA", "VN", "MY", "ID", "PH", "CN", "JP"}


@cache
def _plan(seed: int = 7, cases: int = 200) -> list[Scheduled]:
    return live_plan(seed, NOW, cases=cases, run_tag="T1-")


@cache
def _release(people: int = 7000) -> list[Scheduled]:
    return mass_release(3, NOW, people=people, run_tag="M1-")


def _cases(plan: Sequence[Scheduled]) -> dict[str, list[Scheduled]]:
    found: dict[str, list[Scheduled]] = defaultdict(list)
    for item in plan:
        found[item.event.envelope.case_id].append(item)
    return found


def _routed(plan: Sequence[Scheduled]) -> Counter[str]:
    """Every event of the plan routed in its order by the router, on a clock at each event's time."""
    moment = [NOW]
    codec = Codec(clock=lambda: moment[0])
    router = Router(codec=codec, agreements=load_agreements())
    states: dict[str, CaseRoute] = {}
    outcomes: Counter[str] = Counter()
    for offset, item in enumerate(plan):
        moment[0] = item.at
        envelope = item.event.envelope
        country = envelope.source_country.value
        message = Incoming(
            country, nrm_events(country), 0, offset, envelope.case_id.encode(), codec.encode(item.event)
        )
        decision = router.route(message, states)
        if decision.state is not None and decision.case_id is not None:
            states[decision.case_id] = decision.state
        outcomes[decision.status.value if decision.reason is None else decision.reason.value] += 1
    return outcomes


# -- the live plan --------------------------------------------------------------------------------


def test_the_same_seed_and_now_give_the_same_plan_and_another_seed_another() -> None:
    assert live_plan(7, NOW, cases=40, run_tag="T1-") == live_plan(7, NOW, cases=40, run_tag="T1-")
    other = live_plan(8, NOW, cases=40, run_tag="T1-")
    assert [i.event.envelope.event_id for i in other] != [i.event.envelope.event_id for i in _plan(7, 40)]


def test_the_plan_is_sorted_and_each_case_keeps_its_order() -> None:
    plan = _plan()
    assert [item.at for item in plan] == sorted(item.at for item in plan)
    ids = [item.event.envelope.event_id for item in plan]
    assert len(set(ids)) == len(ids), "no event id twice"
    for items in _cases(plan).values():
        assert isinstance(items[0].event, VictimIdentified), "a case starts with its identification"
        for before, after in itertools.pairwise(items):
            assert after.event.envelope.causation_id == before.event.envelope.event_id
            assert after.event.envelope.occurred_at > before.at, "a step follows what the partner received"


def test_every_event_is_valid_at_its_time_and_never_dated_after_it() -> None:
    for item in _plan():
        envelope = item.event.envelope
        assert envelope.occurred_at <= envelope.recorded_at <= item.at
        event, problems = event_problems(json.loads(item.event.model_dump_json()), now=item.at)
        assert problems == []
        assert event == item.event


def test_the_router_accepts_every_event_of_the_plan_in_its_order() -> None:
    assert _routed(_plan()) == Counter({"Accepted": len(_plan())})


def test_the_plan_is_anchored_to_now_new_cases_and_deadlines_still_ahead() -> None:
    plan = _plan()
    opened = [items[0].event.envelope.occurred_at for items in _cases(plan).values()]
    assert any(NOW - timedelta(days=5) <= moment <= NOW for moment in opened), "cases opened in the last days"
    assert any(moment > NOW for moment in opened), "and cases opened during the run"
    assert sum(NOW - timedelta(days=45) <= m <= NOW + timedelta(days=30) for m in opened) > 0.8 * len(opened)
    assert max(item.at for item in plan) <= NOW + timedelta(days=30)
    agreements = load_agreements()
    states = fold(item.event for item in plan if item.at <= NOW)
    due = [o.due for state in states.values() for o in obligations(state, deadlines_for(state, agreements))]
    assert sum(NOW < moment <= NOW + timedelta(days=30) for moment in due) >= 20, (
        "deadlines fall due in the run"
    )
    assert any(moment < NOW for moment in due), "and some are overdue already"


def test_the_plan_goes_wrong_in_every_way_the_focal_points_see() -> None:
    plan = _plan()
    events = [item.event for item in plan]
    cases = _cases(plan)
    assert any(
        isinstance(e, ReferralAnswered) and e.decision is ReferralDecision.Declined and e.decline_reason
        for e in events
    )
    assert any(isinstance(e, EventCorrected) for e in events)
    assert any(isinstance(e, ConsentChanged) for e in events)
    assert any(isinstance(e, CaseClosed) and e.reason is ClosureReason.ConsentWithdrawn for e in events)
    statuses = {e.status for e in events if isinstance(e, FollowUpRecorded)}
    assert {ReintegrationStatus.LostContact, ReintegrationStatus.ReTrafficked} <= statuses
    # acknowledgements missing or slow: referrals with no acknowledgement, or one after 7 days
    late = 0
    for items in cases.values():
        kinds = {type(i.event).__name__: i.event.envelope.occurred_at for i in items}
        if "ReferralRequested" in kinds and kinds["ReferralRequested"] < NOW - timedelta(days=8):
            acknowledged = kinds.get("ReferralAcknowledged")
            if acknowledged is None or acknowledged - kinds["ReferralRequested"] > timedelta(days=7):
                late += 1
    assert late >= 5
    notices = [e for e in events if isinstance(e, ReturnNoticeIssued)]
    assert any((e.planned_return_on - e.envelope.occurred_at.date()).days < 7 for e in notices), (
        "late notices"
    )
    follow_ups = [e for e in events if isinstance(e, FollowUpRecorded)]
    missed = [
        case
        for case, items in cases.items()
        if any(isinstance(i.event, FollowUpRecorded) and i.event.months_since_return == 6 for i in items)
        and not any(isinstance(i.event, FollowUpRecorded) and i.event.months_since_return == 3 for i in items)
    ]
    assert follow_ups
    assert missed, "3-month follow-ups never recorded"


def test_the_doors_cover_the_ten_countries_and_all_three_doors() -> None:
    assert set(DOORS) == TEN
    assert set(DOORS.values()) == set(Door)
    plan = _plan()
    assert {item.event.envelope.source_country.value for item in plan} == TEN
    assert all(item.door is door_of(item.event.envelope.source_country.value) for item in plan)
    assert {item.door for item in plan} == set(Door)


def test_the_import_doors_rows_become_the_very_events_of_the_plan() -> None:
    imported = [item for item in _plan() if item.door is Door.IMPORT]
    assert imported
    mapping = export_mapping()
    for line, item in enumerate(imported, start=1):
        country = item.event.envelope.source_country.value
        assert item.at.hour == 10, "the export runs once a day"
        converted = convert_row(
            SourceRow(line, export_row(item.event)), mapping, country=country, now=item.at
        )
        assert converted == item.event


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    now=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
)
def test_any_seed_and_now_give_a_plan_the_router_takes_whole(seed: int, now: datetime) -> None:
    plan = live_plan(seed, now, cases=25, run_tag="H-")
    assert plan == live_plan(seed, now, cases=25, run_tag="H-")
    for item in plan:
        assert event_problems(json.loads(item.event.model_dump_json()), now=item.at)[1] == []
    assert set(_routed(plan)) == {"Accepted"}


# -- the mass release -----------------------------------------------------------------------------


def test_a_release_counts_every_person_once_across_at_least_twelve_nationalities() -> None:
    counts = release_counts(7000)
    assert sum(counts.values()) == 7000
    assert len(counts) >= 12
    assert min(counts.values()) >= 1
    assert max(counts, key=counts.__getitem__) == "CN"
    assert sum(release_counts(20).values()) == 20
    release = _release()
    people = {i.event.envelope.case_id: i.event for i in release if isinstance(i.event, VictimIdentified)}
    assert len(people) == 7000
    assert len({e.nationality for e in people.values()}) >= 12
    assert mass_release(3, NOW, people=200, run_tag="M1-") == mass_release(3, NOW, people=200, run_tag="M1-")


def test_a_release_screens_presumed_victims_first_and_refers_each_to_their_home_country() -> None:
    for items in _cases(_release()).values():
        first = items[0].event
        assert isinstance(first, VictimIdentified)
        assert first.status is TraffickingStatus.PossibleVictimOfTrafficking
        assert first.envelope.occurred_at - NOW < timedelta(days=6), "everyone is screened within days"
        assert {
            i.event.envelope.destination_country
            for i in items
            if i.event.envelope.source_country.value == "TH"
        } == {first.nationality}
    homes = {home.country for home in HOME_COUNTRIES}
    agreements = load_agreements()
    assert all(agreements.terms("TH", country) and agreements.terms(country, "TH") for country in homes)


def test_a_release_returns_people_in_waves_over_days() -> None:
    handovers: dict[str, Counter[date]] = defaultdict(Counter)
    for item in _release():
        if isinstance(item.event, HandoverCompleted):
            handovers[item.event.envelope.source_country.value][item.event.handed_over_on] += 1
    chinese = handovers["CN"]
    assert len(chinese) >= 4, "the largest group goes home over several days"
    assert max(chinese.values()) >= 200, "a flight takes hundreds at once"
    days = sorted({day for per_day in handovers.values() for day in per_day})
    assert (days[-1] - days[0]).days >= 14


def test_a_smaller_release_is_valid_and_routed_whole() -> None:
    release = mass_release(5, NOW, people=400, run_tag="M2-")
    for item in release:
        assert event_problems(json.loads(item.event.model_dump_json()), now=item.at)[1] == []
    assert _routed(release) == Counter({"Accepted": len(release)})


# -- logins and the doors -------------------------------------------------------------------------


def _logins() -> DemoLogins:
    return DemoLogins(
        api_url="http://127.0.0.1:8080/v1",
        dashboard_url="http://127.0.0.1:8080/",
        logins=[
            Login(
                country="TH", role="national-system", agency="TH-DSDW", token="tok-th", label="Thailand NRM"
            ),
            Login(country="MY", role="national-system", agency=None, token="tok-my", label="Malaysia NRM"),
            Login(
                country="TH", role="focal-point", agency=None, token="tok-th-fp", label="Thailand focal point"
            ),
        ],
    )


def test_logins_are_saved_owner_only_and_load_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "logins.json"
    _logins().save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = DemoLogins.load(path)
    assert loaded == _logins()
    assert loaded.token_of("TH", "focal-point") == "tok-th-fp"
    _logins().save(path)  # replaced whole
    assert [p.name for p in path.parent.iterdir()] == ["logins.json"]


def test_the_api_door_posts_batches_per_country_with_its_token() -> None:
    events = [i.event for i in _plan() if i.event.envelope.source_country.value in ("TH", "MY")]
    requests = api_requests(events, _logins(), batch=50)
    assert all(len(r.body["events"]) <= 50 for r in requests)
    assert {r.country: r.token for r in requests} == {"TH": "tok-th", "MY": "tok-my"}
    sent = [document for r in requests for document in r.body["events"]]
    assert sorted(d["envelope"]["event_id"] for d in sent) == sorted(str(e.envelope.event_id) for e in events)
    assert {d["envelope"]["source_agency"] for d in sent if d["envelope"]["source_country"] == "TH"} == {
        "TH-DSDW"
    }
    assert events_url("http://h:1/v1") == events_url("http://h:1/") == "http://h:1/v1/events"


class _Recording:
    def __init__(self, log: list[tuple[Door, list[Event]]], door: Door) -> None:
        self.log, self.door = log, door

    async def publish(self, events: Sequence[Event]) -> int:
        self.log.append((self.door, list(events)))
        return len(events)

    async def close(self) -> None:
        return None


def test_the_run_publishes_what_is_due_at_once_and_the_rest_on_the_clock() -> None:
    plan = live_plan(2, NOW, cases=30, run_tag="R-", horizon=timedelta(days=2))
    sent: list[tuple[Door, list[Event]]] = []
    doors = Doors({door: _Recording(sent, door) for door in Door}, settle=0.05)
    started = asyncio.get_event_loop_policy().new_event_loop()
    try:
        begin = started.time()
        # a day of the plan per real second
        published = started.run_until_complete(
            run(
                plan,
                clock=lambda: NOW + (started.time() - begin) * timedelta(days=1),
                doors=doors,
                stop=asyncio.Event(),
            )
        )
    finally:
        started.close()
    assert published == len(plan)
    order = [event for _, batch in sent for event in batch]
    assert sorted(e.envelope.event_id for e in order) == sorted(i.event.envelope.event_id for i in plan)
    for items in _cases(plan).values():
        wanted = [i.event.envelope.event_id for i in items]
        assert [
            e.envelope.event_id for e in order if e.envelope.case_id == items[0].event.envelope.case_id
        ] == wanted
    assert all(door is door_of(e.envelope.source_country.value) for door, batch in sent for e in batch)


def test_the_run_stops_within_half_a_second() -> None:
    plan = live_plan(2, NOW, cases=10, run_tag="R-")

    async def scenario() -> float:
        stop = asyncio.Event()
        doors = Doors({door: _Recording([], door) for door in Door})
        task = asyncio.create_task(run(plan, clock=lambda: NOW, doors=doors, stop=stop))
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        stop.set()
        await asyncio.wait_for(task, 2)
        return loop.time() - begin

    assert asyncio.run(scenario()) < 0.6


@pytest.mark.parametrize("people", [13, 1000])
def test_release_counts_add_up(people: int) -> None:
    assert sum(release_counts(people).values()) == people
