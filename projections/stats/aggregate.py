"""Anonymised regional statistics of the cases: flows of people and the timeliness of each step.

Pure: case states (``projections.cases.fold``) and the agreements in, frozen tables out; nothing is
read or written (only :func:`to_table` reads the code-list labels, through ``hub.codes.labels_for``).

**What is counted.** People, one case each, by month of identification (``YYYY-MM``), corridor (the id
of the agreement joining the two countries, e.g. ``TH-MM`` in either direction; ``HOST->HOME`` where no
agreement joins them; ``HOST->unknown`` while the partner country is not known), form of exploitation,
sex and age band. A person subjected to several forms of exploitation is counted once under *each*
form, so the cells of a row split by form may add up to more than the row; every row therefore also
carries its total of distinct people. A case with no form recorded is counted under ``Unrecorded``.

**Do No Harm (disclosure control).**

- Every count below ``threshold`` people (5) is suppressed: its value is ``None`` and ``suppressed`` is
  set; the small number itself never leaves this module. A total is exact, and published only when it
  covers at least ``threshold`` people.
- Secondary suppression (``projections.stats.suppression``) withholds more counts so that a suppressed
  one cannot be worked out from a published total: every published relation "total = sum of parts" (a
  row or column and its total, and every coarser count against the finer counts that make it up,
  across all the tables) has none or at least two suppressed members. Whether a count was suppressed
  for being small or to protect another is not said, as that would reveal the small ones.
- A timeliness indicator computed on fewer than ``threshold`` cases is suppressed, together with its
  number of cases; the numbers of cases per corridor get the same secondary suppression against the
  overall indicator.
- Nothing published describes a single case: no case ids, no free text, and no date finer than a month
  (the reference date itself is given as its month).
- A suppressed cell still shows that its combination of month, corridor, form, sex and age band
  occurs at all; tables meant for the public should be published at the coarser levels only.

Cells absent from a table are zero. Timeliness is measured in calendar days between the dates of the
two steps.
"""

from __future__ import annotations

import itertools
import statistics
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from functools import cached_property

from hub.agreements import Agreements
from hub.codes import CodeLabels, labels_for
from hub.contract import AgeBand, CountryCode, ExploitationType, Gender
from projections.cases.fold import CaseState
from projections.obligations.rules import add_months
from projections.stats.suppression import Relation, suppress

DEFAULT_THRESHOLD = 5
#: A follow-up recorded up to two weeks after the agreed month is still on time.
FOLLOW_UP_GRACE = timedelta(days=14)
#: Stands for "all values" of a dimension: the totals.
ALL = "*"
#: The form of exploitation of a case that has none recorded.
UNRECORDED = "Unrecorded"
#: The partner country of a case while it is not known.
UNKNOWN_HOME = "unknown"
#: How a suppressed value is shown by :func:`to_table`.
SUPPRESSED_MARK = "x"


class Dimension(StrEnum):
    MONTH = "month"
    CORRIDOR = "corridor"
    EXPLOITATION = "exploitation"
    SEX = "sex"
    AGE_BAND = "age_band"


#: The order of the dimensions in the flat rows of :func:`to_rows`.
DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)


class Measure(StrEnum):
    """The timeliness indicators; the values are the field names of :class:`Timeliness`."""

    IDENTIFICATION_TO_REFERRAL = "identification_to_referral"
    REFERRAL_TO_ANSWER = "referral_to_answer"
    ANSWER_TO_RETURN = "answer_to_return"
    RETURN_TO_HANDOVER = "return_to_handover"
    FOLLOW_UPS_ON_TIME = "follow_ups_on_time"


_CODE_LISTS: dict[Dimension, type[StrEnum]] = {
    Dimension.EXPLOITATION: ExploitationType,
    Dimension.SEX: Gender,
    Dimension.AGE_BAND: AgeBand,
}


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
    ``ALL``) and ``total`` too. With ``multi_counted`` (the column is the form of exploitation) a
    person may be in several cells of a row, so a row's cells may add up to more than its total."""

    name: str
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

    def lines(self) -> list[tuple[Count, list[Count]]]:
        """Each row and each column of the table with its total, zero cells left out."""
        by_row: dict[tuple[str, ...], list[Count]] = defaultdict(list)
        by_column: dict[str, list[Count]] = defaultdict(list)
        for cell in self.cells:
            by_row[cell.row].append(cell.count)
            by_column[cell.column].append(cell.count)
        lines = [(self.count(row, ALL), by_row[row]) for row in self.rows]
        lines += [(self.count(self.all_rows, column), by_column[column]) for column in self.columns]
        lines.append((self.total, [self.count(row, ALL) for row in self.rows]))
        lines.append((self.total, [self.count(self.all_rows, column) for column in self.columns]))
        return lines


@dataclass(frozen=True)
class Indicator:
    """A timeliness indicator: a median number of days, or a share between 0 and 1. ``cases`` is the
    number of cases (people) it is computed on, ``observations`` the number of intervals or
    follow-ups. Suppressed, all three are ``None``; with no cases at all, ``value`` is ``None`` and
    ``cases`` 0."""

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
        match measure:
            case Measure.IDENTIFICATION_TO_REFERRAL:
                return self.identification_to_referral
            case Measure.REFERRAL_TO_ANSWER:
                return self.referral_to_answer
            case Measure.ANSWER_TO_RETURN:
                return self.answer_to_return
            case Measure.RETURN_TO_HANDOVER:
                return self.return_to_handover
            case Measure.FOLLOW_UPS_ON_TIME:
                return self.follow_ups_on_time


@dataclass(frozen=True)
class RegionalStatistics:
    threshold: int
    reference_month: str | None  # the month of ``as_of``, from which follow-ups are judged
    people: Count
    flow: Table  # month × corridor × sex × age band (rows) by form of exploitation
    by_month: Table  # corridor × month of identification
    by_exploitation: Table  # corridor × form of exploitation
    by_sex: Table  # corridor × sex
    by_age_band: Table  # corridor × age band
    timeliness: tuple[Timeliness, ...]  # by corridor, then overall (corridor ``ALL``) last

    @property
    def tables(self) -> tuple[Table, ...]:
        return (self.flow, self.by_month, self.by_exploitation, self.by_sex, self.by_age_band)

    def timeliness_of(self, corridor: str) -> Timeliness | None:
        return next((entry for entry in self.timeliness if entry.corridor == corridor), None)


# ---------------------------------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------------------------------

#: A count's key: one value, or ``ALL``, per dimension in the order of ``DIMENSIONS``.
Key = tuple[str, ...]

_M, _C, _E, _S, _A = DIMENSIONS


@dataclass(frozen=True)
class _TableSpec:
    name: str
    rows: tuple[Dimension, ...]
    column: Dimension


_TABLES = (
    _TableSpec("flow", (_M, _C, _S, _A), _E),
    _TableSpec("by_month", (_C,), _M),
    _TableSpec("by_exploitation", (_C,), _E),
    _TableSpec("by_sex", (_C,), _S),
    _TableSpec("by_age_band", (_C,), _A),
)
#: Every combination of dimensions that is published: the inner cells, row and column totals of each
#: table and the grand total.
_PATTERNS: tuple[frozenset[Dimension], ...] = tuple(
    dict.fromkeys(
        pattern
        for spec in _TABLES
        for pattern in (
            frozenset((*spec.rows, spec.column)),
            frozenset(spec.rows),
            frozenset((spec.column,)),
            frozenset(),
        )
    )
)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def corridor_of(state: CaseState, agreements: Agreements) -> str:
    """The corridor id of a case, ``HOST->HOME`` without agreement, ``HOST->unknown`` without partner."""
    host = state.host.value
    if state.home is None:
        return f"{host}->{UNKNOWN_HOME}"
    corridor = agreements.corridor(host, state.home.value)
    return corridor.id if corridor is not None else f"{host}->{state.home.value}"


def exploitation_of(state: CaseState) -> frozenset[str]:
    return frozenset(form.value for form in state.exploitation_types) or frozenset({UNRECORDED})


def profile(state: CaseState, agreements: Agreements) -> tuple[frozenset[str], ...]:
    """The values of a case on each dimension (several forms of exploitation, one of everything else)."""
    return (
        frozenset({month_of(state.identified_on)}),
        frozenset({corridor_of(state, agreements)}),
        exploitation_of(state),
        frozenset({state.sex.value}),
        frozenset({state.age_band.value}),
    )


def keys_of(values: tuple[frozenset[str], ...], pattern: frozenset[Dimension]) -> Iterable[Key]:
    """The keys with ``pattern``'s dimensions set that a case with ``values`` is counted in."""
    choices = [
        sorted(options) if dimension in pattern else [ALL]
        for dimension, options in zip(DIMENSIONS, values, strict=True)
    ]
    return itertools.product(*choices)


def _pattern(key: Key) -> frozenset[Dimension]:
    return frozenset(dimension for dimension, value in zip(DIMENSIONS, key, strict=True) if value != ALL)


def _project(key: Key, pattern: frozenset[Dimension]) -> Key:
    return tuple(value if dim in pattern else ALL for dim, value in zip(DIMENSIONS, key, strict=True))


def _relations(counts: Mapping[Key, int]) -> list[Relation[Key]]:
    """Every coarser published count against the finer published counts that add up to it."""
    parts: dict[tuple[Key, frozenset[Dimension]], list[Key]] = defaultdict(list)
    for key in counts:
        pattern = _pattern(key)
        for coarser in _PATTERNS:
            if coarser < pattern:
                parts[(_project(key, coarser), pattern)].append(key)
    return [Relation(total, tuple(sorted(members))) for (total, _), members in sorted(parts.items())]


def _order(dimension: Dimension, value: str) -> tuple[int, str]:
    """Codes in the order of their code list (then anything else, e.g. ``Unrecorded``); months and
    corridors by their text."""
    code_list = _CODE_LISTS.get(dimension)
    if code_list is None:
        return (0, value)
    symbols = [code.value for code in code_list]
    return (symbols.index(value), "") if value in symbols else (len(symbols), value)


def _count(value: int, hidden: bool) -> Count:
    return SUPPRESSED if hidden else Count(value)


def _table(spec: _TableSpec, counts: Mapping[Key, int], hidden: frozenset[Key]) -> Table:
    def key(row: tuple[str, ...], column: str) -> Key:
        given = dict(zip(spec.rows, row, strict=True)) | {spec.column: column}
        return tuple(given.get(dim, ALL) for dim in DIMENSIONS)

    inner = frozenset((*spec.rows, spec.column))
    positions = [DIMENSIONS.index(dim) for dim in spec.rows]
    column_at = DIMENSIONS.index(spec.column)
    cells = [(tuple(k[i] for i in positions), k[column_at]) for k in counts if _pattern(k) == inner]
    cells.sort(key=lambda cell: (tuple(map(_order, spec.rows, cell[0])), _order(spec.column, cell[1])))
    rows = tuple(dict.fromkeys(row for row, _ in cells))
    columns = tuple(sorted({column for _, column in cells}, key=lambda column: _order(spec.column, column)))
    everyone = (ALL,) * len(spec.rows)

    def cell(row: tuple[str, ...], column: str) -> Cell:
        k = key(row, column)
        return Cell(row, column, _count(counts[k], k in hidden))

    total = key(everyone, ALL)
    return Table(
        name=spec.name,
        row_dimensions=spec.rows,
        column_dimension=spec.column,
        rows=rows,
        columns=columns,
        cells=tuple(cell(row, column) for row, column in cells),
        row_totals=tuple(cell(row, ALL) for row in rows),
        column_totals=tuple(cell(everyone, column) for column in columns),
        total=_count(counts.get(total, 0), total in hidden),
        multi_counted=spec.column is Dimension.EXPLOITATION,
    )


# ---------------------------------------------------------------------------------------------------
# Timeliness
# ---------------------------------------------------------------------------------------------------


def intervals(state: CaseState) -> dict[Measure, int]:
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
    days: list[int]
    outcomes: list[bool]
    cases: int = 0


def _timeliness(
    states: Sequence[CaseState], agreements: Agreements, as_of: date | None, threshold: int
) -> tuple[Timeliness, ...]:
    samples: dict[tuple[Measure, str], _Sample] = defaultdict(lambda: _Sample([], []))
    corridors = sorted({corridor_of(state, agreements) for state in states})
    for state in states:
        corridor = corridor_of(state, agreements)
        outcomes = follow_ups_due(state, agreements, as_of) if as_of is not None else []
        for where in (corridor, ALL):
            for measure, days in intervals(state).items():
                sample = samples[(measure, where)]
                sample.cases += 1
                sample.days.append(days)
            if outcomes:
                sample = samples[(Measure.FOLLOW_UPS_ON_TIME, where)]
                sample.cases += 1
                sample.outcomes += outcomes

    cases = {(m.value, where): s.cases for (m, where), s in samples.items()}
    relations = [
        Relation((m.value, ALL), tuple(sorted(k for k in cases if k[0] == m.value and k[1] != ALL)))
        for m in Measure
        if (m.value, ALL) in cases
    ]
    hidden = suppress(cases, relations, threshold)

    def indicator(measure: Measure, where: str) -> Indicator:
        sample = samples.get((measure, where))
        if sample is None:
            return Indicator(None, 0, 0)
        if (measure.value, where) in hidden:
            return Indicator(None, None, None, suppressed=True)
        if measure is Measure.FOLLOW_UPS_ON_TIME:
            share = sum(sample.outcomes) / len(sample.outcomes)
            return Indicator(share, sample.cases, len(sample.outcomes))
        return Indicator(float(statistics.median(sample.days)), sample.cases, len(sample.days))

    return tuple(
        Timeliness(where, *(indicator(measure, where) for measure in Measure)) for where in (*corridors, ALL)
    )


# ---------------------------------------------------------------------------------------------------
# The statistics
# ---------------------------------------------------------------------------------------------------


def regional_statistics(
    states: Iterable[CaseState],
    agreements: Agreements,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    as_of: date | None = None,
) -> RegionalStatistics:
    """The anonymised statistics of ``states`` (see the module's documentation for what is counted
    and what is withheld). Follow-ups are judged at ``as_of``, by default the day of the latest event
    of any case. A case id given twice counts once (the last state given)."""
    if threshold < 2:
        raise ValueError(f"threshold must be at least 2, not {threshold}: 1 would publish single cases")
    # A case whose identification was retracted never was one: it is not counted anywhere.
    cases = [state for state in {state.case_id: state for state in states}.values() if not state.void]
    if as_of is None and cases:
        as_of = max(state.last_event_at for state in cases).date()

    counts: Counter[Key] = Counter()
    for state in cases:
        values = profile(state, agreements)
        for pattern in _PATTERNS:
            counts.update(keys_of(values, pattern))
    hidden = suppress(counts, _relations(counts), threshold)
    tables = {spec.name: _table(spec, counts, hidden) for spec in _TABLES}
    everyone = (ALL,) * len(DIMENSIONS)
    return RegionalStatistics(
        threshold=threshold,
        reference_month=month_of(as_of) if as_of is not None else None,
        people=_count(counts.get(everyone, 0), everyone in hidden),
        flow=tables["flow"],
        by_month=tables["by_month"],
        by_exploitation=tables["by_exploitation"],
        by_sex=tables["by_sex"],
        by_age_band=tables["by_age_band"],
        timeliness=_timeliness(cases, agreements, as_of, threshold),
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
    given = dict(zip(table.row_dimensions, row, strict=True)) | {table.column_dimension: column}
    return {
        "table": table.name,
        **{dim.value: given.get(dim, ALL) for dim in DIMENSIONS},
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
        for cell in (*table.cells, *table.row_totals, *table.column_totals):
            rows.append(_count_row(table, cell.row, cell.column, cell.count))
        rows.append(_count_row(table, table.all_rows, ALL, table.total))
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


_HEADINGS = {Dimension.MONTH: "Month", Dimension.CORRIDOR: "Corridor"}
_MEASURE_HEADINGS = {
    Measure.IDENTIFICATION_TO_REFERRAL: "Identification→referral",
    Measure.REFERRAL_TO_ANSWER: "Referral→answer",
    Measure.ANSWER_TO_RETURN: "Answer→return",
    Measure.RETURN_TO_HANDOVER: "Return→handover",
    Measure.FOLLOW_UPS_ON_TIME: "Follow-ups on time",
}
_TABLE_TITLES = {
    "flow": "People identified by month, corridor, sex and age band, by form of exploitation",
    "by_month": "People identified by corridor and month of identification",
    "by_exploitation": "People identified by corridor and form of exploitation",
    "by_sex": "People identified by corridor and sex",
    "by_age_band": "People identified by corridor and age band",
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
    lines = [_TABLE_TITLES.get(table.name, table.name), *_grid(headings, body, len(table.row_dimensions))]
    if table.multi_counted:
        lines.append("A person subjected to several forms is counted under each; 'Total' counts them once.")
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
    lines = [
        "Lintas — anonymised regional statistics",
        f"People identified: {_shown(stats.people)}. Follow-ups judged as of {stats.reference_month or '–'}.",
        f"{SUPPRESSED_MARK} = withheld: fewer than {stats.threshold} people, or would reveal such a cell.",
    ]
    for table in (stats.by_month, stats.by_exploitation, stats.by_sex, stats.by_age_band, stats.flow):
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
