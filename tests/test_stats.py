"""Regional statistics: the counts and indicators, and their disclosure control.

Counts are checked against a brute-force count of the cases; the protection against an attacker
written apart from it (``tests/attacker.py``, scipy's HiGHS) that reads every published table and
total, the cases behind the indicators, and earlier publications of overlapping periods.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hub.agreements import Agreements, default_agreements
from hub.codes import labels_for
from hub.contract import (
    AgeBand,
    AgencyType,
    CountryCode,
    ExploitationType,
    Gender,
    LabourSector,
    ReintegrationStatus,
)
from hub.errors import ConfigError
from hub.synthetic import synthetic_stream
from projections.cases.fold import CaseState, FollowUp, fold
from projections.obligations.rules import add_months
from projections.stats import ALL, Measure, RegionalStatistics, regional_statistics, to_rows, to_table
from projections.stats.aggregate import Period, Published, Table, latent_patterns, patterns_of
from projections.stats.protection import InconsistentPublication, Relation, System, intervals, protect
from projections.stats.rules import DIMENSIONS as DIMENSION_ORDER
from projections.stats.rules import (
    MULTI_VALUED,
    Dimension,
    PeriodUnit,
    StatisticsRules,
    TableRule,
    load_rules,
)
from tests.attacker import Reading
from tests.attacker import intervals as attack

AGREEMENTS = default_agreements()
RULES = load_rules(Path(__file__).parent.parent / "config" / "statistics.yaml")
THRESHOLD = 5
AS_OF = date(2025, 6, 1)
DIMENSIONS = tuple(dimension.value for dimension in DIMENSION_ORDER)
MULTI = frozenset(dimension.value for dimension in MULTI_VALUED)
DAY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
GRACE = timedelta(days=14)


def rules(**changes: object) -> StatisticsRules:
    return StatisticsRules.model_validate({**RULES.model_dump(), **changes})


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
    sectors: tuple[LabourSector, ...] = ()
    agency: AgencyType | None = AgencyType.LawEnforcement
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
        labour_sectors=spec.sectors,
        agency_type=spec.agency,
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


Profile = dict[str, set[str]]


def values_of(case: CaseState) -> Profile:
    return {
        "period": {case.identified_on.strftime("%Y-%m")},
        "corridor": {corridor(case)},
        "exploitation": {form.value for form in case.exploitation_types} or {"Unrecorded"},
        "labour_sector": {sector.value for sector in case.labour_sectors} or {"Unrecorded"},
        "sex": {case.sex.value},
        "age_band": {case.age_band.value},
        "agency_type": {case.agency_type.value if case.agency_type else "Unrecorded"},
    }


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


Rows = dict[tuple[str, ...], dict[str, object]]


def count_rows(stats: RegionalStatistics) -> Rows:
    """The count rows of every table by their key over all dimensions; the same count in two tables
    must be published the same way."""
    rows: Rows = {}
    for row in to_rows(stats):
        if row["table"] == "timeliness":
            continue
        key = tuple(str(row[dim]) for dim in DIMENSIONS)
        assert rows.setdefault(key, row)["value"] == row["value"], key
        assert rows[key]["suppressed"] == row["suppressed"], key
    return rows


def timeliness_rows(stats: RegionalStatistics) -> Rows:
    return {
        (str(row["indicator"]), str(row["corridor"])): row
        for row in to_rows(stats)
        if row["table"] == "timeliness"
    }


def reading(stats: RegionalStatistics) -> Reading:
    """What a reader holds of a publication, from its published rows alone."""
    assert stats.period is not None
    people = {
        key: (None if row["suppressed"] else int(str(row["value"]))) for key, row in count_rows(stats).items()
    }
    cases = {
        key: (None if row["cases"] is None else int(str(row["cases"])))
        for key, row in timeliness_rows(stats).items()
    }
    return Reading(frozenset(stats.period.months), people, cases, stats.rules.rounding_base)


def assert_protected(
    readings: Sequence[Reading], protection: float
) -> dict[tuple[object, ...], tuple[float, float]]:
    """No withheld figure of any publication can be narrowed below ``protection`` by the attacker."""
    found = attack(readings, DIMENSIONS, MULTI)
    for name, (low, high) in found.items():
        assert low >= 1 - 1e-6, name
        assert high - low >= protection - 1e-6, (name, low, high)
    return dict(found)


def check_counts(states: list[CaseState], stats: RegionalStatistics) -> None:
    """Every published count is exact (rounded down to the base) and on enough people; every
    combination of a table that occurs is in it; margins add up where nothing is withheld."""
    threshold, base = stats.rules.minimum_frequency, stats.rules.rounding_base
    rows = count_rows(stats)
    profiles = [values_of(case) for case in states]
    for key, row in rows.items():
        true = brute_count(profiles, dict(zip(DIMENSIONS, key, strict=True)))
        assert true > 0 or key == (ALL,) * len(DIMENSIONS), key  # zero cells are left out
        if row["suppressed"]:
            assert row["value"] is None
            assert true > 0
        else:
            assert row["value"] == true - true % base, key
            assert true == 0 or true >= threshold, key
    for table in stats.tables:
        dims = [dim.value for dim in (*table.row_dimensions, table.column_dimension)]
        for own in profiles:
            for combination in itertools.product(*(sorted(own[dim]) for dim in dims)):
                key = tuple(dict(zip(dims, combination, strict=True)).get(dim, ALL) for dim in DIMENSIONS)
                assert key in rows, (table.name, key)
        if base == 1:
            check_margins(table, stats)


def check_margins(table: Table, stats: RegionalStatistics) -> None:
    row_multi = any(dim in MULTI_VALUED for dim in table.row_dimensions)
    for row in (*table.rows, table.all_rows):
        total = table.count(row, ALL)
        parts = [table.count(row, column) for column in table.columns]
        if total.suppressed or any(part.suppressed for part in parts):
            continue
        added = sum(part.value or 0 for part in parts)
        assert total.value is not None
        if table.multi_counted:
            assert added >= total.value
            assert all((part.value or 0) <= total.value for part in parts)
        else:
            assert added == total.value, (table.name, row)
    for column in (*table.columns, ALL):
        total = table.count(table.all_rows, column)
        parts = [table.count(row, column) for row in table.rows]
        if total.suppressed or any(part.suppressed for part in parts):
            continue
        added = sum(part.value or 0 for part in parts)
        assert total.value is not None
        assert added >= total.value if row_multi else added == total.value, (table.name, column)
    assert stats.people == table.total


def check_timeliness(states: list[CaseState], stats: RegionalStatistics, as_of: date) -> None:
    threshold, base = stats.rules.minimum_frequency, stats.rules.rounding_base
    for (name, where), row in timeliness_rows(stats).items():
        measure = Measure(name)
        if measure is Measure.FOLLOW_UPS_ON_TIME:
            cases, outcomes = brute_follow_ups(states, where, as_of)
            expected = sum(outcomes) / len(outcomes) if outcomes else None
            observations = len(outcomes)
        else:
            days = brute_days(states, measure, where)
            cases = observations = len(days)
            expected = float(statistics.median(days)) if days else None
        if row["cases"] is None:
            assert (row["value"], row["observations"], row["suppressed"]) == (None, None, True)
            assert cases > 0
            continue
        rounded = (cases - cases % base, observations - observations % base)
        assert (row["cases"], row["observations"]) == rounded, (name, where)
        assert cases == 0 or cases >= threshold, (name, where)
        if row["value"] is None:
            assert cases == 0 or row["suppressed"]
        else:
            assert row["value"] == expected


def published_text(stats: RegionalStatistics) -> str:
    return "\n".join((json.dumps(to_rows(stats)), to_table(stats, "en"), to_table(stats, "th")))


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


def test_the_fold_keeps_the_identifying_agency_and_the_sectors() -> None:
    events = list(
        synthetic_stream(
            7, 30, start=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 6, 1, tzinfo=UTC)
        )
    )
    states = fold(events)
    identified = [e for e in events if type(e).__name__ == "VictimIdentified"]
    assert identified
    for identification in identified:
        case = states[identification.envelope.case_id]
        assert case.agency_type == identification.identifying_agency_type
        assert case.labour_sectors == tuple(identification.labour_sectors)


def test_synthetic_counts_equal_brute_force(synthetic: list[CaseState]) -> None:
    stats = regional_statistics(synthetic, AGREEMENTS, rules=RULES, as_of=AS_OF)
    assert stats.people.value == len(synthetic) == 400
    assert {table.name for table in stats.tables} == {table.name for table in RULES.tables}
    published = sum(1 for row in count_rows(stats).values() if not row["suppressed"])
    assert published > 100  # the test is not vacuous
    by_sex = stats.table("by_sex")
    assert by_sex.count(("TH-MM",), ALL).value == sum(corridor(c) == "TH-MM" for c in synthetic)
    check_counts(synthetic, stats)
    check_timeliness(synthetic, stats, AS_OF)
    overall = stats.timeliness_of(ALL)
    assert overall is not None
    days = brute_days(synthetic, Measure.REFERRAL_TO_ANSWER, ALL)
    assert overall.referral_to_answer.value == statistics.median(days)
    assert overall.referral_to_answer.cases == len(days)
    assert stats.check.withheld == stats.check.primary + stats.check.secondary
    assert stats.check.narrowest is None or stats.check.narrowest >= RULES.protection_level


def test_synthetic_output_holds_no_case_id_nor_day(synthetic: list[CaseState]) -> None:
    stats = regional_statistics(synthetic, AGREEMENTS, rules=RULES)
    text = published_text(stats)
    assert not DAY_DATE.search(text)
    assert not any(case.case_id in text for case in synthetic)
    latest = max(case.last_event_at for case in synthetic)
    assert stats.reference_month == latest.strftime("%Y-%m")  # the latest event, to the month only


def test_the_dimensions_the_region_asks_for_are_published() -> None:
    specs = [
        Spec(
            forms=(ExploitationType.ForcedLabour,),
            sectors=(LabourSector.Fishing,),
            agency=AgencyType.LabourInspection,
            sex=Gender.Male,
        )
    ] * 6 + [
        Spec(
            host="TH",
            home="KH",
            forms=(ExploitationType.ForcedCriminality,),
            sectors=(LabourSector.OnlineScamOperations,),
            agency=AgencyType.ImmigrationService,
            identified_on=date(2024, 2, 3),
        )
    ] * 7
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES)
    assert stats.table("by_labour_sector").count(("TH-MM",), "Fishing").value == 6
    assert stats.table("by_labour_sector").count(("TH-KH",), "OnlineScamOperations").value == 7
    assert stats.table("by_agency_type").count(("TH-KH",), "ImmigrationService").value == 7
    assert stats.table("by_period").count(("TH-KH",), "2024-02").value == 7
    assert stats.table("sex_by_age_band").count(("Male",), "Adult18To24").value == 6
    assert stats.check.withheld == 0
    quarterly = regional_statistics(states_of(specs), AGREEMENTS, rules=rules(period="quarter"))
    assert quarterly.table("by_period").count(("TH-MM",), "2024-Q1").value == 6
    assert quarterly.period == Period("2024-01", "2024-02", PeriodUnit.QUARTER)
    rendered = to_table(stats, "th")
    assert labels_for("th").label(LabourSector.Fishing) in rendered


def test_several_forms_count_under_each_and_once_in_the_total() -> None:
    both = (ExploitationType.ForcedLabour, ExploitationType.SexualExploitation)
    specs = [Spec(forms=both)] * 5 + [Spec(forms=())] * 6 + [Spec(home="KR")] * 5 + [Spec(home=None)] * 5
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES)
    table = stats.table("by_exploitation")
    assert table.multi_counted
    assert table.count(("TH-MM",), "ForcedLabour").value == 5
    assert table.count(("TH-MM",), "SexualExploitation").value == 5
    assert table.count(("TH-MM",), "Unrecorded").value == 6
    assert table.count(("TH-MM",), ALL).value == 11
    assert table.count(("TH->KR",), "ForcedLabour").value == 5
    assert table.count(("TH->unknown",), ALL).value == 5
    assert table.count(table.all_rows, "ForcedLabour").value == 15
    assert table.count(table.all_rows, ALL).value == stats.people.value == 21
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
    stats = regional_statistics(states, AGREEMENTS, rules=RULES, as_of=AS_OF)
    row = ("TH-MM",)
    table = stats.table("by_period")
    assert table.count(row, "2024-03").suppressed  # 2 people
    assert sum(table.count(row, month).suppressed for month in table.columns) >= 2
    check_counts(states, stats)
    found = assert_protected([reading(stats)], THRESHOLD)
    assert found  # the test is not vacuous


def test_a_small_corridor_is_not_recovered_from_the_other_tables() -> None:
    """The worked example of the README: 48 people on one corridor and 3 on another in one month."""
    many = [
        Spec(sex=sex, age_band=age, identified_on=date(2025, 1, 5))
        for sex, age in itertools.product(
            (Gender.Female, Gender.Male), (AgeBand.Adult18To24, AgeBand.Adult25To34, AgeBand.Child15To17)
        )
    ] * 8
    few = [
        Spec(home="LA", sex=Gender.Female, age_band=AgeBand.Child15To17, identified_on=date(2025, 1, 20))
    ] * 2
    few += [Spec(home="LA", sex=Gender.Male, age_band=AgeBand.Adult18To24, identified_on=date(2025, 1, 21))]
    states = states_of([*many, *few])
    stats = regional_statistics(states, AGREEMENTS, rules=RULES)
    for table in stats.tables:
        if Dimension.CORRIDOR in table.row_dimensions:
            assert table.count(("TH-LA",), ALL).suppressed, table.name
    by_age = stats.table("by_age_band")
    assert by_age.count(("TH-MM",), "Adult25To34").value == 16
    assert by_age.count(by_age.all_rows, "Child15To17").value == 18
    assert stats.people.value == 51
    check_counts(states, stats)
    found = assert_protected([reading(stats)], THRESHOLD)
    lao = ("2025-01", "TH-LA", *(ALL,) * 5)
    men = (ALL, "TH-LA", ALL, ALL, "Male", ALL, ALL)
    assert found[(0, "people", lao)] == pytest.approx((2, 33))
    assert found[(0, "people", men)] == pytest.approx((1, 17))


def test_medians_on_five_cases_and_suppressed_on_four() -> None:
    steps = [(1, 5, 10, 0), (3, 6, 12, 1), (4, 7, 14, 1), (10, 8, 16, 2), (20, 30, None, None)]
    specs = [
        Spec(to_referral=r, to_answer=a, to_return=ret, to_handover=h, identified_on=date(2024, 1, 1 + i))
        for i, (r, a, ret, h) in enumerate(steps)
    ]
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES)
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

    six = regional_statistics(states_of([*specs, Spec(to_referral=8, to_answer=9)]), AGREEMENTS, rules=RULES)
    entry = six.timeliness_of("TH-MM")
    assert entry is not None
    assert entry.identification_to_referral.value == 6.0  # (4 + 8) / 2
    assert entry.referral_to_answer.value == 7.5

    four = regional_statistics(states_of(specs[:4]), AGREEMENTS, rules=RULES)
    for where in ("TH-MM", ALL):
        entry = four.timeliness_of(where)
        assert entry is not None
        assert all(entry.indicator(m).value is None for m in Measure)
        assert all(entry.indicator(m).cases in (None, 0) for m in Measure)
    assert four.people.suppressed
    assert four.people.value is None
    assert "(n=4)" not in to_table(four, "en")


def test_a_median_most_cases_share_is_withheld() -> None:
    specs = [Spec(to_referral=3)] * 9 + [Spec(to_referral=8)]
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES)
    entry = stats.timeliness_of("TH-MM")
    assert entry is not None
    assert entry.identification_to_referral.cases == 10
    assert entry.identification_to_referral.value is None  # 9 of 10 took 3 days: the median tells them
    assert entry.identification_to_referral.suppressed
    lenient = regional_statistics(
        states_of(specs), AGREEMENTS, rules=rules(medians={"minimum_cases": None, "dominance": 0.95})
    )
    assert lenient.timeliness_of("TH-MM").identification_to_referral.value == 3.0  # type: ignore[union-attr]


def test_one_small_corridor_hides_a_second_and_its_count() -> None:
    quick = Spec(to_referral=2)
    specs = [quick] * 6 + [Spec(host="MY", home="ID", to_referral=9)] * 8 + [Spec(host="JP", home="PH")] * 1
    specs += [Spec(host="JP", home="PH", to_referral=30)]
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES)
    rows = timeliness_rows(stats)
    name = Measure.IDENTIFICATION_TO_REFERRAL.value
    assert rows[(name, "JP-PH")]["suppressed"]  # 1 case
    assert rows[(name, ALL)]["cases"] == 15
    assert sum(bool(rows[(name, c)]["suppressed"]) for c in ("TH-MM", "MY-ID")) >= 1
    assert_protected([reading(stats)], THRESHOLD)


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
    stats = regional_statistics(states_of(specs), AGREEMENTS, rules=RULES, as_of=as_of)
    entry = stats.timeliness_of("TH-MM")
    assert entry is not None
    share = entry.follow_ups_on_time
    # 12 follow-ups due: 3 cases × 2 on time, one on time of the 'late' case (6 months, early).
    assert (share.cases, share.observations) == (6, 12)
    assert share.value == pytest.approx(7 / 12)


def test_counts_rounded_down_to_the_base() -> None:
    specs = [Spec()] * 13 + [Spec(home="LA")] * 8 + [Spec(home="LA", sex=Gender.Male)] * 2
    states = states_of(specs)
    stats = regional_statistics(states, AGREEMENTS, rules=rules(rounding_base=5))
    by_sex = stats.table("by_sex")
    assert by_sex.count(("TH-MM",), ALL).value == 10
    assert by_sex.count(("TH-LA",), ALL).value == 10
    assert by_sex.count(("TH-LA",), "Male").suppressed
    check_counts(states, stats)
    assert_protected([reading(stats)], THRESHOLD)
    assert "rounded down to a multiple of 5" in to_table(stats, "en")


def test_the_rules_are_checked() -> None:
    with pytest.raises(ValueError, match="minimum_frequency"):
        StatisticsRules(minimum_frequency=1)
    with pytest.raises(ValueError, match="rounding_base 10 is above minimum_frequency 5"):
        StatisticsRules(rounding_base=10)
    with pytest.raises(ValueError, match="crossings do not allow"):
        StatisticsRules(
            crossings={Dimension.CORRIDOR: (Dimension.SEX,)},
            tables=(TableRule(name="t", title="T", rows=(Dimension.SEX,), column=Dimension.AGE_BAND),),
        )
    with pytest.raises(ValueError, match="appears twice"):
        TableRule(name="t", title="T", rows=(Dimension.SEX,), column=Dimension.SEX)


def test_a_bad_rules_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "statistics.yaml"
    path.write_text("minimum_frequency: eleven\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="minimum_frequency"):
        load_rules(path)
    path.write_text("minimum_frequency: 11\nrounding_base: 3\n", encoding="utf-8")
    assert load_rules(path).protection_level == 11


def test_no_cases() -> None:
    stats = regional_statistics([], AGREEMENTS, rules=RULES)
    assert stats.people.value == 0
    assert stats.reference_month is None
    assert [row["corridor"] for row in to_rows(stats) if row["table"] == "timeliness"] == [ALL] * 5
    assert "Total" in to_table(stats, "en")


def test_latent_joints_close_every_cycle_of_tables() -> None:
    pairs = [frozenset(pair) for pair in (("corridor", "sex"), ("corridor", "age_band"), ("sex", "age_band"))]
    joints = latent_patterns([frozenset(Dimension(d) for d in pair) for pair in pairs])
    assert joints == {frozenset({Dimension.CORRIDOR, Dimension.SEX, Dimension.AGE_BAND})}
    cycle = [("corridor", "sex"), ("sex", "age_band"), ("age_band", "period"), ("period", "corridor")]
    joints = latent_patterns([frozenset(Dimension(d) for d in pair) for pair in cycle])
    assert joints  # a chordless 4-cycle is triangulated
    assert all(len(joint) == 3 for joint in joints)
    assert not latent_patterns(
        patterns_of([TableRule(name="t", title="T", rows=(Dimension.SEX,), column=Dimension.AGE_BAND)])
    )


# --------------------------------------------------------------------------------------------------
# The linked system alone
# --------------------------------------------------------------------------------------------------


def test_the_four_cells_of_a_two_by_two_table_protect_each_other() -> None:
    # rows a, b; columns x, y; a·x = 1 is small. Withholding a·x alone lets a reader recover it.
    values = {"ax": 1, "ay": 9, "bx": 8, "by": 12, "a": 10, "b": 20, "x": 9, "y": 21, "all": 30}
    relations = [
        Relation.total_of("a", ["ax", "ay"]),
        Relation.total_of("b", ["bx", "by"]),
        Relation.total_of("x", ["ax", "bx"]),
        Relation.total_of("y", ["ay", "by"]),
        Relation.total_of("all", ["a", "b"]),
        Relation.total_of("all", ["x", "y"]),
    ]
    system = System(values, relations)
    assert intervals(system, frozenset({"ax"})) == {"ax": (1.0, 1.0)}
    protection = protect(system, ["ax"], 5)
    assert protection.secondary == {"ay", "bx", "by"}  # the cheapest: the other three inner cells
    assert all(high - low >= 5 for low, high in protection.intervals.values())


def test_earlier_figures_that_changed_are_refused() -> None:
    specs = [Spec(identified_on=date(2024, 1, 5))] * 6
    first = regional_statistics(
        states_of(specs), AGREEMENTS, rules=RULES, period=Period("2024-01", "2024-01")
    )
    published = as_published("RS-1", first)
    late = states_of([*specs, Spec(identified_on=date(2024, 1, 20))])
    with pytest.raises(InconsistentPublication, match="RS-1"):
        regional_statistics(
            late, AGREEMENTS, rules=RULES, period=Period("2024-01", "2024-02"), earlier=[published]
        )


def as_published(name: str, stats: RegionalStatistics) -> Published:
    assert stats.period is not None
    people = {key: row["value"] for key, row in count_rows(stats).items()}
    cases = {key: row["cases"] for key, row in timeliness_rows(stats).items()}
    return Published(
        name,
        stats.period,
        stats.rules.rounding_base,
        patterns_of(stats.rules.tables),
        people,  # type: ignore[arg-type]
        cases,  # type: ignore[arg-type]
    )


def test_an_earlier_publication_cannot_be_subtracted() -> None:
    """January and February published; then January to March: March's two people would be the
    difference of the totals, unless the second publication is protected together with the first."""
    specs = (
        [Spec(identified_on=date(2024, 1, 5))] * 6
        + [Spec(identified_on=date(2024, 2, 5))] * 6
        + [Spec(identified_on=date(2024, 3, 5))] * 2
        + [Spec(home="LA", identified_on=date(2024, 1, 7))] * 9
        + [Spec(home="LA", identified_on=date(2024, 3, 7))] * 9
    )
    states = states_of(specs)
    first = regional_statistics(states, AGREEMENTS, rules=RULES, period=Period("2024-01", "2024-02"))
    alone = regional_statistics(states, AGREEMENTS, rules=RULES, period=Period("2024-01", "2024-03"))
    readings = [reading(first), reading(alone)]
    found = attack(readings, DIMENSIONS, MULTI)
    assert any(high - low < THRESHOLD for low, high in found.values())  # unlinked, the two leak

    linked = regional_statistics(
        states,
        AGREEMENTS,
        rules=RULES,
        period=Period("2024-01", "2024-03"),
        earlier=[as_published("RS-1", first)],
    )
    assert linked.check.linked == ("RS-1",)
    check_counts(states, linked)
    assert_protected([reading(first), reading(linked)], THRESHOLD)


# --------------------------------------------------------------------------------------------------
# Any collection of cases
# --------------------------------------------------------------------------------------------------

ROUTES = (("TH", "MM"), ("MM", "TH"), ("TH", "LA"), ("TH", None), ("TH", "KR"))
FORMS = (ExploitationType.ForcedLabour, ExploitationType.SexualExploitation, ExploitationType.ForcedMarriage)
SECTORS = (LabourSector.Fishing, LabourSector.OnlineScamOperations)

specs_strategy = st.builds(
    lambda route, *rest: Spec(route[0], route[1], *rest),
    st.sampled_from(ROUTES),
    st.sampled_from((date(2024, 1, 3), date(2024, 1, 20), date(2024, 2, 9), date(2024, 3, 30))),
    st.sampled_from((Gender.Female, Gender.Male)),
    st.sampled_from((AgeBand.Adult18To24, AgeBand.Child15To17)),
    st.lists(st.sampled_from(FORMS), max_size=2, unique=True).map(tuple),
    st.lists(st.sampled_from(SECTORS), max_size=2, unique=True).map(tuple),
    st.sampled_from((AgencyType.LawEnforcement, AgencyType.SocialWelfare, None)),
    st.none() | st.integers(0, 20),
    st.none() | st.integers(0, 40),
    st.none() | st.integers(0, 30),
    st.none() | st.integers(0, 3),
    st.lists(
        st.tuples(st.sampled_from((3, 6, 12)), st.integers(-5, 30)), max_size=3, unique_by=lambda f: f[0]
    ).map(tuple),
)

#: Cases in groups (one person alone, a few alike, many alike), so small cells sit next to large ones.
groups_strategy = st.lists(st.tuples(specs_strategy, st.sampled_from((1, 1, 2, 3, 6, 12))), max_size=9).map(
    lambda groups: [spec for spec, size in groups for _ in range(size)]
)

rules_strategy = st.builds(
    lambda k, protection, base: rules(minimum_frequency=k, protection=protection, rounding_base=base),
    st.sampled_from((2, 3, 5)),
    st.sampled_from((None, None, 2, 4)),
    st.sampled_from((1, 1, 1, 2)),
)


@settings(max_examples=60, deadline=None)
@given(groups_strategy, rules_strategy)
def test_no_withheld_figure_can_be_narrowed_below_the_protection(
    specs: list[Spec], chosen: StatisticsRules
) -> None:
    states = states_of(specs)
    stats = regional_statistics(states, AGREEMENTS, rules=chosen, as_of=AS_OF)
    check_counts(states, stats)
    check_timeliness(states, stats, AS_OF)
    if stats.period is not None:
        found = assert_protected([reading(stats)], chosen.protection_level)
        event(f"withheld figures: {_bucket(len(found))}")
    check = stats.check
    event(f"secondary beyond primary: {_bucket(check.secondary)}")
    event(f"secondary share of withheld: {_share(check.secondary, check.withheld)}")


@settings(max_examples=40, deadline=None)
@given(st.lists(specs_strategy, max_size=8), st.sampled_from((2, 3, 5)))
def test_nothing_is_withheld_when_no_count_is_small(specs: list[Spec], k: int) -> None:
    """Every case repeated k times: every count is a multiple of k, so none needs protection and none
    is withheld, and every margin adds up."""
    states = states_of([spec for spec in specs for _ in range(k)])
    stats = regional_statistics(states, AGREEMENTS, rules=rules(minimum_frequency=k), as_of=AS_OF)
    rows = count_rows(stats)
    people = [row for row in rows.values()]
    assert not any(row["suppressed"] for row in people)
    assert (stats.check.withheld, stats.check.secondary) == (0, 0)
    check_counts(states, stats)


@settings(max_examples=20, deadline=None)
@given(groups_strategy, groups_strategy)
def test_an_overlapping_later_publication_is_protected_with_the_earlier(
    first: list[Spec], later: list[Spec]
) -> None:
    early = [replace(spec, identified_on=date(2024, 1, spec.identified_on.day)) for spec in first]
    late = [replace(spec, identified_on=date(2024, 2, spec.identified_on.day % 28 + 1)) for spec in later]
    states = states_of([*early, *late])
    january = Period("2024-01", "2024-01")
    before = regional_statistics(states, AGREEMENTS, rules=RULES, period=january, as_of=AS_OF)
    both = Period("2024-01", "2024-02")
    after = regional_statistics(
        states, AGREEMENTS, rules=RULES, period=both, as_of=AS_OF, earlier=[as_published("RS-1", before)]
    )
    check_counts(states, after)
    readings = [reading(before), reading(after)]
    found = attack(readings, DIMENSIONS, MULTI)
    for name, (low, high) in found.items():
        assert high - low >= THRESHOLD - 1e-6, (name, low, high)
    event(f"withheld figures: {_bucket(len(found))}")


def _bucket(n: int) -> str:
    return "0" if n == 0 else "1-5" if n <= 5 else "6-20" if n <= 20 else ">20"


def _share(part: int, whole: int) -> str:
    return "-" if whole == 0 else f"{math.floor(10 * part / whole) * 10}%"
