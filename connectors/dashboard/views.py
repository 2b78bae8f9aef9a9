"""What the dashboard's pages show, from the read store's contents: plain functions, no I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.dashboard.i18n import Words
from projections.cases.fold import CaseState, Stage
from projections.stats.aggregate import ALL, dimension_heading, dimension_label
from projections.stats.rules import Dimension

#: The stages of an open case, in the order a case moves through them.
OPEN_STAGES = tuple(stage for stage in Stage if stage is not Stage.CLOSED)


@dataclass(frozen=True)
class BacklogRow:
    partner: str
    by_stage: Mapping[Stage, int]

    @property
    def total(self) -> int:
        return sum(self.by_stage.values())


def backlog(states: Iterable[CaseState], country: str) -> list[BacklogRow]:
    """Open cases ``country`` is party to, per partner country and stage, largest backlog first."""
    counts: dict[str, Counter[Stage]] = {}
    for state in states:
        if state.stage is Stage.CLOSED:
            continue
        parties = {state.host.value, *([state.home.value] if state.home else []), *state.transit}
        if country not in parties:
            continue
        partners = sorted(parties - {country}) or ["--"]
        for partner in partners:
            counts.setdefault(partner, Counter())[state.stage] += 1
    rows = [BacklogRow(partner, dict(counted)) for partner, counted in counts.items()]
    return sorted(rows, key=lambda row: (-row.total, row.partner))


def backlog_json(rows: Sequence[BacklogRow]) -> dict[str, Any]:
    return {
        "open": sum(row.total for row in rows),
        "partners": [
            {
                "partner": row.partner,
                "open": row.total,
                "by_stage": {s.value: n for s, n in row.by_stage.items()},
            }
            for row in rows
        ],
    }


# -- the regional statistics -------------------------------------------------------------------------


def withheld(document: Mapping[str, Any]) -> int:
    """The k of "<k": the minimum frequency of the rules the publication was made under."""
    return int(document["rules"]["minimum_frequency"])


def shown(value: int | None, suppressed: bool, words: Words, k: int) -> str:
    if suppressed or value is None:
        return words("withheld_mark", k=k)
    return f"{value:,}"


@dataclass(frozen=True)
class CrossTable:
    title: str
    row_heading: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    #: (row, column) of the withheld cells, so the page can mark them
    withheld: set[tuple[int, int]] = field(default_factory=set)


def cross_table(
    document: Mapping[str, Any], name: str, words: Words, title: str | None = None
) -> CrossTable | None:
    """One published table, rows x columns with their totals, in the reader's language."""
    table = next((t for t in document["tables"] if t["name"] == name), None)
    if table is None or len(table["rows"]) != 1:
        return None
    row_dim, column_dim = Dimension(table["rows"][0]), Dimension(table["column"])
    k = withheld(document)
    figures: dict[tuple[str, str], tuple[int | None, bool]] = {}
    row_values: list[str] = []
    column_values: list[str] = []
    for cell in table["cells"]:
        row, column = cell["key"][row_dim.value], cell["key"][column_dim.value]
        figures[(row, column)] = (cell["value"], cell["suppressed"])
        if column == ALL and row != ALL and row not in row_values:
            row_values.append(row)
        if row == ALL and column != ALL and column not in column_values:
            column_values.append(column)
    labels = words.codes

    def label(dimension: Dimension, value: str) -> str:
        return words("total") if value == ALL else dimension_label(labels, dimension, value)

    result = CrossTable(
        title=title or table["title"],
        row_heading=dimension_heading(labels, row_dim),
        columns=[label(column_dim, c) for c in (*column_values, ALL)],
        rows=[],
    )
    for r, row in enumerate((*row_values, ALL)):
        cells = []
        for c, column in enumerate((*column_values, ALL)):
            value, suppressed = figures.get((row, column), (0, False))
            if suppressed:
                result.withheld.add((r, c))
            cells.append(shown(value, suppressed, words, k))
        result.rows.append((label(row_dim, row), cells))
    return result


@dataclass(frozen=True)
class Band:
    left: str
    right: str
    label: str
    figure: str
    withheld: bool
    #: SVG geometry: the band's path and where its figure is written
    path: str
    width: float
    text_x: float
    text_y: float

    @property
    def show_figure(self) -> bool:
        """Written on the band when it has room (every figure is also in the table beside it)."""
        return not self.withheld and self.width >= 12


@dataclass(frozen=True)
class Node:
    name: str
    x: float
    y: float
    height: float
    left: bool


@dataclass(frozen=True)
class Flows:
    width: int
    height: int
    nodes: list[Node]
    bands: list[Band]


def flows(document: Mapping[str, Any], words: Words, *, width: int = 640) -> Flows | None:
    """A Sankey-style drawing of the people identified per corridor (table ``by_period``'s totals):
    the corridor's first country on the left, its second on the right, a band as wide as its people.
    A withheld corridor is drawn as a thin dashed band marked "<k"."""
    table = next((t for t in document["tables"] if t["name"] == "by_period"), None)
    if table is None:
        return None
    k = withheld(document)
    corridors: list[tuple[str, str, str, int | None, bool]] = []
    for cell in table["cells"]:
        corridor, period = cell["key"]["corridor"], cell["key"]["period"]
        if period != ALL or corridor == ALL:
            continue
        left, right = corridor.split("->", 1) if "->" in corridor else corridor.split("-", 1)
        corridors.append((corridor, left, right, cell["value"], cell["suppressed"]))
    if not corridors:
        return None

    def weight(value: int | None, suppressed: bool) -> float:
        # A withheld corridor is drawn thin whatever it holds: its width must not tell its size.
        return 0.0 if suppressed or value is None else float(value)

    thin = 3.0
    node_gap, top, usable = 10.0, 10.0, 380.0
    ends: dict[tuple[bool, str], tuple[float, int]] = {}
    for _, left, right, value, suppressed in corridors:
        for end in ((True, left), (False, right)):
            total, thins = ends.get(end, (0.0, 0))
            ends[end] = (
                total + weight(value, suppressed),
                thins + (1 if weight(value, suppressed) == 0 else 0),
            )
    side_total = max(
        sum(total for (is_left, _), (total, _) in ends.items() if is_left == side) for side in (True, False)
    )
    per_person = usable / max(side_total, 1.0)
    nodes: dict[tuple[bool, str], Node] = {}
    cursor = {True: top, False: top}
    for (is_left, name), (total, thins) in sorted(
        ends.items(), key=lambda item: (not item[0][0], -item[1][0])
    ):
        height = max(total * per_person + thins * thin, thin)
        nodes[(is_left, name)] = Node(
            name, 120.0 if is_left else width - 120.0, cursor[is_left], height, is_left
        )
        cursor[is_left] += height + node_gap
    used = dict.fromkeys(nodes, 0.0)
    bands = []
    for corridor, left, right, value, suppressed in sorted(corridors, key=lambda c: -weight(c[3], c[4])):
        a, b = nodes[(True, left)], nodes[(False, right)]
        thickness = weight(value, suppressed) * per_person or thin
        y0 = a.y + used[(True, left)] + thickness / 2
        y1 = b.y + used[(False, right)] + thickness / 2
        used[(True, left)] += thickness
        used[(False, right)] += thickness
        x0, x1 = a.x + 8, b.x - 8
        middle = (x0 + x1) / 2
        bands.append(
            Band(
                left=left,
                right=right,
                label=dimension_label(words.codes, Dimension.CORRIDOR, corridor),
                figure=shown(value, suppressed, words, k),
                withheld=suppressed or value is None,
                path=f"M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} {middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f}",
                width=thickness,
                text_x=middle,
                text_y=(y0 + y1) / 2 - 2,
            )
        )
    height = int(max(cursor.values()) + top)
    return Flows(width, height, list(nodes.values()), bands)


@dataclass(frozen=True)
class TimelinessRow:
    publication: str
    period: str
    figures: list[str]


MEASURES = (
    "identification_to_referral",
    "referral_to_answer",
    "answer_to_return",
    "return_to_handover",
    "follow_ups_on_time",
)


def timeliness_over_time(documents: Sequence[Mapping[str, Any]], words: Words) -> list[TimelinessRow]:
    """All corridors' indicators, one row per publication, oldest first."""
    rows = []
    for document in documents:
        overall = next((t for t in document.get("timeliness", []) if t["corridor"] in (ALL, "ALL")), None)
        if overall is None:
            continue
        k = withheld(document)
        figures = []
        for measure in MEASURES:
            indicator = overall[measure]
            value = indicator["value"]
            if indicator["suppressed"] or value is None:
                figures.append(words("withheld_mark", k=k))
            elif measure == "follow_ups_on_time":
                figures.append(f"{value:.0%}")
            else:
                figures.append(f"{value:g}")
        period = f"{document['period']['first']} – {document['period']['last']}"
        rows.append(TimelinessRow(document["id"], period, figures))
    return rows


# -- operations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerRow:
    name: str
    state: str
    lag: int
    partitions: int
    updated: datetime | None
    live: bool


def worker_rows(
    bodies: Iterable[tuple[str, Mapping[str, Any]]], *, now: datetime, stale_after: float = 30.0
) -> list[WorkerRow]:
    """Each worker's health file (name, content) as a row: its state, and how far behind it is."""
    rows = []
    for name, body in bodies:
        try:
            updated: datetime | None = datetime.fromisoformat(str(body["updated"]))
        except (KeyError, ValueError):
            updated = None
        live = (
            updated is not None
            and (now - updated).total_seconds() <= stale_after
            and body.get("state") != "stopped"
        )
        lag = body.get("lag") or {}
        rows.append(
            WorkerRow(
                name=name,
                state=str(body.get("state", "unknown")) if live else "silent",
                lag=sum(int(v) for v in lag.values()) if isinstance(lag, dict) else 0,
                partitions=len(body.get("partitions") or []),
                updated=updated,
                live=live,
            )
        )
    return sorted(rows, key=lambda row: row.name)
