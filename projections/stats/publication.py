"""A publication of the regional statistics: one versioned, self-describing JSON document, and the
files made from it (CSV, XLSX).

The document is what leaves the hub: on ``lintas.regional.stats`` (kept forever), through the API and in
files. It holds the figures as protected by :mod:`projections.stats.aggregate`, the rules they were
made under and the earlier publications they were protected with, and nothing else: not the
operator's figures of the check (how many counts were withheld for being small would tell how many
small cells there are), no case id, no date finer than a month, no free text from cases
(:func:`assert_publishable`). Its id is a digest of its content, so the same figures published
twice are one publication, and a reader can check that a document is the one published.

Pure: only :func:`to_csv` and :func:`to_xlsx` write, to the stream or path they are given.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from hub.codes import CodeLabels, labels_for
from hub.events import CASE_ID
from projections.stats.aggregate import (
    ALL,
    FOLLOW_UP_GRACE,
    ROW_FIELDS,
    SUPPRESSED_MARK,
    Count,
    Indicator,
    Key,
    Measure,
    Period,
    Published,
    RegionalStatistics,
    Table,
    Timeliness,
    _heading,
    _label,
    _next_month,
    month_of,
    patterns_of,
)
from projections.stats.rules import DIMENSIONS, Dimension, PeriodUnit, StatisticsRules

FORMAT = "lintas.regional-statistics"
VERSION = 1
#: The id of a publication: "RS-" and the first 16 hex digits of the digest of its content.
ID_PATTERN = re.compile(r"RS-[0-9a-f]{16}")
#: The fields of every row of :func:`to_csv`.
CSV_FIELDS: tuple[str, ...] = ("publication", *ROW_FIELDS)

_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_DAY_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A case id (hub.events.CASE_ID) anywhere in a text, not only as the whole of it.
_CASE_ID = re.compile(r"(?<![A-Za-z0-9])" + CASE_ID.pattern.removeprefix("^").removesuffix("$"))
# An agreement's id, which has the shape of a case id: allowed as the value of a corridor only.
_AGREEMENT_ID = re.compile(r"[A-Z]{2}-[A-Z]{2}")
_CORRIDOR_PATH = re.compile(r"(tables\[\d+\]\.cells\[\d+\]\.key|timeliness\[\d+\])\.corridor")
_ID_PATH = re.compile(r"id|linked\[\d+\]")


# ---------------------------------------------------------------------------------------------------
# The document
# ---------------------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value that its digest is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def publication_id(document: Mapping[str, Any]) -> str:
    """The id of a document: a digest of everything in it but its id."""
    content = {name: value for name, value in document.items() if name != "id"}
    return "RS-" + hashlib.sha256(canonical_json(content)).hexdigest()[:16]


def _count(count: Count) -> dict[str, Any]:
    return {"value": count.value, "suppressed": count.suppressed}


def _table(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "title": table.title,
        "rows": [dimension.value for dimension in table.row_dimensions],
        "column": table.column_dimension.value,
        "multi_counted": table.multi_counted,
        "cells": [
            {
                "key": {
                    dim.value: value for dim, value in zip(DIMENSIONS, table.key(row, column), strict=True)
                },
                **_count(count),
            }
            for row, column, count in table.every_cell()
        ],
    }


def _indicator(indicator: Indicator) -> dict[str, Any]:
    return {
        "value": indicator.value,
        "cases": indicator.cases,
        "observations": indicator.observations,
        "suppressed": indicator.suppressed,
    }


def _timeliness(entry: Timeliness) -> dict[str, Any]:
    return {
        "corridor": entry.corridor,
        **{measure.value: _indicator(entry.indicator(measure)) for measure in Measure},
    }


def _notes(rules: StatisticsRules) -> dict[str, str]:
    rounding = (
        f"Counts are rounded down to a multiple of {rules.rounding_base}: totals need not add up."
        if rules.rounding_base > 1
        else "Counts are exact."
    )
    return {
        "suppressed": (
            f"A count marked suppressed (its value null) is withheld: it is under {rules.minimum_frequency} "
            f"people, or it would let a reader narrow such a count to a range under "
            f"{rules.protection_level} wide from everything published, earlier publications included. "
            "Which of the two is not said. A count absent from a table is zero."
        ),
        "rounding": rounding,
        "multi_counted": (
            "In a table marked multi_counted a person with several values of its column is counted under "
            "each; the totals count each person once."
        ),
        "timeliness": (
            "Medians of calendar days between the steps, and the share of follow-ups recorded within "
            f"{FOLLOW_UP_GRACE.days} days of their due date; cases is the number of people each rests "
            "on. A median is also withheld when it rests on too few cases or when one value is shared "
            "by most of them."
        ),
    }


def to_document(stats: RegionalStatistics, *, published: str) -> dict[str, Any]:
    """The publication of ``stats``, published in the month ``published`` (``YYYY-MM``).

    Raises ValueError when there is nothing to publish (no period) or the document would carry a
    case id or a day date (see :func:`assert_publishable`)."""
    if not isinstance(published, str) or not _MONTH.fullmatch(published):
        raise ValueError(f"published: {published!r} is not a month (YYYY-MM)")
    if stats.period is None:
        raise ValueError("period: no case was identified, there is nothing to publish")
    content: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "published": published,
        "period": {
            "first": stats.period.first,
            "last": stats.period.last,
            "unit": stats.period.unit.value,
        },
        "reference_month": stats.reference_month,
        "rules": stats.rules.model_dump(mode="json"),
        "dimensions": [dimension.value for dimension in DIMENSIONS],
        "people": _count(stats.people),
        "tables": [_table(table) for table in stats.tables],
        "timeliness": [_timeliness(entry) for entry in stats.timeliness],
        "linked": list(stats.check.linked),
        "notes": _notes(stats.rules),
    }
    document = {"format": FORMAT, "version": VERSION, "id": publication_id(content), **content}
    assert_publishable(document)
    return document


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string of a JSON value (keys too) with its path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for name, item in value.items():
            inner = f"{path}.{name}" if path else str(name)
            yield inner, str(name)
            yield from _walk(item, inner)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


def assert_publishable(document: Mapping[str, Any]) -> None:
    """Refuse a document holding a day date or a case id anywhere (ValueError naming the path):
    what is published never describes a single case."""
    for path, text in _walk(document, ""):
        if _DAY_DATE.search(text):
            raise ValueError(f"{path}: {text!r} holds a date finer than a month")
        if _ID_PATH.fullmatch(path) and ID_PATTERN.fullmatch(text):
            continue
        if _CORRIDOR_PATH.fullmatch(path) and _AGREEMENT_ID.fullmatch(text):
            continue
        if _CASE_ID.search(text):
            raise ValueError(f"{path}: {text!r} looks like a case id")


# ---------------------------------------------------------------------------------------------------
# Reading a document back
# ---------------------------------------------------------------------------------------------------


def _field(parent: Mapping[str, Any], name: str, path: str, kind: type | tuple[type, ...]) -> Any:
    where = f"{path}.{name}" if path else name
    if name not in parent:
        raise ValueError(f"{where}: required field is missing")
    value = parent[name]
    # bool is an int in Python, never in the document.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        raise ValueError(f"{where}: {value!r} is not {_names(kind)}")
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _names(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false"}
    return " or ".join(names.get(one, "null" if one is type(None) else one.__name__) for one in _kinds(kind))


def _figure(cell: Mapping[str, Any], path: str, name: str = "value") -> int | None:
    value: int | None = _field(cell, name, path, (int, type(None)))
    suppressed = _field(cell, "suppressed", path, bool)
    if name == "value" and suppressed != (value is None):
        raise ValueError(f"{path}.value: a count has a value exactly when it is not suppressed")
    if value is not None and value < 0:
        raise ValueError(f"{path}.{name}: {value} is negative")
    return value


def _period(document: Mapping[str, Any]) -> Period:
    given = _field(document, "period", "", dict)
    try:
        return Period(
            _field(given, "first", "period", str),
            _field(given, "last", "period", str),
            PeriodUnit(_field(given, "unit", "period", str)),
        )
    except ValueError as exc:
        raise ValueError(f"period: {exc}") from exc


def document_rules(document: Mapping[str, Any]) -> StatisticsRules:
    try:
        return StatisticsRules.model_validate(_field(document, "rules", "", dict))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["rules", *map(str, first["loc"])])
        raise ValueError(f"{where}: {first['msg']}") from exc


def from_document(document: Mapping[str, Any]) -> Published:
    """What a reader holds of a publication, to protect a later one with it. Raises ValueError naming
    the field when the document is not a publication of this format and version, or its id does not
    match its content."""
    if not isinstance(document, Mapping):
        raise ValueError("document: not a JSON object")
    if document.get("format") != FORMAT:
        raise ValueError(f"format: {document.get('format')!r} is not {FORMAT!r}")
    if document.get("version") != VERSION:
        raise ValueError(
            f"version: {document.get('version')!r} is not a version this installation reads ({VERSION})"
        )
    identifier = _field(document, "id", "", str)
    if identifier != publication_id(document):
        raise ValueError(f"id: {identifier!r} does not match the document's content")
    _month(_field(document, "published", "", str), "published")
    period = _period(document)
    rules = document_rules(document)
    expected = [dimension.value for dimension in DIMENSIONS]
    if _field(document, "dimensions", "", list) != expected:
        raise ValueError(f"dimensions: {document['dimensions']!r} are not {expected!r}")
    people: dict[Key, int | None] = {}
    for t, table in enumerate(_field(document, "tables", "", list)):
        table_path = f"tables[{t}]"
        if not isinstance(table, Mapping):
            raise ValueError(f"{table_path}: not an object")
        for c, cell in enumerate(_field(table, "cells", table_path, list)):
            path = f"{table_path}.cells[{c}]"
            if not isinstance(cell, Mapping):
                raise ValueError(f"{path}: not an object")
            given = _field(cell, "key", path, dict)
            key = tuple(_field(given, name, f"{path}.key", str) for name in expected)
            value = _figure(cell, path)
            if people.setdefault(key, value) != value:
                raise ValueError(f"{path}: {value} differs from the same count in another table")
    cases: dict[tuple[str, str], int | None] = {}
    for e, entry in enumerate(_field(document, "timeliness", "", list)):
        path = f"timeliness[{e}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{path}: not an object")
        corridor = _field(entry, "corridor", path, str)
        for measure in Measure:
            indicator = _field(entry, measure.value, path, dict)
            cases[(measure.value, corridor)] = _figure(indicator, f"{path}.{measure.value}", "cases")
    return Published(
        id=identifier,
        period=period,
        rounding_base=rules.rounding_base,
        patterns=patterns_of(rules.tables),
        people=people,
        cases=cases,
    )


def _month(value: str, name: str) -> str:
    if not _MONTH.fullmatch(value):
        raise ValueError(f"{name}: {value!r} is not a month (YYYY-MM)")
    return value


def next_period(
    identified: Iterable[date],
    earlier: Sequence[Published],
    *,
    through: str | None,
    unit: PeriodUnit = PeriodUnit.MONTH,
    first: str | None = None,
    last: str | None = None,
) -> Period | None:
    """The period of the next publication: from ``first``, by default the month after the last one
    any earlier publication covers (else the first month a case was identified in), to ``last``, by
    default ``through`` (the month of ``as_of``). None when there is no case and no period given.

    Raises ValueError naming ``--from`` or ``--to`` when they are not months or leave no period."""
    if first is not None:
        _month(first, "--from")
    if last is not None:
        _month(last, "--to")
    months = sorted(month_of(day) for day in identified)
    published = max((entry.period.last for entry in earlier), default=None)
    start = first or (_next_month(published) if published is not None else (months[0] if months else None))
    end = last or through or (months[-1] if months else None)
    if start is None or end is None:
        return None
    if start > end:
        if first is None and published is not None:
            raise ValueError(
                f"--from: every month up to {published} is published already and --to is {end}: "
                "nothing new to publish"
            )
        raise ValueError(f"--from: {start} is after --to {end}")
    return Period(start, end, unit)


# ---------------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------------


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def csv_rows(document: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The flat rows of a document, with the fields of :data:`CSV_FIELDS`: one per count of each
    table, then one per indicator of each corridor (table ``timeliness``)."""
    identifier = document["id"]
    for table in document["tables"]:
        for cell in table["cells"]:
            yield {
                "publication": identifier,
                "table": table["name"],
                **cell["key"],
                "indicator": "people",
                "value": cell["value"],
                "cases": None,
                "observations": None,
                "suppressed": cell["suppressed"],
            }
    for entry in document["timeliness"]:
        for measure in Measure:
            indicator = entry[measure.value]
            yield {
                "publication": identifier,
                "table": "timeliness",
                **{dimension.value: ALL for dimension in DIMENSIONS},
                Dimension.CORRIDOR.value: entry["corridor"],
                "indicator": measure.value,
                **indicator,
            }


def to_csv(document: Mapping[str, Any], stream: IO[str]) -> None:
    """The document as CSV: a header of :data:`CSV_FIELDS`, then :func:`csv_rows` (empty: none)."""
    writer = csv.DictWriter(stream, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(document):
        writer.writerow({name: _csv_value(value) for name, value in row.items()})


def _shown(value: Any, suppressed: bool) -> Any:
    return SUPPRESSED_MARK if suppressed and value is None else value


def _about(document: Mapping[str, Any]) -> list[list[Any]]:
    period = document["period"]
    people = document["people"]
    rules = document["rules"]
    lines: list[list[Any]] = [
        ["Lintas — anonymised regional statistics"],
        [],
        ["Publication", document["id"]],
        ["Period", f"{period['first']} to {period['last']}, by {period['unit']}"],
        ["Published", document["published"]],
        ["Follow-ups judged as of", document["reference_month"] or "–"],
        ["People identified", _shown(people["value"], people["suppressed"])],
        ["Protected together with", ", ".join(document["linked"]) or "–"],
        [],
        ["Rules"],
    ]
    for name, value in rules.items():
        if name == "tables":
            for table in value:
                lines.append(
                    [
                        f"table {table['name']}",
                        f"{table['title']} ({' × '.join(table['rows'])} × {table['column']})",
                    ]
                )
        elif isinstance(value, dict):
            lines += [[f"{name}.{inner}", _rule_text(item)] for inner, item in value.items()]
        else:
            lines.append([name, _rule_text(value)])
    lines += [[], ["Notes"], [SUPPRESSED_MARK, document["notes"]["suppressed"]]]
    lines += [[name, text] for name, text in document["notes"].items() if name != "suppressed"]
    return lines


def _rule_text(value: Any) -> Any:
    if value is None:
        return "–"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


def _cross_table(table: Mapping[str, Any], labels: CodeLabels) -> list[list[Any]]:
    """Rows × columns with their totals, labelled, in the order of the document's totals."""
    row_dims = [Dimension(name) for name in table["rows"]]
    column_dim = Dimension(table["column"])
    everyone = (ALL,) * len(row_dims)
    figures: dict[tuple[tuple[str, ...], str], Any] = {}
    rows: list[tuple[str, ...]] = []
    columns: list[str] = []
    for cell in table["cells"]:
        key = cell["key"]
        row = tuple(key[dim.value] for dim in row_dims)
        column = key[column_dim.value]
        figures[(row, column)] = _shown(cell["value"], cell["suppressed"])
        if column == ALL and row != everyone:
            rows.append(row)
        elif row == everyone and column != ALL:
            columns.append(column)
    heading = [
        *(_heading(labels, dim) for dim in row_dims),
        *(_label(labels, column_dim, column) for column in columns),
        "Total",
    ]
    body = [
        [
            *(_label(labels, dim, value) for dim, value in zip(row_dims, row, strict=True)),
            *(figures.get((row, column), 0) for column in (*columns, ALL)),
        ]
        for row in (*rows, everyone)
    ]
    lines: list[list[Any]] = [[table["title"]], heading, *body]
    if table["multi_counted"]:
        lines += [[], ["A person with several values is counted under each; 'Total' counts them once."]]
    return lines


_MEASURE_TITLES = {
    Measure.IDENTIFICATION_TO_REFERRAL: "Identification→referral (median days)",
    Measure.REFERRAL_TO_ANSWER: "Referral→answer (median days)",
    Measure.ANSWER_TO_RETURN: "Answer→return (median days)",
    Measure.RETURN_TO_HANDOVER: "Return→handover (median days)",
    Measure.FOLLOW_UPS_ON_TIME: "Follow-ups on time (share)",
}


def _timeliness_sheet(document: Mapping[str, Any], labels: CodeLabels) -> list[list[Any]]:
    heading: list[Any] = [_heading(labels, Dimension.CORRIDOR)]
    for measure in Measure:
        heading += [_MEASURE_TITLES[measure], "cases"]
    lines: list[list[Any]] = [heading]
    for entry in document["timeliness"]:
        line: list[Any] = [_label(labels, Dimension.CORRIDOR, entry["corridor"])]
        for measure in Measure:
            indicator = entry[measure.value]
            value = indicator["value"]
            suppressed = indicator["suppressed"]
            line += [
                SUPPRESSED_MARK if suppressed and value is None else value,
                SUPPRESSED_MARK if indicator["cases"] is None else indicator["cases"],
            ]
        lines.append(line)
    return lines


def _sheet_names(names: Iterable[str], taken: Sequence[str]) -> list[str]:
    """Names a workbook accepts: at most 31 characters, unique whatever their case."""
    used = {name.lower() for name in taken}
    found = []
    for name in names:
        candidate, number = name[:31], 2
        while candidate.lower() in used:
            suffix = f"_{number}"
            candidate, number = name[: 31 - len(suffix)] + suffix, number + 1
        used.add(candidate.lower())
        found.append(candidate)
    return found


def to_xlsx(document: Mapping[str, Any], path: Path, lang: str = "en") -> None:
    """The document as a workbook: "About" (the publication, its rules and what the marks mean), one
    cross-table sheet per table, "Timeliness". Codes are labelled in ``lang``."""
    from openpyxl import Workbook  # only writing a workbook pays for it
    from openpyxl.styles import Font

    labels = labels_for(lang)
    workbook = Workbook()
    about = workbook.active
    about.title = "About"
    for line in _about(document):
        about.append(line)
    about["A1"].font = Font(bold=True)
    about.column_dimensions["A"].width = 28
    about.column_dimensions["B"].width = 100
    names = _sheet_names((table["name"] for table in document["tables"]), ["About", "Timeliness"])
    for name, table in zip(names, document["tables"], strict=True):
        sheet = workbook.create_sheet(name)
        for line in _cross_table(table, labels):
            sheet.append(line)
        sheet["A1"].font = Font(bold=True)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = sheet.cell(row=3, column=len(table["rows"]) + 1)
    timeliness = workbook.create_sheet("Timeliness")
    for line in _timeliness_sheet(document, labels):
        timeliness.append(line)
    for cell in timeliness[1]:
        cell.font = Font(bold=True)
    share_column = 2 + 2 * list(Measure).index(Measure.FOLLOW_UPS_ON_TIME)
    for (cell,) in timeliness.iter_rows(min_row=2, min_col=share_column, max_col=share_column):
        cell.number_format = "0%"
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
