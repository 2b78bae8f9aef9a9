"""The read store's contract, the same tests against every adapter (embedded SQLite, and a real
PostgreSQL server started for the module): the projector's batches of log records become rows in
one transaction with their positions, and the API's queries read them back, each country only its
own."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.api.audit import AuditRecord
from connectors.api.credentials import Credentials, Role
from connectors.readstore.projector import Applier
from connectors.readstore.store import ReadStore
from hub.codec import Codec
from hub.contract import (
    Alert,
    AlertLevel,
    CountryCode,
    EventType,
    ObligationKind,
    Receipt,
    ReceiptStatus,
)
from hub.events import Event, parse_event
from hub.headers import record_headers
from hub.topics import ACCEPTED_EVENTS, AUDIT, REGIONAL_STATS, alerts, focal_inbox, nrm_receipts
from projections.cases.fold import Stage
from tests.postgres import PostgresServer, postgres_fixture
from tests.test_codec import fisherman
from tests.test_stats_publication import sample_document
from tests.workers import national_systems

STORES = ["sqlite", "postgresql"]
#: Every event of the log happened in November 2026.
BASE = datetime(2026, 11, 1, tzinfo=UTC)
NOW = BASE + timedelta(days=30)
BANGKOK = ZoneInfo("Asia/Bangkok")


# -- the log -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """A log record as the projector reads it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: tuple[tuple[str, bytes], ...]
    value: bytes


@dataclass
class Log:
    """Records with offsets numbered per topic partition, as a broker would."""

    records: list[Record] = field(default_factory=list)
    _next: dict[tuple[str, int], int] = field(default_factory=dict)

    def append(
        self,
        topic: str,
        value: bytes,
        *,
        partition: int = 0,
        headers: Sequence[tuple[str, bytes]] = (),
        at: datetime = NOW,
    ) -> Record:
        offset = self._next.get((topic, partition), 0)
        self._next[(topic, partition)] = offset + 1
        record = Record(topic, partition, offset, int(at.timestamp() * 1000), tuple(headers), value)
        self.records.append(record)
        return record


def _envelope(event_type: str, case_id: str, source: str, home: str, occurred: datetime) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "case_id": case_id,
        "occurred_at": occurred,
        "recorded_at": occurred + timedelta(hours=1),
        "source_country": source,
        "source_agency": f"{source}-NRM",
        "destination_country": home,
    }


def identified(case_id: str, source: str, home: str, occurred: datetime) -> Event:
    envelope = _envelope("VictimIdentified", case_id, source, home, occurred)
    changes = {f"envelope__{name}": value for name, value in envelope.items()}
    return parse_event(fisherman(**changes, nationality=home), now=NOW)


def requested(case_id: str, source: str, home: str, occurred: datetime) -> Event:
    record = {
        "envelope": _envelope("ReferralRequested", case_id, source, home, occurred),
        "purposes": ["VerifyNationalityIdentity", "TraceFamily"],
        "urgency": "Routine",
        "respond_by": date(2026, 12, 20),
    }
    return parse_event(record, now=NOW)


def receipt(event: Event, status: ReceiptStatus, offset: int) -> bytes:
    envelope = event.envelope
    return Codec().encode(
        Receipt(
            status=status,
            message=f"{status.value.lower()}",
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            case_id=envelope.case_id,
            source_topic=f"lintas.nrm.{envelope.source_country.value.lower()}.events",
            source_partition=0,
            source_offset=offset,
            routed_to=() if envelope.destination_country is None else (envelope.destination_country,),
        )
    )


def alert(case_id: str, level: AlertLevel, owner: str, waiting: str, raised: datetime) -> bytes:
    return Codec().encode(
        Alert(
            alert_id=f"{case_id}/AcknowledgeReferral/{level.value}",
            obligation_id=f"{case_id}/AcknowledgeReferral",
            kind=ObligationKind.AcknowledgeReferral,
            level=level,
            case_id=case_id,
            due=BASE + timedelta(days=10),
            owner=CountryCode(owner),
            waiting=CountryCode(waiting),
            raised_at=raised,
        )
    )


def audited(request_id: str, country: str, cases: Sequence[str], at: datetime) -> bytes:
    return AuditRecord(
        request_id=request_id,
        at=at,
        principal=f"{country}/focal-point/-/0123456789abcdef",
        country=country,
        role=Role.FOCAL_POINT.value,
        agency=None,
        action="case.thread",
        cases=tuple(cases),
        sections=("CaseCore",),
        purpose="preparing the repatriation",
    ).to_json()


@dataclass
class Scenario:
    log: Log
    events: dict[str, Event]
    #: the inbox records of each country, in log order
    inbox: dict[str, list[Record]]

    @property
    def records(self) -> list[Record]:
        return self.log.records

    def event_id(self, name: str) -> str:
        return str(self.events[name].envelope.event_id)


#: The cases: two of Thailand's with Myanmar, one of Thailand's with Cambodia, one of Myanmar's.
THAI_MM, THAI_KH, MM_THAI, THAI_MM_2 = "TH-2026-0001", "TH-2026-0002", "MM-2026-0001", "TH-2026-0003"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    systems = national_systems(tmp_path_factory.mktemp("keys"))
    events = {
        "identified": identified(THAI_MM, "TH", "MM", BASE + timedelta(days=1)),
        "requested": requested(THAI_MM, "TH", "MM", BASE + timedelta(days=3)),
        "cambodia": identified(THAI_KH, "TH", "KH", BASE + timedelta(days=2)),
        "myanmar": identified(MM_THAI, "MM", "TH", BASE + timedelta(days=4)),
        "second": identified(THAI_MM_2, "TH", "MM", BASE + timedelta(days=5)),
    }
    encoded = {name: systems.encode(event) for name, event in events.items()}
    log = Log()
    # The hub's log: a case's events on one partition, in order.
    partition_of = {THAI_MM: 0, THAI_MM_2: 0, THAI_KH: 1, MM_THAI: 1}
    for name, event in events.items():
        log.append(ACCEPTED_EVENTS, encoded[name], partition=partition_of[event.envelope.case_id])
    inbox: dict[str, list[Record]] = {"MM": [], "KH": [], "TH": []}
    for name, home in [
        ("identified", "MM"),
        ("cambodia", "KH"),
        ("requested", "MM"),
        ("myanmar", "TH"),
        ("second", "MM"),
    ]:
        event = events[name]
        copy = log.append(
            focal_inbox(home),
            encoded[name],
            partition=1,
            headers=record_headers(event.envelope.model_dump()),
            at=event.envelope.occurred_at + timedelta(minutes=5),
        )
        inbox[home].append(copy)
    # Receipts: the first one accepted, then the same event sent again (a duplicate).
    log.append(nrm_receipts("TH"), receipt(events["identified"], ReceiptStatus.Accepted, 0))
    log.append(nrm_receipts("TH"), receipt(events["cambodia"], ReceiptStatus.Accepted, 1))
    log.append(nrm_receipts("TH"), receipt(events["identified"], ReceiptStatus.Duplicate, 2))
    log.append(nrm_receipts("MM"), receipt(events["myanmar"], ReceiptStatus.Accepted, 0))
    # Alerts go to the focal point that must act and to the one waiting.
    for level, day in [(AlertLevel.DueSoon, 8), (AlertLevel.Overdue, 11)]:
        raised = BASE + timedelta(days=day)
        log.append(alerts("MM"), alert(THAI_MM, level, "MM", "TH", raised), at=raised)
        log.append(alerts("TH"), alert(THAI_MM, level, "MM", "TH", raised), at=raised)
    log.append(alerts("KH"), alert(THAI_KH, AlertLevel.DueSoon, "KH", "TH", BASE + timedelta(days=9)))
    # Audit: one read of a thread, one of an agenda of two cases, one of no case.
    log.append(AUDIT, audited("req-1", "MM", [THAI_MM], BASE + timedelta(days=6)))
    log.append(AUDIT, audited("req-2", "TH", [THAI_MM, THAI_KH], BASE + timedelta(days=7)))
    log.append(AUDIT, audited("req-3", "TH", [], BASE + timedelta(days=7)))
    return Scenario(log, events, inbox)


# -- the stores ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    yield from postgres_fixture()


StoreFactory = Callable[[], ReadStore]


@pytest.fixture(params=STORES)
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Makes fresh, empty stores of one adapter (each its own SQLite file or PostgreSQL schema)."""
    made: list[ReadStore] = []

    def make() -> ReadStore:
        if request.param == "postgresql":
            server: PostgresServer = request.getfixturevalue("postgres")
            location = server.schema()
        else:
            location = str(tmp_path / f"read-{uuid.uuid4().hex[:8]}.sqlite")
        store = ReadStore(location).create()
        made.append(store)
        return store

    yield make
    for store in made:
        store.dispose()


@pytest.fixture
def store(new_store: StoreFactory) -> ReadStore:
    return new_store()


@pytest.fixture
def loaded(store: ReadStore, scenario: Scenario) -> ReadStore:
    """A store with the whole scenario applied, in one batch."""
    Applier(store, Codec()).apply(scenario.records)
    return store


def _ends(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    ends: dict[tuple[str, int], int] = {}
    for record in records:
        ends[(record.topic, record.partition)] = max(
            ends.get((record.topic, record.partition), 0), record.offset + 1
        )
    return ends


# -- queries -------------------------------------------------------------------------------------


def test_the_newest_receipt_of_an_event_wins_and_after_excludes_older(
    loaded: ReadStore, scenario: Scenario
) -> None:
    event_id = scenario.event_id("identified")
    newest = loaded.latest_receipt("TH", event_id)
    assert newest is not None
    assert newest.status == "Duplicate"
    assert newest.sender == "TH"
    assert newest.event_id == event_id
    assert newest.record["source_offset"] == 2
    assert newest.record["routed_to"] == ["MM"]
    # Only receipts after a sequence number: the duplicate is after the first, nothing after it.
    assert loaded.latest_receipt("TH", event_id, after=newest.seq) is None
    assert loaded.latest_receipt("TH", event_id, after=newest.seq - 1) == newest
    # A country's receipts are its own.
    assert loaded.latest_receipt("MM", event_id) is None
    assert loaded.latest_receipt("TH", str(uuid.uuid4())) is None
    myanmar = loaded.latest_receipt("MM", scenario.event_id("myanmar"))
    assert myanmar is not None
    assert myanmar.status == "Accepted"
    assert loaded.receipt_seq() == max(newest.seq, myanmar.seq)


def test_receipt_seq_is_zero_on_an_empty_store_and_grows_with_each_receipt(
    store: ReadStore, scenario: Scenario
) -> None:
    assert store.receipt_seq() == 0
    receipts = [r for r in scenario.records if r.topic.endswith(".receipts")]
    applier = Applier(store, Codec())
    seen = []
    for record in receipts:
        applier.apply([record])
        seen.append(store.receipt_seq())
    assert seen == sorted(set(seen))
    assert len(seen) == len(receipts)


def test_an_inbox_pages_by_cursor_and_limit_in_log_order(loaded: ReadStore, scenario: Scenario) -> None:
    everything = loaded.inbox_page("MM")
    assert [row.event_id for row in everything] == [
        scenario.event_id("identified"),
        scenario.event_id("requested"),
        scenario.event_id("second"),
    ]
    assert [row.seq for row in everything] == sorted(row.seq for row in everything)
    first = everything[0]
    event = scenario.events["identified"]
    assert first.country == "MM"
    assert first.case_id == THAI_MM
    assert first.event_type == "VictimIdentified"
    assert first.source_country == "TH"
    assert first.occurred_at == event.envelope.occurred_at
    assert first.received_at == event.envelope.occurred_at + timedelta(minutes=5)
    assert first.value == scenario.inbox["MM"][0].value
    page = loaded.inbox_page("MM", limit=2)
    assert page == everything[:2]
    rest = loaded.inbox_page("MM", after=page[-1].seq, limit=2)
    assert rest == everything[2:]
    assert loaded.inbox_page("MM", after=rest[-1].seq) == []


def test_an_inbox_filters_by_case_type_and_time(loaded: ReadStore, scenario: Scenario) -> None:
    def ids(rows: Sequence[Any]) -> list[str]:
        return [row.event_id for row in rows]

    identified, referral, second = (scenario.event_id(n) for n in ("identified", "requested", "second"))
    assert ids(loaded.inbox_page("MM", case_id=THAI_MM)) == [identified, referral]
    assert ids(loaded.inbox_page("MM", case_id=THAI_MM_2)) == [second]
    assert ids(loaded.inbox_page("MM", event_type="ReferralRequested")) == [referral]
    assert ids(loaded.inbox_page("MM", event_type=EventType.VictimIdentified.value)) == [identified, second]
    assert ids(loaded.inbox_page("MM", case_id=THAI_MM, event_type="VictimIdentified")) == [identified]
    # since is inclusive, until exclusive (occurred_at).
    referred_at = scenario.events["requested"].envelope.occurred_at
    assert ids(loaded.inbox_page("MM", since=referred_at)) == [referral, second]
    assert ids(loaded.inbox_page("MM", until=referred_at)) == [identified]
    assert ids(loaded.inbox_page("MM", since=referred_at, until=referred_at + timedelta(days=1))) == [
        referral
    ]
    assert loaded.inbox_page("MM", since=NOW) == []


def test_inbox_times_mean_the_same_instant_in_any_time_zone(loaded: ReadStore, scenario: Scenario) -> None:
    referred_at = scenario.events["requested"].envelope.occurred_at
    in_utc = loaded.inbox_page("MM", since=referred_at)
    in_bangkok = loaded.inbox_page("MM", since=referred_at.astimezone(BANGKOK))
    assert in_bangkok == in_utc
    assert len(in_utc) == 2
    before_utc = loaded.inbox_page("MM", until=referred_at)
    assert loaded.inbox_page("MM", until=referred_at.astimezone(BANGKOK)) == before_utc
    assert len(before_utc) == 1


def test_a_time_written_with_an_offset_is_stored_as_the_same_instant(
    store: ReadStore, scenario: Scenario
) -> None:
    copy = scenario.inbox["MM"][0]
    occurred = scenario.events["identified"].envelope.occurred_at
    headers = tuple(
        (name, occurred.astimezone(BANGKOK).isoformat().encode() if name == "ce_time" else value)
        for name, value in copy.headers
    )
    Applier(store, Codec()).apply(
        [Record(copy.topic, copy.partition, copy.offset, copy.timestamp, headers, copy.value)]
    )
    [row] = store.inbox_page("MM")
    assert row.occurred_at == occurred
    assert store.inbox_page("MM", since=occurred) == [row]
    assert store.inbox_page("MM", until=occurred) == []


def test_one_country_never_sees_another_countrys_inbox(loaded: ReadStore, scenario: Scenario) -> None:
    for country, records in scenario.inbox.items():
        rows = loaded.inbox_page(country)
        assert {row.country for row in rows} == {country}
        assert [row.value for row in rows] == [record.value for record in records]
    assert [row.case_id for row in loaded.inbox_page("KH")] == [THAI_KH]
    assert [row.case_id for row in loaded.inbox_page("TH")] == [MM_THAI]
    assert loaded.inbox_page("LA") == []
    # Asking for another country's case by id gives nothing either.
    assert loaded.inbox_page("MM", case_id=THAI_KH) == []
    assert loaded.inbox_page("KH", case_id=THAI_MM) == []


def test_cases_know_their_parties_and_state(loaded: ReadStore) -> None:
    assert loaded.case_parties(THAI_MM) == {"TH", "MM"}
    assert loaded.case_parties(THAI_KH) == {"TH", "KH"}
    assert loaded.case_parties(MM_THAI) == {"TH", "MM"}
    assert loaded.case_parties("TH-UNKNOWN") == frozenset()
    referred = loaded.case_state(THAI_MM)
    assert referred is not None
    assert referred.stage == Stage.REFERRED
    assert referred.respond_by == date(2026, 12, 20)
    assert referred.host == CountryCode.TH
    assert referred.home == CountryCode.MM
    assert len(referred.applied) == 2
    cambodia = loaded.case_state(THAI_KH)
    assert cambodia is not None
    assert cambodia.stage == Stage.IDENTIFIED
    assert loaded.case_state("TH-UNKNOWN") is None
    assert set(loaded.case_states()) == {THAI_MM, THAI_KH, MM_THAI, THAI_MM_2}
    assert set(loaded.case_states(party="MM")) == {THAI_MM, MM_THAI, THAI_MM_2}
    assert set(loaded.case_states(party="KH")) == {THAI_KH}
    assert set(loaded.case_states(party="TH")) == {THAI_MM, THAI_KH, MM_THAI, THAI_MM_2}
    assert loaded.case_states(party="LA") == {}
    assert loaded.case_states(party="M") == {}  # a party is a whole code, not a substring
    assert loaded.case_states(party="MM")[THAI_MM] == referred


def test_a_country_reads_the_events_it_sent_itself(loaded: ReadStore, scenario: Scenario) -> None:
    own = loaded.own_events(THAI_MM, "TH")
    assert [event.event_id for event in own] == [
        scenario.event_id("identified"),
        scenario.event_id("requested"),
    ]
    assert [event.event_type for event in own] == ["VictimIdentified", "ReferralRequested"]
    assert own[0].value == scenario.records[0].value
    assert own[0].occurred_at == scenario.events["identified"].envelope.occurred_at
    assert all(event.case_id == THAI_MM and event.source_country == "TH" for event in own)
    assert loaded.own_events(THAI_MM, "MM") == []
    assert [event.event_id for event in loaded.own_events(MM_THAI, "MM")] == [scenario.event_id("myanmar")]
    assert loaded.own_events("TH-UNKNOWN", "TH") == []


def test_alerts_are_read_after_a_cursor_by_their_country_only(loaded: ReadStore) -> None:
    myanmar = loaded.alerts_after("MM")
    assert [a.record["level"] for a in myanmar] == ["DueSoon", "Overdue"]
    assert {(a.country, a.case_id) for a in myanmar} == {("MM", THAI_MM)}
    assert myanmar[0].alert_id == f"{THAI_MM}/AcknowledgeReferral/DueSoon"
    assert loaded.alerts_after("MM", after=myanmar[0].seq) == myanmar[1:]
    assert loaded.alerts_after("MM", limit=1) == myanmar[:1]
    assert loaded.alerts_after("MM", after=myanmar[-1].seq) == []
    thai = loaded.alerts_after("TH")
    assert [a.alert_id for a in thai] == [a.alert_id for a in myanmar]
    assert {a.country for a in thai} == {"TH"}
    assert [a.case_id for a in loaded.alerts_after("KH")] == [THAI_KH]
    assert loaded.alerts_after("LA") == []


def test_the_access_log_of_a_case_lists_its_reads_in_order(loaded: ReadStore) -> None:
    reads = loaded.access_log(THAI_MM)
    assert [entry["request_id"] for entry in reads] == ["req-1", "req-2"]
    assert reads[0]["country"] == "MM"
    assert reads[1]["cases"] == [THAI_MM, THAI_KH]
    assert [entry["request_id"] for entry in loaded.access_log(THAI_KH)] == ["req-2"]
    assert loaded.access_log(MM_THAI) == []
    # The read of no case is kept too (one row, without a case).
    assert len(loaded.content()["audit"]) == 4


# -- writing -------------------------------------------------------------------------------------


def test_applying_the_same_records_again_changes_nothing(store: ReadStore, scenario: Scenario) -> None:
    applier = Applier(store, Codec())
    assert applier.apply(scenario.records) == len(scenario.records)
    content, positions = store.content(), store.positions()
    assert positions == _ends(scenario.records)
    assert sum(len(rows) for rows in content.values()) > len(positions)
    applier.apply(scenario.records)
    assert store.content() == content
    assert store.positions() == positions
    # Every record again, one at a time: still nothing new.
    for record in scenario.records:
        applier.apply([record])
    assert store.content() == content


def test_positions_are_the_furthest_reached_when_an_older_batch_comes_again(
    store: ReadStore, scenario: Scenario
) -> None:
    applier = Applier(store, Codec())
    half = len(scenario.records) // 2
    first, second = scenario.records[:half], scenario.records[half:]
    applier.apply(first)
    applier.apply(second)
    content, positions = store.content(), store.positions()
    assert positions == _ends(scenario.records)
    applier.apply(first)  # e.g. a second projector on the same store, behind the first
    assert store.positions() == positions
    assert store.content() == content


class DiskFull(Exception):
    """What a store might raise that the projector does not expect."""


def _failing_on_alert(store: ReadStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def add_alert(connection: Any, row: Any) -> None:
        raise DiskFull("no space left on device")

    monkeypatch.setattr(store, "add_alert", add_alert)


@pytest.mark.parametrize("failure", ["rejected-by-the-database", "store-raises"])
def test_a_batch_that_fails_half_way_writes_nothing(
    store: ReadStore, scenario: Scenario, failure: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    applier = Applier(store, Codec())
    head = [r for r in scenario.records if r.topic == ACCEPTED_EVENTS][:2]
    applier.apply(head)
    before, positions = store.content(), store.positions()
    rest = [r for r in scenario.records if r not in head]
    if failure == "rejected-by-the-database":
        # An audit row without a request id, refused by the NOT NULL constraint.
        real_add_audit = store.add_audit

        def add_audit(connection: Any, row: Any) -> None:
            real_add_audit(connection, {**row, "request_id": None})

        monkeypatch.setattr(store, "add_audit", add_audit)
        entry = {"request_id": "r-broken", "cases": [THAI_MM]}
        batch = [*rest, Record(AUDIT, 0, 99, 0, (), json.dumps(entry).encode())]
        expected: type[Exception] = sa.exc.IntegrityError
    else:
        _failing_on_alert(store, monkeypatch)
        batch = rest
        expected = DiskFull
    assert any(r.topic.endswith(".inbox") for r in batch)  # written before the failure
    with pytest.raises(expected):
        applier.apply(batch, {(ACCEPTED_EVENTS, 0): 50})
    assert store.content() == before
    assert store.positions() == positions
    assert store.inbox_page("MM") == []
    assert store.receipt_seq() == 0
    # Once the cause is gone, the same batch goes in whole.
    monkeypatch.undo()
    applier.apply(rest)
    assert len(store.inbox_page("MM")) == 3
    assert store.positions() == _ends(scenario.records)


def test_reaching_past_transaction_markers_advances_positions_without_records(store: ReadStore) -> None:
    applier = Applier(store, Codec())
    assert applier.apply([], {}) == 0
    assert store.positions() == {}
    assert applier.apply([], {(ACCEPTED_EVENTS, 0): 7, (focal_inbox("MM"), 3): 2}) == 0
    assert store.positions() == {(ACCEPTED_EVENTS, 0): 7, (focal_inbox("MM"), 3): 2}
    assert applier.apply([], {(ACCEPTED_EVENTS, 0): 9}) == 0
    assert store.positions() == {(ACCEPTED_EVENTS, 0): 9, (focal_inbox("MM"), 3): 2}
    assert all(rows == [] for name, rows in store.content().items() if name != "positions")


def test_reached_beyond_the_last_record_wins_over_the_record(store: ReadStore, scenario: Scenario) -> None:
    first = scenario.records[0]
    key = (first.topic, first.partition)
    Applier(store, Codec()).apply([first], {key: first.offset + 2})
    assert store.positions() == {key: first.offset + 2}
    assert len(store.content()["accepted"]) == 1


@st.composite
def _splits(draw: st.DrawFn, size: int) -> list[int]:
    points = draw(st.sets(st.integers(min_value=1, max_value=size - 1), max_size=6))
    return sorted(points)


@pytest.mark.parametrize("new_store", ["sqlite"], indirect=True)
def test_the_same_records_in_any_batches_give_the_same_content(
    new_store: StoreFactory, scenario: Scenario
) -> None:
    reference = new_store()
    Applier(reference, Codec()).apply(scenario.records)
    expected = reference.content()

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(_splits(len(scenario.records)))
    def check(points: list[int]) -> None:
        store = new_store()
        applier = Applier(store, Codec())
        bounds = [0, *points, len(scenario.records)]
        for start, end in itertools.pairwise(bounds):
            applier.apply(scenario.records[start:end])
        assert store.content() == expected
        store.dispose()

    check()


def test_stores_fed_the_same_records_in_batches_of_four_have_the_same_content(
    new_store: StoreFactory, scenario: Scenario
) -> None:
    whole, split = new_store(), new_store()
    Applier(whole, Codec()).apply(scenario.records)
    applier = Applier(split, Codec())
    for start in range(0, len(scenario.records), 4):
        applier.apply(scenario.records[start : start + 4])
    assert split.content() == whole.content()
    assert split.positions() == whole.positions()


def test_dropping_the_projections_keeps_the_credentials(loaded: ReadStore) -> None:
    credentials = Credentials(loaded)
    issued = credentials.issue("MM", Role.FOCAL_POINT, label="Yangon focal point")
    assert any(rows for rows in loaded.content().values())
    loaded.drop_projections()
    loaded.create()
    assert all(rows == [] for rows in loaded.content().values())
    assert loaded.positions() == {}
    assert loaded.inbox_page("MM") == []
    assert loaded.case_states() == {}
    principal = credentials.authenticate(issued.token)
    assert principal == issued.principal
    assert Credentials(loaded).authenticate(issued.token).country == "MM"


@pytest.mark.parametrize(
    "value",
    [
        b"not json",
        b'{"request_id": null, "cases": ["TH-1"]}',
        b'{"request_id": "r-1", "cases": "TH-1"}',
        b"[1, 2]",
    ],
)
def test_a_malformed_audit_record_is_passed_over_and_its_position_kept(
    store: ReadStore, value: bytes
) -> None:
    applier = Applier(store, Codec())
    assert applier.apply([Record(AUDIT, 0, 7, 0, (), value)]) == 1
    assert store.positions() == {(AUDIT, 0): 8}
    assert store.content()["audit"] == []


def test_publications_are_served_whole_the_latest_last_published(store: ReadStore) -> None:
    first, second = sample_document(), sample_document(extra=1)
    log = Log()
    records = [
        log.append(REGIONAL_STATS, json.dumps(first).encode(), at=NOW),
        log.append(REGIONAL_STATS, b'{"table": "by_sex", "value": 3}', at=NOW + timedelta(seconds=1)),
        log.append(REGIONAL_STATS, json.dumps(second).encode(), at=NOW + timedelta(seconds=2)),
        log.append(REGIONAL_STATS, json.dumps(first).encode(), at=NOW + timedelta(seconds=3)),
    ]
    assert store.latest_publication() is None
    Applier(store, Codec()).apply(records)
    assert store.positions() == {(REGIONAL_STATS, 0): 4}
    assert store.publication(first["id"]) == first
    assert store.publication("RS-0000000000000000") is None
    assert store.latest_publication() == second, "published again, the first keeps its place"
    assert len(store.content()["publications"]) == 2
