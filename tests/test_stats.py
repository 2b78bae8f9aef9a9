"""Anonymised regional statistics: the counts and medians are right, and nothing published is based
on fewer than five people or points at a single case.

Every expected number is recomputed here by brute force from the case states, independently of the
module's own counting.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.agreements import Agreements, default_agreements
from hub.codes import labels_for
from hub.contract import AgeBand, CountryCode, ExploitationType, Gender, ReintegrationStatus
from hub.synthetic import synthetic_stream
from projections.cases.fold import CaseState, FollowUp, fold
from projections.obligations.rules import add_months
from projections.stats import ALL, Measure, RegionalStatistics, regional_statistics, to_rows, to_table
from projections.stats.aggregate import Row

AGREEMENTS = default_agreements()
THRESHOLD = 5
AS_OF = date(2025, 6, 1)
DIMENSIONS = ("month", "corridor", "exploitation", "sex", "age_band")
DAY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
GRACE = timedelta(days=14)


# --------------------------------------------------------------------------------------------------
# Building states and counting them by brute force
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One hand-made case: the days each step took after the one before (None: not reached)."""

    host: str = "TH"
    home: str | None = "MM"
    identified_on: date = date(2024, 1, 10)
    sex: Gender = Gender.Female
    age_band: AgeBand = AgeBand.Adult18To24
    forms: tuple[ExploitationType, ...] = (ExploitationType.ForcedLabour,)
    to_referral: int | None = None
    to_answer: int | None = None
    to_return: int | None = None
    to_handover: int | None = None
    follow_ups: tuple[tuple[int, int], ...] = ()  # (months, days after the due date)


def state(spec: Spec, number: int) -> CaseState:
    at = datetime.combine(spec.identified_on, time(9), tzinfo=UTC)
    fields: dict[str, object] = {}
    last = at
    if spec.to_referral is not None:
        referred = at + timedelta(days=spec.to_referral)
        fields["referral_requested_at"] = last = referred
        if spec.to_answer is not None:
            answered = referred + timedelta(days=spec.to_answer)
            fields["answered_at"] = last = answered
            if spec.to_return is not None:
                planned = answered.date() + timedelta(days=spec.to_return)
                fields["return_notice_at"] = answered + timedelta(days=1)
                fields["planned_return_on"] = planned
                if spec.to_handover is not None:
                    handed = planned + timedelta(days=spec.to_handover)
                    fields["handed_over_on"] = handed
                    fields["follow_ups"] = tuple(
                        FollowUp(
                            months=months,
                            assessed_on=add_months(handed, months) + timedelta(days=late),
                            status=ReintegrationStatus.Reintegrating,
                        )
                        for months, late in spec.follow_ups
                    )
                    last = datetime.combine(handed, time(12), tzinfo=UTC)
    return CaseState(
        case_id=f"{spec.host}-QX{number:05d}Z",
        host=CountryCode(spec.host),
        home=CountryCode(spec.home) if spec.home else None,
        identified_at=at,
        identified_on=spec.identified_on,
        sex=spec.sex,
        age_band=spec.age_band,
        exploitation_types=spec.forms,
        last_event_at=last,
        **fields,
    )


def states_of(specs: Sequence[Spec], start: int = 0) -> list[CaseState]:
    return [state(spec, start + number) for number, spec in enumerate(specs)]


def corridor(case: CaseState, agreements: Agreements = AGREEMENTS) -> str:
    if case.home is None:
        return f"{case.host.value}->unknown"
    found = agreements.corridor(case.host.value, case.home.value)
    return found.id if found else f"{case.host.value}->{case.home.value}"


def values_of(case: CaseState) -> dict[str, set[str]]:
    return {
        "month": {case.identified_on.strftime("%Y-%m")},
        "corridor": {corridor(case)},
        "exploitation": {form.value for form in case.exploitation_types} or {"Unrecorded"},
        "sex": {case.sex.value},
        "age_band": {case.age_band.value},
    }


Profile = dict[str, set[str]]


def belongs(own: Profile, key: dict[str, str]) -> bool:
    return all(key[dim] == ALL or key[dim] in own[dim] for dim in DIMENSIONS)


def brute_count(profiles: Iterable[Profile], key: dict[str, str]) -> int:
    return sum(belongs(own, key) for own in profiles)


def brute_days(states: Iterable[CaseState], measure: Measure, where: str) -> list[int]:
    days: list[int] = []
    for case in states:
        if where not in (ALL, corridor(case)):
            continue
        referred = case.referral_requested_at.date() if case.referral_requested_at else None
        answered = case.answered_at.date() if case.answered_at else None
        if measure is Measure.IDENTIFICATION_TO_REFERRAL and referred:
            days.append((referred - case.identified_on).days)
        elif measure is Measure.REFERRAL_TO_ANSWER and referred and answered:
            days.append((answered - referred).days)
        elif measure is Measure.ANSWER_TO_RETURN and answered and case.planned_return_on:
            days.append((case.planned_return_on - answered).days)
        elif measure is Measure.RETURN_TO_HANDOVER and case.planned_return_on and case.handed_over_on:
            days.append((case.handed_over_on - case.planned_return_on).days)
    return days


def brute_follow_ups(states: Iterable[CaseState], where: str, as_of: date) -> tuple[int, list[bool]]:
    """(cases, on time or not for each follow-up whose grace period ended before ``as_of``)."""
    cases, outcomes = 0, []
    for case in states:
        if where not in (ALL, corridor(case)) or case.handed_over_on is None or case.home is None:
            continue
        agreed = AGREEMENTS.corridor(case.host.value, case.home.value)
        if agreed is None:
            continue
        recorded = {f.months: f.assessed_on for f in case.follow_ups}
        own = [
            months in recorded and recorded[months] <= add_months(case.handed_over_on, months) + GRACE
            for months in agreed.deadlines.follow_up_months
            if add_months(case.handed_over_on, months) + GRACE < as_of
        ]
        cases += bool(own)
        outcomes += own
    return cases, outcomes


Published = dict[tuple[str, ...], Row]


def count_rows(stats: RegionalStatistics) -> Published:
    """The count rows of every table by their five dimensions; the same count in two tables must be
    published the same way."""
    rows: Published = {}
    for row in to_rows(stats):
        if row["table"] == "timeliness":
            continue
        key = tuple(str(row[dim]) for dim in DIMENSIONS)
        assert rows.setdefault(key, row)["value"] == row["value"], key
        assert rows[key]["suppressed"] == row["suppressed"], key
    return rows


def timeliness_rows(stats: RegionalStatistics) -> Published:
    return {
        (str(row["indicator"]), str(row["corridor"])): row
        for row in to_rows(stats)
        if row["table"] == "timeliness"
    }


def pattern(key: tuple[str, ...]) -> frozenset[int]:
    return frozenset(i for i, value in enumerate(key) if value != ALL)


def relations(rows: Published) -> list[tuple[tuple[str, ...], list[tuple[str, ...]]]]:
    """Every published coarser count with the published finer counts that add up to it."""
    groups: dict[tuple[tuple[str, ...], frozenset[int]], list[tuple[str, ...]]] = {}
    patterns = {pattern(key) for key in rows}
    for key in rows:
        own = pattern(key)
        for coarser in patterns:
            if coarser < own:
                total = tuple(v if i in coarser else ALL for i, v in enumerate(key))
                groups.setdefault((total, own), []).append(key)
    return [(total, parts) for (total, _), parts in groups.items()]


def check_disclosure(states: list[CaseState], stats: RegionalStatistics, threshold: int) -> None:
    """Everything a reader could rely on: published counts are exact and large enough, suppressed
    ones cannot be worked out from a total, medians are exact and on enough cases."""
    rows = count_rows(stats)
    profiles = [values_of(case) for case in states]
    for key, row in rows.items():
        true = brute_count(profiles, dict(zip(DIMENSIONS, key, strict=True)))
        assert true > 0 or key == (ALL,) * 5, key  # zero cells are left out
        if row["suppressed"]:
            assert row["value"] is None
        else:
            assert row["value"] == true, key
            assert true == 0 or true >= threshold, key
    # Every combination that occurs is in the flow table.
    flow = {key for key, row in rows.items() if row["table"] == "flow" and ALL not in key}
    for own in profiles:
        assert set(itertools.product(*(sorted(own[dim]) for dim in DIMENSIONS))) <= flow

    for total, parts in relations(rows):
        hidden = sum(bool(rows[key]["suppressed"]) for key in (total, *parts))
        assert hidden != 1, (total, parts)
        multi = "exploitation" in {DIMENSIONS[i] for i in pattern(parts[0]) - pattern(total)}
        if not hidden:
            added = sum(int(str(rows[key]["value"])) for key in parts)
            assert added >= int(str(rows[total]["value"])) if multi else added == rows[total]["value"]

    indicators = timeliness_rows(stats)
    for measure in Measure:
        members = [
            row for (name, _), row in indicators.items() if name == measure.value and row["cases"] != 0
        ]
        assert sum(bool(row["suppressed"]) for row in members) != 1, measure
    for (name, where), row in indicators.items():
        measure = Measure(name)
        if measure is Measure.FOLLOW_UPS_ON_TIME:
            cases, outcomes = brute_follow_ups(states, where, AS_OF)
            expected = sum(outcomes) / len(outcomes) if outcomes else None
            observations = len(outcomes)
        else:
            days = brute_days(states, measure, where)
            cases = observations = len(days)
            expected = float(statistics.median(days)) if days else None
        if row["suppressed"]:
            assert (row["value"], row["cases"], row["observations"]) == (None, None, None)
            assert cases > 0
        else:
            assert (row["value"], row["cases"], row["observations"]) == (expected, cases, observations)
            assert cases == 0 or cases >= threshold, (name, where)


def published_text(stats: RegionalStatistics) -> str:
    return "\n".join((json.dumps(to_rows(stats)), to_table(stats, "en"), to_table(stats, "th"), repr(stats)))


# --------------------------------------------------------------------------------------------------
# Synthetic and hand-made cases
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> list[CaseState]:
    events = synthetic_stream(
        20261123,
        400,
        start=datetime(2024, 1, 1, tzinfo=UTC),
        until=datetime(2025, 6, 1, tzinfo=UTC),
    )
    return list(fold(events).values())


def test_synthetic_counts_equal_brute_force(synthetic: list[CaseState]) -> None:
    stats = regional_statistics(synthetic, AGREEMENTS, as_of=AS_OF)
    assert stats.people.value == len(synthetic) == 400
    published = 0
    profiles = [values_of(case) for case in synthetic]
    for table in stats.tables:
        for row, column in itertools.product((*table.rows, table.all_rows), (*table.columns, ALL)):
            key = dict.fromkeys(DIMENSIONS, ALL)
            key |= {dim.value: value for dim, value in zip(table.row_dimensions, row, strict=True)}
            key[table.column_dimension.value] = column
            count = table.count(row, column)
            true = brute_count(profiles, key)
            if count.suppressed:
                assert count.value is None
                assert true > 0
            else:
                assert count.value == true, (table.name, row, column)
                assert true == 0 or true >= THRESHOLD
                published += true > 0
    assert published > 100  # the test is not vacuous
    assert stats.by_sex.count(("TH-MM",), ALL).value == sum(corridor(c) == "TH-MM" for c in synthetic)
    check_disclosure(synthetic, stats, THRESHOLD)
    overall = stats.timeliness_of(ALL)
    assert overall is not None
    days = brute_days(synthetic, Measure.REFERRAL_TO_ANSWER, ALL)
    assert overall.referral_to_answer.value == statistics.median(days)
    assert overall.referral_to_answer.cases == len(days)


def test_synthetic_output_holds_no_case_id_nor_day(synthetic: list[CaseState]) -> None:
    stats = regional_statistics(synthetic, AGREEMENTS)
    text = published_text(stats)
    assert not DAY_DATE.search(text)
    assert not any(case.case_id in text for case in synthetic)
    latest = max(case.last_event_at for case in synthetic)
    assert stats.reference_month == latest.strftime("%Y-%m")  # the latest event, to the month only


def test_several_forms_count_under_each_and_once_in_the_total() -> None:
    both = (ExploitationType.ForcedLabour, ExploitationType.SexualExploitation)
    specs = [Spec(forms=both)] * 5 + [Spec(forms=())] * 6 + [Spec(home="KR")] * 5 + [Spec(home=None)] * 5
    stats = regional_statistics(states_of(specs), AGREEMENTS)
    table = stats.by_exploitation
    assert table.multi_counted
    assert table.count(("TH-MM",), "ForcedLabour").value == 5
    assert table.count(("TH-MM",), "SexualExploitation").value == 5
    assert table.count(("TH-MM",), "Unrecorded").value == 6
    assert table.count(("TH-MM",), ALL).value == 11
    assert table.count(("TH->KR",), "ForcedLabour").value == 5
    assert table.count(("TH->unknown",), ALL).value == 5
    assert table.count(table.all_rows, "ForcedLabour").value == 15
    assert table.count(table.all_rows, ALL).value == stats.people.value == 21
    flow = stats.flow
    assert flow.count(("2024-01", "TH-MM", "Female", "Adult18To24"), "ForcedLabour").value == 5
    assert flow.count(("2024-01", "TH-MM", "Female", "Adult18To24"), ALL).value == 11
    assert flow.count(("2024-02", "TH-MM", "Female", "Adult18To24"), ALL).value == 0
    rendered = to_table(stats, "th")
    assert labels_for("th").label(ExploitationType.ForcedLabour) in rendered
    assert labels_for("th").label(CountryCode.MM) in rendered


def test_a_row_with_one_small_cell_has_a_second_suppressed() -> None:
    specs = (
        [Spec(identified_on=date(2024, 1, 5))] * 10
        + [Spec(identified_on=date(2024, 2, 5))] * 7
        + [Spec(identified_on=date(2024, 3, 5))] * 2
        + [Spec(host="MY", home="ID", identified_on=date(2024, 1, 9))] * 12
    )
    states = states_of(specs)
    stats = regional_statistics(states, AGREEMENTS, as_of=AS_OF)
    row = ("TH-MM",)
    table = stats.by_month
    assert table.count(row, ALL).value == 19
    assert table.count(row, "2024-01").value == 10
    assert table.count(row, "2024-03").suppressed  # 2 people
    assert table.count(row, "2024-02").suppressed  # 7, withheld so that the 2 cannot be worked out
    assert sum(table.count(row, month).suppressed for month in table.columns) >= 2
    for total, cells in (line for table in stats.tables for line in table.lines()):
        if not total.suppressed:
            assert sum(cell.suppressed for cell in cells) != 1
    check_disclosure(states, stats, THRESHOLD)


def test_medians_on_five_cases_and_suppressed_on_four() -> None:
    steps = [(1, 5, 10, 0), (3, 6, 12, 1), (4, 7, 14, 1), (10, 8, 16, 2), (20, 30, None, None)]
    specs = [
        Spec(to_referral=r, to_answer=a, to_return=ret, to_handover=h, identified_on=date(2024, 1, 1 + i))
        for i, (r, a, ret, h) in enumerate(steps)
    ]
    stats = regional_statistics(states_of(specs), AGREEMENTS)
    for where in ("TH-MM", ALL):
        entry = stats.timeliness_of(where)
        assert entry is not None
        assert (entry.identification_to_referral.value, entry.identification_to_referral.cases) == (4.0, 5)
        assert (entry.referral_to_answer.value, entry.referral_to_answer.cases) == (7.0, 5)
        for small in (entry.answer_to_return, entry.return_to_handover):  # on 4 cases only
            assert small.suppressed
            assert (small.value, small.cases, small.observations) == (None, None, None)
        assert entry.follow_ups_on_time.cases == 0
        assert entry.follow_ups_on_time.value is None

    six = regional_statistics(states_of([*specs, Spec(to_referral=8, to_answer=9)]), AGREEMENTS)
    entry = six.timeliness_of("TH-MM")
    assert entry is not None
    assert entry.identification_to_referral.value == 6.0  # (4 + 8) / 2
    assert entry.referral_to_answer.value == 7.5

    four = regional_statistics(states_of(specs[:4]), AGREEMENTS)
    for where in ("TH-MM", ALL):
        entry = four.timeliness_of(where)
        assert entry is not None
        assert all(entry.indicator(m).value is None for m in Measure)
        assert all(entry.indicator(m).cases in (None, 0) for m in Measure)
    assert four.people.suppressed
    assert four.people.value is None
    assert "(n=4)" not in to_table(four, "en")


def test_one_small_corridor_hides_a_second_and_its_count() -> None:
    quick = Spec(to_referral=2)
    specs = [quick] * 6 + [Spec(host="MY", home="ID", to_referral=9)] * 8 + [Spec(host="JP", home="PH")] * 1
    specs += [Spec(host="JP", home="PH", to_referral=30)]
    stats = regional_statistics(states_of(specs), AGREEMENTS)
    rows = timeliness_rows(stats)
    name = Measure.IDENTIFICATION_TO_REFERRAL.value
    assert rows[(name, "JP-PH")]["suppressed"]  # 1 case
    assert rows[(name, "TH-MM")]["suppressed"]  # 6, the smaller of the others
    assert rows[(name, "MY-ID")]["value"] == 9.0
    assert rows[(name, ALL)]["cases"] == 15


def test_follow_ups_on_time_within_the_grace() -> None:
    # Handed over on 2024-03-11; at 2024-11-30 the 3- and 6-month follow-ups are due (grace ended).
    on_time = ((3, 0), (6, 14))  # the 6-month one on the last day of the grace
    late = ((3, 15), (6, -3))
    base = Spec(identified_on=date(2024, 1, 1), to_referral=10, to_answer=20, to_return=20, to_handover=20)
    handed = date(2024, 3, 11)
    specs = [
        replace(base, follow_ups=follow_ups)
        for follow_ups in (on_time, on_time, on_time, late, (), ((12, 0),))
    ]
    as_of = date(2024, 11, 30)
    assert add_months(handed, 6) + GRACE < as_of < add_months(handed, 12)
    stats = regional_statistics(states_of(specs), AGREEMENTS, as_of=as_of)
    entry = stats.timeliness_of("TH-MM")
    assert entry is not None
    share = entry.follow_ups_on_time
    # 12 follow-ups due: 3 cases × 2 on time, one on time of the 'late' case (6 months, early).
    assert (share.cases, share.observations) == (6, 12)
    assert share.value == pytest.approx(7 / 12)


def test_threshold_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        regional_statistics([], AGREEMENTS, threshold=1)


def test_no_cases() -> None:
    stats = regional_statistics([], AGREEMENTS)
    assert stats.people.value == 0
    assert stats.reference_month is None
    assert [row["corridor"] for row in to_rows(stats) if row["table"] == "timeliness"] == [ALL] * 5
    assert "Total" in to_table(stats, "en")


# --------------------------------------------------------------------------------------------------
# Any collection of cases
# --------------------------------------------------------------------------------------------------

ROUTES = (("TH", "MM"), ("MM", "TH"), ("TH", "LA"), ("TH", None), ("TH", "KR"))
FORMS = (ExploitationType.ForcedLabour, ExploitationType.SexualExploitation, ExploitationType.ForcedMarriage)

specs_strategy = st.builds(
    lambda route, *rest: Spec(route[0], route[1], *rest),
    st.sampled_from(ROUTES),
    st.dates(date(2024, 1, 1), date(2024, 3, 31)),
    st.sampled_from((Gender.Female, Gender.Male)),
    st.sampled_from((AgeBand.Adult18To24, AgeBand.Adult25To34, AgeBand.Child15To17)),
    st.lists(st.sampled_from(FORMS), max_size=2, unique=True).map(tuple),
    st.none() | st.integers(0, 20),
    st.none() | st.integers(0, 40),
    st.none() | st.integers(0, 30),
    st.none() | st.integers(0, 3),
    st.lists(
        st.tuples(st.sampled_from((3, 6, 12)), st.integers(-5, 30)), max_size=3, unique_by=lambda f: f[0]
    ).map(tuple),
)


@settings(max_examples=120, deadline=None)
@given(st.lists(specs_strategy, max_size=70), st.sampled_from((2, 3, 5)))
def test_nothing_published_rests_on_fewer_than_the_threshold(specs: list[Spec], threshold: int) -> None:
    states = states_of(specs)
    stats = regional_statistics(states, AGREEMENTS, threshold=threshold, as_of=AS_OF)
    check_disclosure(states, stats, threshold)


@settings(max_examples=80, deadline=None)
@given(st.lists(specs_strategy, max_size=70))
def test_no_output_holds_a_case_id_or_a_day(specs: list[Spec]) -> None:
    states = states_of(specs)
    stats = regional_statistics(states, AGREEMENTS)
    text = published_text(stats)
    assert not DAY_DATE.search(text)
    assert not any(case.case_id in text or f"QX{n:05d}Z" in text for n, case in enumerate(states))
    for row in to_rows(stats):
        assert not re.search(r"\d{2}:\d{2}", str(row["value"]))
        assert (
            row["value"] in (None, 0) or row["table"] == "timeliness" or int(str(row["value"])) >= THRESHOLD
        )
        assert row["cases"] in (None, 0) or int(str(row["cases"])) >= THRESHOLD


@settings(max_examples=100, deadline=None)
@given(st.lists(specs_strategy, max_size=60), specs_strategy)
def test_one_more_case_changes_only_its_own_cells(specs: list[Spec], extra: Spec) -> None:
    """A count the new case is not in keeps its value (it may only be withheld or released by the
    secondary suppression); a published count it is in grows by one; the indicators of other
    corridors keep theirs."""
    states = states_of(specs)
    new = state(extra, len(specs))
    before = regional_statistics(states, AGREEMENTS, as_of=AS_OF)
    after = regional_statistics([*states, new], AGREEMENTS, as_of=AS_OF)

    old_counts, new_counts = count_rows(before), count_rows(after)
    for key in old_counts.keys() | new_counts.keys():
        member = belongs(values_of(new), dict(zip(DIMENSIONS, key, strict=True)))
        was, now = old_counts.get(key), new_counts.get(key)
        if not member:
            assert (was is None) == (now is None), key  # no cell appears or disappears
        if was is None or now is None or was["suppressed"] or now["suppressed"]:
            continue
        assert now["value"] == int(str(was["value"])) + member, key

    old_times, new_times = timeliness_rows(before), timeliness_rows(after)
    for key, now in new_times.items():
        if key[1] in (ALL, corridor(new)):
            continue
        was = old_times[key]
        if not (was["suppressed"] or now["suppressed"]):
            assert (now["value"], now["cases"], now["observations"]) == (
                was["value"],
                was["cases"],
                was["observations"],
            ), key
