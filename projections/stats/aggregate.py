"""Anonymised regional statistics of the cases: flows of people and the timeliness of each step.

Pure: case states (``projections.cases.fold``), the agreements and the rules in, frozen tables out;
nothing is read or written (only :func:`to_table` reads the code-list labels).

**What is counted.** People, one case each, identified within the publication's period, in the tables
the rules ask for (``config/statistics.yaml``), over the dimensions of :class:`Dimension`: period of
identification (month ``YYYY-MM`` or quarter ``YYYY-Qn``), corridor (the id of the agreement joining
the two countries, e.g. ``TH-MM`` in either direction; ``HOST->HOME`` where no agreement joins them;
``HOST->unknown`` while the partner country is not known), form of exploitation, labour sector, sex,
age band and the type of the identifying agency. A person subjected to several forms of exploitation
(or in several sectors) is counted once under *each*, so the cells of a row split by form may add up to
more than the row; every row carries its total of distinct people. A case with nothing recorded on a
dimension is counted under ``Unrecorded``.

**Do No Harm (disclosure control)**, over the whole publication as one linked system
(``projections.stats.protection``):

- every count of fewer than ``minimum_frequency`` people (or cases behind an indicator) is withheld
  (primary suppression); its value is ``None`` and the small number never leaves this module;
- more counts are withheld (secondary suppression) until, for every withheld count, the range a reader
  can deduce for it from *everything published* (every table, margin and total, the numbers of cases
  behind the timeliness indicators, and earlier publications of overlapping periods) is at least
  ``protection`` wide; this is checked by the attacker's linear programs before anything is returned.
  Whether a count was withheld for being small or to protect another is not said;
- a median is withheld when it rests on fewer than ``medians.minimum_cases`` cases or when one value is
  shared by more than ``medians.dominance`` of them;
- counts may be rounded down to a base (then margins no longer add up exactly);
- nothing published describes a single case: no case ids, no free text, no date finer than a month.

Cells absent from a table are zero. Timeliness is measured in calendar days between the dates of the
two steps.
"""

from __future__ import annotations

import itertools
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property

from hub.agreements import Agreements
from hub.codes import CodeLabels, labels_for
from hub.contract import AgeBand, AgencyType, CountryCode, ExploitationType, Gender, LabourSector
from projections.cases.fold import CaseState
from projections.obligations.rules import add_months
from projections.stats.protection import Bounds, InconsistentPublication, Relation, System, protect
from projections.stats.protection import Cell as CellId
from projections.stats.rules import (
    DEFAULT_RULES,
    DIMENSIONS,
    MULTI_VALUED,
    Dimension,
    PeriodUnit,
    StatisticsRules,
    TableRule,
)

#: A follow-up recorded up to two weeks after the agreed month is still on time.
FOLLOW_UP_GRACE = timedelta(days=14)
#: Stands for "all values" of a dimension: the totals.
ALL = "*"
#: The value of a case with nothing recorded on a dimension.
UNRECORDED = "Unrecorded"
#: The partner country of a case while it is not known.
UNKNOWN_HOME = "unknown"
#: How a suppressed value is shown by :func:`to_table`.
SUPPRESSED_MARK = "x"


class Measure(StrEnum):
    """The timeliness indicators; the values are the field names of :class:`Timeliness`."""

    IDENTIFICATION_TO_REFERRAL = "identification_to_referral"
    REFERRAL_TO_ANSWER = "referral_to_answer"
    ANSWER_TO_RETURN = "answer_to_return"
    RETURN_TO_HANDOVER = "return_to_handover"
    FOLLOW_UPS_ON_TIME = "follow_ups_on_time"


_CODE_LISTS: dict[Dimension, type[StrEnum]] = {
    Dimension.EXPLOITATION: ExploitationType,
    Dimension.LABOUR_SECTOR: LabourSector,
    Dimension.SEX: Gender,
    Dimension.AGE_BAND: AgeBand,
    Dimension.AGENCY_TYPE: AgencyType,
}


# ---------------------------------------------------------------------------------------------------
# Periods
# ---------------------------------------------------------------------------------------------------


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def quarter_of(month: str) -> str:
    year, number = month.split("-")
    return f"{year}-Q{(int(number) - 1) // 3 + 1}"


def _next_month(month: str) -> str:
    year, number = map(int, month.split("-"))
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


@dataclass(frozen=True, order=True)
class Period:
    """The months ``first`` to ``last`` (``YYYY-MM``, inclusive), counted by month or by quarter."""

    first: str
    last: str
    unit: PeriodUnit = PeriodUnit.MONTH

    def __post_init__(self) -> None:
        for month in (self.first, self.last):
            year, _, number = month.partition("-")
            if not (len(year) == 4 and year.isdigit() and number.isdigit() and 1 <= int(number) <= 12):
                raise ValueError(f"period: {month!r} is not a month (YYYY-MM)")
        if self.first > self.last:
            raise ValueError(f"period: {self.first} is after {self.last}")

    @property
    def label(self) -> str:
        return f"{self.first}..{self.last}"

    @property
    def months(self) -> tuple[str, ...]:
        months = [self.first]
        while months[-1] < self.last:
            months.append(_next_month(months[-1]))
        return tuple(months)

    def contains(self, day: date) -> bool:
        return self.first <= month_of(day) <= self.last

    def value_of(self, day: date) -> str:
        month = month_of(day)
        return quarter_of(month) if self.unit is PeriodUnit.QUARTER else month

    def overlaps(self, other: Period) -> bool:
        return self.first <= other.last and other.first <= self.last


# ---------------------------------------------------------------------------------------------------
# Published figures
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Count:
    """A number of people; ``None`` when suppressed."""

    value: int | None
    suppressed: bool = False

    def __post_init__(self) -> None:
        if self.suppressed != (self.value is None):
            raise ValueError("a count has a value exactly when it is not suppressed")


ZERO = Count(0)
SUPPRESSED = Count(None, suppressed=True)


@dataclass(frozen=True)
class Cell:
    row: tuple[str, ...]  # one value per row dimension of the table
    column: str
    count: Count


@dataclass(frozen=True)
class Table:
    """People by the row dimensions (``rows``) and one column dimension. ``cells`` holds the non-zero
    inner cells; ``row_totals`` (column ``ALL``) count distinct people, ``column_totals`` (row all
    ``ALL``) and ``total`` too. With ``multi_counted`` (the column is the form of exploitation or the
    labour sector) a person may be in several cells of a row, so a row's cells may add up to more than
    its total."""

    name: str
    title: str
    row_dimensions: tuple[Dimension, ...]
    column_dimension: Dimension
    rows: tuple[tuple[str, ...], ...]
    columns: tuple[str, ...]
    cells: tuple[Cell, ...]
    row_totals: tuple[Cell, ...]
    column_totals: tuple[Cell, ...]
    total: Count
    multi_counted: bool = False

    @property
    def all_rows(self) -> tuple[str, ...]:
        """The row key of the column totals."""
        return (ALL,) * len(self.row_dimensions)

    @cached_property
    def _index(self) -> dict[tuple[tuple[str, ...], str], Count]:
        index = {(cell.row, cell.column): cell.count for cell in (*self.cells, *self.row_totals)}
        index |= {(cell.row, cell.column): cell.count for cell in self.column_totals}
        index[(self.all_rows, ALL)] = self.total
        return index

    def count(self, row: tuple[str, ...], column: str) -> Count:
        """The cell at ``row`` and ``column``, either of which may be ``ALL`` for a total; zero when
        no one is there."""
        return self._index.get((row, column), ZERO)

    def key(self, row: tuple[str, ...], column: str) -> Key:
        """The cell's key over all dimensions (``ALL`` on those the table is not split by)."""
        given = dict(zip(self.row_dimensions, row, strict=True)) | {self.column_dimension: column}
        return tuple(given.get(dim, ALL) for dim in DIMENSIONS)

    def every_cell(self) -> Iterable[tuple[tuple[str, ...], str, Count]]:
        for cell in (*self.cells, *self.row_totals, *self.column_totals):
            yield cell.row, cell.column, cell.count
        yield self.all_rows, ALL, self.total


@dataclass(frozen=True)
class Indicator:
    """A timeliness indicator: a median number of days, or a share between 0 and 1. ``cases`` is the
    number of cases (people) it is computed on, ``observations`` the number of intervals or
    follow-ups. With the cases withheld, all three are ``None``; with the median withheld alone (too
    few cases for a median, or dominated by one value), ``value`` is ``None``; with no cases at all,
    ``value`` is ``None`` and ``cases`` 0. ``suppressed`` is set whenever something was withheld."""

    value: float | None
    cases: int | None
    observations: int | None
    suppressed: bool = False


@dataclass(frozen=True)
class Timeliness:
    """The indicators of one corridor, or of all of them (``corridor`` is ``ALL``)."""

    corridor: str
    identification_to_referral: Indicator
    referral_to_answer: Indicator
    answer_to_return: Indicator
    return_to_handover: Indicator
    follow_ups_on_time: Indicator

    def indicator(self, measure: Measure) -> Indicator:
        return getattr(self, measure.value)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Check:
    """What the attacker's check found, for the operator (not published: how many were withheld for
    being small would say how many small cells there are)."""

    cells: int  # counts in the publication, zero cells left out
    withheld: int
    primary: int
    secondary: int
    narrowest: float | None  # the narrowest range a reader can deduce for a withheld count
    rounds: int
    linked: tuple[str, ...] = ()  # the earlier publications checked with this one


@dataclass(frozen=True)
class RegionalStatistics:
    rules: StatisticsRules
    period: Period | None  # None when there are no cases at all
    reference_month: str | None  # the month of ``as_of``, from which follow-ups are judged
    people: Count
    tables: tuple[Table, ...]
    timeliness: tuple[Timeliness, ...]  # by corridor, then overall (corridor ``ALL``) last
    check: Check

    @property
    def threshold(self) -> int:
        return self.rules.minimum_frequency

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)

    def timeliness_of(self, corridor: str) -> Timeliness | None:
        return next((entry for entry in self.timeliness if entry.corridor == corridor), None)


@dataclass(frozen=True)
class Published:
    """An earlier publication as a reader holds it: what it showed of each count (None: withheld)."""

    id: str
    period: Period
    rounding_base: int
    patterns: frozenset[frozenset[Dimension]]
    people: Mapping[Key, int | None]
    cases: Mapping[tuple[str, str], int | None]  # (measure, corridor)


# ---------------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------------

#: A count's key: one value, or ``ALL``, per dimension in the order of ``DIMENSIONS``.
Key = tuple[str, ...]
Pattern = frozenset[Dimension]
_PERIOD_AT = DIMENSIONS.index(Dimension.PERIOD)
_CORRIDOR_AT = DIMENSIONS.index(Dimension.CORRIDOR)
_EVERYONE: Key = (ALL,) * len(DIMENSIONS)


def corridor_of(state: CaseState, agreements: Agreements) -> str:
    """The corridor id of a case, ``HOST->HOME`` without agreement, ``HOST->unknown`` without partner."""
    host = state.host.value
    if state.home is None:
        return f"{host}->{UNKNOWN_HOME}"
    corridor = agreements.corridor(host, state.home.value)
    return corridor.id if corridor is not None else f"{host}->{state.home.value}"


def profile(state: CaseState, agreements: Agreements, period: Period) -> tuple[frozenset[str], ...]:
    """The values of a case on each dimension (several forms and sectors, one of everything else)."""
    values = {
        Dimension.PERIOD: frozenset({period.value_of(state.identified_on)}),
        Dimension.CORRIDOR: frozenset({corridor_of(state, agreements)}),
        Dimension.EXPLOITATION: frozenset(form.value for form in state.exploitation_types) or {UNRECORDED},
        Dimension.LABOUR_SECTOR: frozenset(sector.value for sector in state.labour_sectors) or {UNRECORDED},
        Dimension.SEX: frozenset({state.sex.value}),
        Dimension.AGE_BAND: frozenset({state.age_band.value}),
        Dimension.AGENCY_TYPE: frozenset({state.agency_type.value if state.agency_type else UNRECORDED}),
    }
    return tuple(frozenset(values[dimension]) for dimension in DIMENSIONS)


def keys_of(values: tuple[frozenset[str], ...], pattern: Pattern) -> Iterable[Key]:
    """The keys with ``pattern``'s dimensions set that a case with ``values`` is counted in."""
    choices = [
        sorted(options) if dimension in pattern else [ALL]
        for dimension, options in zip(DIMENSIONS, values, strict=True)
    ]
    return itertools.product(*choices)


def pattern_of(key: Key) -> Pattern:
    return frozenset(dimension for dimension, value in zip(DIMENSIONS, key, strict=True) if value != ALL)


def project(key: Key, pattern: Pattern) -> Key:
    return tuple(value if dim in pattern else ALL for dim, value in zip(DIMENSIONS, key, strict=True))


def patterns_of(tables: Iterable[TableRule]) -> frozenset[Pattern]:
    """Every combination of dimensions published: each table's inner cells, row and column totals and
    the grand total."""
    found: set[Pattern] = set()
    for table in tables:
        found |= {table.dimensions, frozenset(table.rows), frozenset({table.column}), frozenset()}
    return frozenset(found)


def latent_patterns(patterns: Iterable[Pattern]) -> frozenset[Pattern]:
    """The unpublished crossings a reader can still reason about: tables that pairwise share
    dimensions (corridor × sex, corridor × age band, sex × age band) are margins of one joint table
    (corridor × sex × age band) whose cells must all be ≥ 0, and that can narrow a withheld cell more
    than the tables alone. The joints are the maximal cliques of a triangulation of the graph joining
    two dimensions published together (min-fill elimination: few dimensions, so exact enough), less
    those already published. The system counts them as latent cells: known to exist, never shown."""
    patterns = list(patterns)
    edges: dict[Dimension, set[Dimension]] = defaultdict(set)
    for pattern in patterns:
        for first, second in itertools.permutations(pattern, 2):
            edges[first].add(second)
    cliques: list[frozenset[Dimension]] = []
    remaining = set(edges)
    while remaining:

        def fill(node: Dimension) -> int:
            near = edges[node] & remaining
            return sum(1 for a, b in itertools.combinations(sorted(near), 2) if b not in edges[a])

        node = min(sorted(remaining), key=fill)
        near = edges[node] & remaining
        for a, b in itertools.permutations(near, 2):
            edges[a].add(b)
        cliques.append(frozenset({node, *near}))
        remaining.discard(node)
    maximal = {clique for clique in cliques if not any(clique < other for other in cliques)}
    return frozenset(clique for clique in maximal if not any(clique <= pattern for pattern in patterns))


def people_cell(period: Period, key: Key) -> CellId:
    """The linked system's name of a count: a count of one period value is the same count in every
    publication; one over the whole period is that period's."""
    return ("people", "" if key[_PERIOD_AT] != ALL else period.label, key)


def cases_cell(period: Period, measure: str, corridor: str) -> CellId:
    return ("cases", period.label, measure, corridor)


# ---------------------------------------------------------------------------------------------------
# Timeliness
# ---------------------------------------------------------------------------------------------------


def step_days(state: CaseState) -> dict[Measure, int]:
    """The days each step of the case took, for the steps it has completed."""
    days: dict[Measure, int] = {}
    referred = state.referral_requested_at.date() if state.referral_requested_at else None
    answered = state.answered_at.date() if state.answered_at else None
    returned = state.planned_return_on or (state.return_notice_at.date() if state.return_notice_at else None)
    if referred is not None:
        days[Measure.IDENTIFICATION_TO_REFERRAL] = (referred - state.identified_on).days
    if referred is not None and answered is not None:
        days[Measure.REFERRAL_TO_ANSWER] = (answered - referred).days
    if answered is not None and returned is not None:
        days[Measure.ANSWER_TO_RETURN] = (returned - answered).days
    if state.planned_return_on is not None and state.handed_over_on is not None:
        days[Measure.RETURN_TO_HANDOVER] = (state.handed_over_on - state.planned_return_on).days
    return days


def follow_ups_due(state: CaseState, agreements: Agreements, as_of: date) -> list[bool]:
    """For each follow-up of the case whose time is up at ``as_of`` (its agreed month after the
    handover plus the grace has ended before ``as_of``), whether it was recorded on time. Without an
    agreement, no follow-up is owed."""
    if state.handed_over_on is None or state.home is None:
        return []
    corridor = agreements.corridor(state.host.value, state.home.value)
    if corridor is None:
        return []
    recorded = {follow_up.months: follow_up.assessed_on for follow_up in state.follow_ups}
    outcomes: list[bool] = []
    for months in corridor.deadlines.follow_up_months:
        deadline = add_months(state.handed_over_on, months) + FOLLOW_UP_GRACE
        if deadline < as_of:
            assessed = recorded.get(months)
            outcomes.append(assessed is not None and assessed <= deadline)
    return outcomes


@dataclass
class _Sample:
    days: list[int] = field(default_factory=list)
    outcomes: list[bool] = field(default_factory=list)
    cases: int = 0


def _samples(
    states: Sequence[CaseState], agreements: Agreements, as_of: date | None
) -> dict[tuple[Measure, str], _Sample]:
    samples: dict[tuple[Measure, str], _Sample] = defaultdict(_Sample)
    for state in states:
        corridor = corridor_of(state, agreements)
        outcomes = follow_ups_due(state, agreements, as_of) if as_of is not None else []
        for where in (corridor, ALL):
            for measure, days in step_days(state).items():
                sample = samples[(measure, where)]
                sample.cases += 1
                sample.days.append(days)
            if outcomes:
                sample = samples[(Measure.FOLLOW_UPS_ON_TIME, where)]
                sample.cases += 1
                sample.outcomes += outcomes
    return samples


def dominated(days: Sequence[int], share: float) -> bool:
    """One value is shared by more than ``share`` of the observations: a median would tell nearly
    everyone's value."""
    if not days:
        return False
    most = Counter(days).most_common(1)[0][1]
    return most > share * len(days)


# ---------------------------------------------------------------------------------------------------
# The linked system of one publication (and the earlier ones it overlaps)
# ---------------------------------------------------------------------------------------------------


@dataclass
class _Layer:
    """One publication's counts: the current one, or an earlier one recomputed from today's cases."""

    period: Period
    patterns: frozenset[Pattern]
    counted: frozenset[Pattern]  # ``patterns``, their latent joints and, when linking, refinements by period
    people: Counter[Key]
    cases: dict[tuple[str, str], int]  # (measure, corridor) -> cases

    def cells(self) -> dict[CellId, int]:
        found = {people_cell(self.period, key): value for key, value in self.people.items() if value > 0}
        found |= {cases_cell(self.period, *key): value for key, value in self.cases.items() if value > 0}
        return found

    def published_cells(self) -> set[CellId]:
        return {people_cell(self.period, key) for key in self.people if pattern_of(key) in self.patterns} | {
            cases_cell(self.period, *key) for key in self.cases
        }


def _layer(
    states: Sequence[CaseState],
    agreements: Agreements,
    period: Period,
    patterns: frozenset[Pattern],
    as_of: date | None,
    *,
    link: bool,
) -> tuple[_Layer, dict[tuple[Measure, str], _Sample]]:
    within = [state for state in states if period.contains(state.identified_on)]
    counted = set(patterns) | latent_patterns(patterns)
    if link:
        counted |= {pattern | {Dimension.PERIOD} for pattern in counted}
    people: Counter[Key] = Counter()
    for state in within:
        values = profile(state, agreements, period)
        for pattern in counted:
            people.update(keys_of(values, pattern))
    samples = _samples(within, agreements, as_of)
    cases = {(measure.value, where): sample.cases for (measure, where), sample in samples.items()}
    return _Layer(period, patterns, frozenset(counted), people, cases), samples


def _people_relations(layer: _Layer) -> list[Relation]:
    """Every coarser count against the finer counts that make it up, for every pair of counted
    patterns: equal to their sum, or, where a person may be in several parts, at least each part and
    at most their sum."""
    period = layer.period
    by_pattern: dict[Pattern, list[Key]] = defaultdict(list)
    for key, value in layer.people.items():
        if value > 0:
            by_pattern[pattern_of(key)].append(key)
    relations: list[Relation] = []
    for finer in sorted(layer.counted, key=sorted):
        for coarser in sorted(layer.counted, key=sorted):
            if not coarser < finer:
                continue
            groups: dict[Key, list[Key]] = defaultdict(list)
            for key in by_pattern.get(finer, ()):
                groups[project(key, coarser)].append(key)
            multi = bool((finer - coarser) & MULTI_VALUED)
            for total, parts in sorted(groups.items()):
                total_cell = people_cell(period, total)
                part_cells = [people_cell(period, part) for part in sorted(parts)]
                if multi:
                    relations.append(Relation.at_most(total_cell, part_cells))
                    relations += [Relation.at_most(part, [total_cell]) for part in part_cells]
                else:
                    relations.append(Relation.total_of(total_cell, part_cells))
    return relations


def _cases_relations(layer: _Layer) -> list[Relation]:
    """The cases behind an indicator add up over the corridors and are at most the corridor's people."""
    period = layer.period
    corridor_pattern = frozenset({Dimension.CORRIDOR})
    relations: list[Relation] = []
    for measure in Measure:
        corridors = sorted(
            where for (name, where), n in layer.cases.items() if name == measure.value and where != ALL and n
        )
        if not corridors:
            continue
        overall = cases_cell(period, measure.value, ALL)
        relations.append(
            Relation.total_of(overall, [cases_cell(period, measure.value, c) for c in corridors])
        )
        relations.append(Relation.at_most(overall, [people_cell(period, _EVERYONE)]))
        if corridor_pattern in layer.patterns:
            for corridor in corridors:
                key = tuple(corridor if at == _CORRIDOR_AT else ALL for at in range(len(DIMENSIONS)))
                relations.append(
                    Relation.at_most(cases_cell(period, measure.value, corridor), [people_cell(period, key)])
                )
    return relations


def _earlier_layer(
    earlier: Published, states: Sequence[CaseState], agreements: Agreements, as_of: date | None
) -> _Layer:
    layer, _ = _layer(states, agreements, earlier.period, earlier.patterns, as_of, link=True)
    # Its indicators' cases are not linked: they change as cases progress, so none can be subtracted.
    layer.cases = {}
    return layer


def _inconsistency(earlier: Published, layer: _Layer) -> str | None:
    """Where an earlier publication no longer matches today's cases (counts of its months changed)."""
    base = earlier.rounding_base
    for key, shown in sorted(earlier.people.items()):
        true = layer.people.get(key, 0)
        if shown is None:
            if true == 0:
                return f"{_describe(key)}: withheld then, none now"
        elif not shown <= true < shown + base:
            return f"{_describe(key)}: {shown} then, {true} now"
    return None


def _describe(key: Key) -> str:
    given = [f"{dim}={value}" for dim, value in zip(DIMENSIONS, key, strict=True) if value != ALL]
    return ", ".join(given) or "the grand total"


def _rounded(value: int, base: int) -> int:
    return value - value % base


def _build_system(
    current: _Layer, rules: StatisticsRules, earlier: Sequence[tuple[Published, _Layer]]
) -> tuple[System, set[CellId], dict[CellId, Bounds], frozenset[CellId], frozenset[CellId]]:
    """The linked system; the cells primary-suppressed; the bounds of the published ones (rounded);
    the earlier publications' withheld cells (still withheld) and their published cells (fixed)."""
    layers = [current, *(layer for _, layer in earlier)]
    values: dict[CellId, int] = {}
    relations: list[Relation] = []
    shown: set[CellId] = set()
    for layer in layers:
        values |= layer.cells()
        relations += _people_relations(layer) + _cases_relations(layer)
        shown |= layer.published_cells()
    latent = frozenset(cell for cell in values if cell not in shown)
    system = System(values, relations, latent)
    k = rules.minimum_frequency
    primary = {cell for cell in current.published_cells() if 0 < values.get(cell, 0) < k}
    base = rules.rounding_base
    bounds: dict[CellId, Bounds] = {}
    if base > 1:
        for cell in current.published_cells():
            value = values.get(cell, 0)
            if value:
                low = _rounded(value, base)
                bounds[cell] = Bounds(low, low + base - 1)
    before_withheld: set[CellId] = set()
    before_shown: set[CellId] = set()
    for published, layer in earlier:
        for key, figure in published.people.items():
            cell = people_cell(layer.period, key)
            if figure is None:
                before_withheld.add(cell)
            else:
                before_shown.add(cell)
                if published.rounding_base > 1:
                    bounds[cell] = Bounds(figure, figure + published.rounding_base - 1)
    return system, primary, bounds, frozenset(before_withheld), frozenset(before_shown - before_withheld)


# ---------------------------------------------------------------------------------------------------
# The statistics
# ---------------------------------------------------------------------------------------------------


def _order(dimension: Dimension, value: str) -> tuple[int, str]:
    """Codes in the order of their code list (then anything else, e.g. ``Unrecorded``); periods and
    corridors by their text."""
    code_list = _CODE_LISTS.get(dimension)
    if code_list is None:
        return (0, value)
    symbols = [code.value for code in code_list]
    return (symbols.index(value), "") if value in symbols else (len(symbols), value)


def _table(
    rule: TableRule, period: Period, people: Mapping[Key, int], withheld: frozenset[CellId], base: int
) -> Table:
    def count(key: Key) -> Count:
        value = people.get(key, 0)
        if people_cell(period, key) in withheld:
            return SUPPRESSED
        return Count(_rounded(value, base))

    inner = rule.dimensions
    positions = [DIMENSIONS.index(dim) for dim in rule.rows]
    column_at = DIMENSIONS.index(rule.column)
    found = [
        (tuple(k[i] for i in positions), k[column_at])
        for k, v in people.items()
        if v > 0 and pattern_of(k) == inner
    ]
    found.sort(key=lambda cell: (tuple(map(_order, rule.rows, cell[0])), _order(rule.column, cell[1])))
    rows = tuple(dict.fromkeys(row for row, _ in found))
    columns = tuple(sorted({column for _, column in found}, key=lambda column: _order(rule.column, column)))
    everyone = (ALL,) * len(rule.rows)

    def key(row: tuple[str, ...], column: str) -> Key:
        given = dict(zip(rule.rows, row, strict=True)) | {rule.column: column}
        return tuple(given.get(dim, ALL) for dim in DIMENSIONS)

    return Table(
        name=rule.name,
        title=rule.title,
        row_dimensions=rule.rows,
        column_dimension=rule.column,
        rows=rows,
        columns=columns,
        cells=tuple(Cell(row, column, count(key(row, column))) for row, column in found),
        row_totals=tuple(Cell(row, ALL, count(key(row, ALL))) for row in rows),
        column_totals=tuple(Cell(everyone, column, count(key(everyone, column))) for column in columns),
        total=count(key(everyone, ALL)),
        multi_counted=rule.column in MULTI_VALUED,
    )


def _indicators(
    samples: Mapping[tuple[Measure, str], _Sample],
    corridors: Sequence[str],
    period: Period,
    withheld: frozenset[CellId],
    rules: StatisticsRules,
) -> tuple[Timeliness, ...]:
    base = rules.rounding_base

    def indicator(measure: Measure, where: str) -> Indicator:
        sample = samples.get((measure, where))
        if sample is None or sample.cases == 0:
            return Indicator(None, 0, 0)
        if cases_cell(period, measure.value, where) in withheld:
            return Indicator(None, None, None, suppressed=True)
        cases = _rounded(sample.cases, base)
        if measure is Measure.FOLLOW_UPS_ON_TIME:
            share = sum(sample.outcomes) / len(sample.outcomes)
            return Indicator(share, cases, _rounded(len(sample.outcomes), base))
        if sample.cases < rules.median_minimum or dominated(sample.days, rules.medians.dominance):
            return Indicator(None, cases, cases, suppressed=True)
        return Indicator(float(statistics.median(sample.days)), cases, cases)

    return tuple(
        Timeliness(where, *(indicator(measure, where) for measure in Measure)) for where in (*corridors, ALL)
    )


def default_period(states: Iterable[CaseState], unit: PeriodUnit, as_of: date | None) -> Period | None:
    """From the first month a case was identified to the month of ``as_of`` (or of the last one)."""
    months = [month_of(state.identified_on) for state in states]
    if not months:
        return None
    last = month_of(as_of) if as_of is not None else max(months)
    return Period(min(min(months), last), max(last, min(months)), unit)


def regional_statistics(
    states: Iterable[CaseState],
    agreements: Agreements,
    *,
    rules: StatisticsRules = DEFAULT_RULES,
    as_of: date | None = None,
    period: Period | None = None,
    earlier: Sequence[Published] = (),
) -> RegionalStatistics:
    """The anonymised statistics of the cases identified in ``period`` (by default all of them), under
    ``rules``, protected together with the ``earlier`` publications whose periods overlap it (see the
    module's documentation). Follow-ups are judged at ``as_of``, by default the day of the latest
    event of any case. A case id given twice counts once (the last state given).

    Raises :class:`InconsistentPublication` when an overlapping earlier publication no longer matches
    the cases (its months' counts changed since), and :class:`ProtectionFailed` when no protection is
    found; in both cases nothing may be published."""
    # A case whose identification was retracted never was one: it is not counted anywhere.
    cases = [state for state in {state.case_id: state for state in states}.values() if not state.void]
    if as_of is None and cases:
        as_of = max(state.last_event_at for state in cases).date()
    if period is None:
        period = default_period(cases, rules.period, as_of)
    elif period.unit is not rules.period:
        period = Period(period.first, period.last, rules.period)
    patterns = patterns_of(rules.tables)
    if period is None:
        empty = Check(cells=0, withheld=0, primary=0, secondary=0, narrowest=None, rounds=0)
        return RegionalStatistics(
            rules,
            None,
            month_of(as_of) if as_of else None,
            ZERO,
            (),
            (Timeliness(ALL, *(Indicator(None, 0, 0) for _ in Measure)),),
            empty,
        )

    overlapping = [published for published in earlier if published.period.overlaps(period)]
    for published in overlapping:
        if published.period.unit is not period.unit:
            raise InconsistentPublication(
                f"earlier publication {published.id} counts by {published.period.unit}, "
                f"this one by {period.unit}: publish overlapping periods with the same unit"
            )
    link = bool(overlapping)
    current, samples = _layer(cases, agreements, period, patterns, as_of, link=link)
    linked: list[tuple[Published, _Layer]] = []
    for published in overlapping:
        layer = _earlier_layer(published, cases, agreements, as_of)
        problem = _inconsistency(published, layer)
        if problem is not None:
            raise InconsistentPublication(
                f"earlier publication {published.id} ({published.period.label}) no longer matches the cases "
                f"({problem}): counts of months already published changed since (late or corrected reports); "
                "publish a period that does not overlap it"
            )
        linked.append((published, layer))

    system, primary, bounds, before_withheld, before_shown = _build_system(current, rules, linked)
    protection = protect(
        system,
        primary | before_withheld,
        rules.protection_level,
        published=bounds,
        fixed=before_shown,
    )
    withheld = protection.withheld
    # The final check, by the same linear programs a reader would solve (protect ends with it).
    found = protection.intervals
    own = current.published_cells()
    widths = [high - low for cell, (low, high) in found.items() if cell in own]
    check = Check(
        cells=sum(1 for cell in own if system.value(cell) > 0),
        withheld=sum(1 for cell in withheld if cell in own),
        primary=len(primary),
        secondary=sum(1 for cell in protection.secondary if cell in own and cell not in before_withheld),
        narrowest=min(widths) if widths else None,
        rounds=protection.rounds,
        linked=tuple(published.id for published in overlapping),
    )
    published_people = {key: value for key, value in current.people.items() if pattern_of(key) in patterns}
    tables = tuple(
        _table(rule, period, published_people, withheld, rules.rounding_base) for rule in rules.tables
    )
    corridors = sorted(
        {corridor_of(state, agreements) for state in cases if period.contains(state.identified_on)}
    )
    grand = people_cell(period, _EVERYONE)
    people_total = current.people.get(_EVERYONE, 0)
    return RegionalStatistics(
        rules=rules,
        period=period,
        reference_month=month_of(as_of) if as_of is not None else None,
        people=SUPPRESSED if grand in withheld else Count(_rounded(people_total, rules.rounding_base)),
        tables=tables,
        timeliness=_indicators(samples, corridors, period, withheld, rules),
        check=check,
    )


# ---------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------

#: The fields of every row of :func:`to_rows`, in order.
ROW_FIELDS: tuple[str, ...] = (
    "table",
    *DIMENSIONS,
    "indicator",
    "value",
    "cases",
    "observations",
    "suppressed",
)
Row = dict[str, str | int | float | bool | None]


def _count_row(table: Table, row: tuple[str, ...], column: str, count: Count) -> Row:
    return {
        "table": table.name,
        **{dim.value: value for dim, value in zip(DIMENSIONS, table.key(row, column), strict=True)},
        "indicator": "people",
        "value": count.value,
        "cases": None,
        "observations": None,
        "suppressed": count.suppressed,
    }


def to_rows(stats: RegionalStatistics) -> list[Row]:
    """Flat rows, all with the fields of ``ROW_FIELDS``, for a topic or a CSV file. A dimension a
    row is not split by is ``"*"``. Count rows have ``indicator`` "people"; timeliness rows (table
    "timeliness") name the measure, ``value`` being a median of days or a share of follow-ups on
    time. Zero counts are left out."""
    rows: list[Row] = []
    for table in stats.tables:
        for row, column, count in table.every_cell():
            rows.append(_count_row(table, row, column, count))
    for entry in stats.timeliness:
        for measure in Measure:
            indicator = entry.indicator(measure)
            rows.append(
                {
                    "table": "timeliness",
                    **{dim.value: ALL for dim in DIMENSIONS},
                    Dimension.CORRIDOR.value: entry.corridor,
                    "indicator": measure.value,
                    "value": indicator.value,
                    "cases": indicator.cases,
                    "observations": indicator.observations,
                    "suppressed": indicator.suppressed,
                }
            )
    return rows


_HEADINGS = {Dimension.PERIOD: "Period", Dimension.CORRIDOR: "Corridor"}
_MEASURE_HEADINGS = {
    Measure.IDENTIFICATION_TO_REFERRAL: "Identification→referral",
    Measure.REFERRAL_TO_ANSWER: "Referral→answer",
    Measure.ANSWER_TO_RETURN: "Answer→return",
    Measure.RETURN_TO_HANDOVER: "Return→handover",
    Measure.FOLLOW_UPS_ON_TIME: "Follow-ups on time",
}


def _country(labels: CodeLabels, code: str) -> str:
    if code == UNKNOWN_HOME:
        return "?"
    try:
        return labels.label(CountryCode(code))
    except ValueError:
        return code


def _label(labels: CodeLabels, dimension: Dimension, value: str) -> str:
    if value == ALL:
        return "Total"
    if dimension is Dimension.CORRIDOR:
        if "->" in value:
            host, home = value.split("->", 1)
            return f"{_country(labels, host)} → {_country(labels, home)} ({value})"
        first, second = value.split("-", 1)
        return f"{_country(labels, first)} – {_country(labels, second)} ({value})"
    if value == UNRECORDED:
        return "Not recorded"
    code_list = _CODE_LISTS.get(dimension)
    if code_list is None:
        return value
    try:
        return labels.label(code_list(value))
    except ValueError:
        return value


def _heading(labels: CodeLabels, dimension: Dimension) -> str:
    code_list = _CODE_LISTS.get(dimension)
    return labels.title(code_list.__name__) if code_list else _HEADINGS[dimension]


def _width(text: str) -> int:
    """Columns taken on a terminal: combining marks take none, wide characters two."""
    width = 0
    for char in text:
        if unicodedata.category(char) in {"Mn", "Me", "Cf"}:
            continue
        width += 2 if unicodedata.east_asian_width(char) in {"W", "F"} else 1
    return width


def _grid(headings: Sequence[str], body: Sequence[Sequence[str]], label_columns: int) -> list[str]:
    widths = [max(_width(line[i]) for line in (headings, *body)) for i in range(len(headings))]

    def line(values: Sequence[str]) -> str:
        padded = []
        for i, value in enumerate(values):
            pad = " " * (widths[i] - _width(value))
            padded.append(value + pad if i < label_columns else pad + value)
        return " | ".join(padded).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return [line(headings), rule, *(line(values) for values in body)]


def _shown(count: Count) -> str:
    return SUPPRESSED_MARK if count.value is None else str(count.value)


def _table_text(table: Table, labels: CodeLabels) -> list[str]:
    headings = [
        *(_heading(labels, dim) for dim in table.row_dimensions),
        *(_label(labels, table.column_dimension, column) for column in table.columns),
        "Total",
    ]
    body = [
        [
            *(_label(labels, dim, value) for dim, value in zip(table.row_dimensions, row, strict=True)),
            *(_shown(table.count(row, column)) for column in (*table.columns, ALL)),
        ]
        for row in (*table.rows, table.all_rows)
    ]
    lines = [table.title, *_grid(headings, body, len(table.row_dimensions))]
    if table.multi_counted:
        lines.append("A person with several values is counted under each; 'Total' counts them once.")
    return lines


def _indicator_text(measure: Measure, indicator: Indicator) -> str:
    if indicator.suppressed:
        return SUPPRESSED_MARK
    if indicator.value is None:
        return "–"
    if measure is Measure.FOLLOW_UPS_ON_TIME:
        return f"{indicator.value:.0%} (n={indicator.cases})"
    return f"{indicator.value:g} (n={indicator.cases})"


def to_table(stats: RegionalStatistics, lang: str) -> str:
    """The statistics as readable text tables, codes labelled in ``lang`` (English where the language
    lacks a label; the headings of the layout itself are in English)."""
    labels = labels_for(lang)
    rules = stats.rules
    period = stats.period.label if stats.period else "–"
    lines = [
        "Lintas — anonymised regional statistics",
        f"Period: {period}. People identified: {_shown(stats.people)}. "
        f"Follow-ups judged as of {stats.reference_month or '–'}.",
        f"{SUPPRESSED_MARK} = withheld: fewer than {rules.minimum_frequency} people, "
        f"or would let a reader narrow such a count to a range under {rules.protection_level} wide.",
    ]
    if rules.rounding_base > 1:
        lines.append(
            f"Counts are rounded down to a multiple of {rules.rounding_base}: totals may not add up."
        )
    for table in stats.tables:
        lines += ["", *_table_text(table, labels)]
    headings = [_heading(labels, Dimension.CORRIDOR), *(_MEASURE_HEADINGS[m] for m in Measure)]
    body = [
        [
            _label(labels, Dimension.CORRIDOR, entry.corridor),
            *(_indicator_text(m, entry.indicator(m)) for m in Measure),
        ]
        for entry in stats.timeliness
    ]
    lines += [
        "",
        "Timeliness: median calendar days between the steps, and the share of follow-ups recorded within "
        f"{FOLLOW_UP_GRACE.days} days of their due date (n = cases)",
        *_grid(headings, body, 1),
    ]
    return "\n".join(lines) + "\n"


def dimension_label(labels: CodeLabels, dimension: Dimension, value: str) -> str:
    """A value of a dimension as a reader sees it (a corridor's countries, a code's label)."""
    return _label(labels, dimension, value)


def dimension_heading(labels: CodeLabels, dimension: Dimension) -> str:
    return _heading(labels, dimension)
