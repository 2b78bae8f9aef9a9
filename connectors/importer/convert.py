"""Rows to events, pure: apply the mapping, then the contract's own checks (``hub.events.parse_event``,
as the router runs them). A row that fails is a :class:`RowError` naming its line, the source column,
the contract field and the reason; nothing here reads a file, a clock or the network.

Event ids are derived from the importing country and the row key (uuid5 under :data:`IMPORT_NAMESPACE`),
and ``recorded_at`` defaults to ``occurred_at``, so importing the same file twice gives the very same
events: the hub takes the second import as a resubmission.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, tzinfo
from typing import Any, Final, NamedTuple
from uuid import UUID, uuid5

from connectors.importer.mapping import FieldRule, ImportMapping, Target, target_of
from hub.contract import CONTRACT_VERSION, EVENT_MODELS, EventType
from hub.errors import InvalidEvent
from hub.events import Event, parse_event

__all__ = [
    "IMPORT_NAMESPACE",
    "Converter",
    "RowError",
    "SourceRow",
    "cell_text",
    "column_of",
    "convert_row",
    "convert_rows",
    "event_id_for",
]

#: The uuid5 namespace of imported events' ids. Fixed for good: changing it would give every row
#: imported before a new id, and a re-import would publish everything a second time.
IMPORT_NAMESPACE: Final = UUID("3b90f94b-4f82-45cd-838c-87ba1a90f594")

_TRUE: Final = frozenset({"true", "yes", "y", "1"})
_FALSE: Final = frozenset({"false", "no", "n", "0"})
_EVENT_TYPE: Final = Target("code", False, EventType)


class SourceRow(NamedTuple):
    """One row of the source file: its line as a person sees it, and its cells by column name."""

    line: int
    values: Mapping[str, Any]


class RowError(NamedTuple):
    """Why a row did not become an event. ``column`` is the source column behind ``field`` (the
    contract field path), either may be ``None`` when the fault is the row's as a whole."""

    line: int
    column: str | None
    field: str | None
    reason: str


class _CellError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class _Absent:
    """An empty cell without a default: the field is left out, for the contract's default or error."""


_ABSENT: Final = _Absent()


def event_id_for(country: str, key: Sequence[str]) -> UUID:
    """The id of the event of the row whose key cells are ``key``, imported by ``country``."""
    # JSON keeps ("a,b", "c") and ("a", "b,c") apart, which joining with a separator would not.
    return uuid5(IMPORT_NAMESPACE, json.dumps([country, *key], ensure_ascii=False, separators=(",", ":")))


def cell_text(value: Any) -> str:
    """A cell as text, the same whichever reader read it (a spreadsheet's 17 or 17.0 and a CSV's "17")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _date(raw: Any, formats: Sequence[str]) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = cell_text(raw)
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in formats:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise _CellError(f"{text!r} is not a date ({_expected(formats)})")


def _moment(raw: Any, formats: Sequence[str], zone: tzinfo) -> datetime:
    if isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, date):
        moment = datetime.combine(raw, time())
    else:
        text = cell_text(raw)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            for fmt in formats:
                try:
                    moment = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
            else:
                raise _CellError(f"{text!r} is not a date ({_expected(formats)})") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _expected(formats: Sequence[str]) -> str:
    return "expected ISO 8601" + "".join(f" or {fmt}" for fmt in formats)


def _ranged(text: str, rule: FieldRule) -> str | None:
    try:
        number = float(text)
    except ValueError:
        return None
    bounds = [bound for bound in rule.ranges if bound <= number]
    if not bounds:
        lowest = min(rule.ranges)
        raise _CellError(f"{text} is below the lowest range ({lowest:g})")
    return rule.ranges[max(bounds)]


def _scalar(raw: Any, rule: FieldRule, target: Target, mapping: ImportMapping) -> Any:
    text = cell_text(raw)
    mapped = rule.labels().get(text.casefold())
    if mapped is not None:
        raw = text = mapped
    elif target.kind == "code" and rule.ranges:
        raw = text = _ranged(text, rule) or text
    formats = rule.format or mapping.date_formats
    match target.kind:
        case "int":
            try:
                number = float(text)
            except ValueError:
                raise _CellError(f"{text!r} is not a number") from None
            if not number.is_integer():
                raise _CellError(f"{text} is not a whole number")
            return int(number)
        case "bool":
            if text.casefold() in _TRUE:
                return True
            if text.casefold() in _FALSE:
                return False
            raise _CellError(f"{text!r} is neither yes nor no")
        case "date":
            return _date(raw, formats)
        case "datetime":
            return _moment(raw, formats, mapping.zone())
        case _:
            # Codes are checked by the contract, which names the code list and its codes.
            return rule.prefix + text


def _value(rule: FieldRule, target: Target, row: Mapping[str, Any], mapping: ImportMapping) -> Any:
    if rule.column is not None:
        raw = row.get(rule.column)
        if _blank(raw):
            if rule.default is None:
                return _ABSENT
            raw = rule.default
    else:
        raw = rule.constant
    if not target.many:
        if isinstance(raw, list | tuple):
            raise _CellError("holds a list, and the field takes one value")
        return _scalar(raw, rule, target, mapping)
    if isinstance(raw, list | tuple):
        items: Iterable[Any] = raw
    elif rule.split is not None:
        items = cell_text(raw).split(rule.split)
    else:
        items = [raw]
    return [_scalar(item, rule, target, mapping) for item in items if not _blank(item)]


def _put(record: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for name in parents:
        record = record.setdefault(name, {})
    record[leaf] = value


def column_of(mapping: ImportMapping, field: str) -> str | None:
    """The source column behind a contract field path (the most specific mapped path containing it)."""
    if field == "envelope.event_type":
        return mapping.event_type.column
    best = ""
    for path in mapping.fields:
        if (field == path or field.startswith(f"{path}.")) and len(path) > len(best):
            best = path
    return mapping.fields[best].column if best else None


def convert_row(row: SourceRow, mapping: ImportMapping, *, country: str, now: datetime) -> Event | RowError:
    """The event of one row, checked as the router checks it, or why the row is not one."""
    line, values = row
    key: list[str] = []
    for column in mapping.row_key:
        text = cell_text(values.get(column))
        if not text:
            return RowError(line, column, "envelope.event_id", "empty, and the row key makes the event id")
        key.append(text)
    try:
        kind = _value(mapping.event_type, _EVENT_TYPE, values, mapping)
    except _CellError as error:
        return RowError(line, mapping.event_type.column, "envelope.event_type", error.reason)
    if kind is _ABSENT:
        return RowError(line, mapping.event_type.column, "envelope.event_type", "empty, and no default")
    if kind not in EVENT_MODELS:
        expected = ", ".join(mapping.event_types())
        return RowError(
            line,
            mapping.event_type.column,
            "envelope.event_type",
            f"unknown event type {kind!r}; expected one of {expected}",
        )
    record: dict[str, Any] = {"envelope": {}}
    for path, rule in mapping.fields.items():
        target = target_of(kind, path)
        if target is None:
            continue  # a field of the mapping's other event types
        try:
            value = _value(rule, target, values, mapping)
        except _CellError as error:
            return RowError(line, rule.column, path, error.reason)
        if value is not _ABSENT:
            _put(record, path, value)
    envelope = record["envelope"]
    envelope["event_id"] = str(event_id_for(country, key))
    envelope["event_type"] = kind
    envelope.setdefault("schema_version", CONTRACT_VERSION)
    if "occurred_at" in envelope:
        # Not the clock: a re-import must give the very same event.
        envelope.setdefault("recorded_at", envelope["occurred_at"])
    try:
        event = parse_event(record, now=now)
    except InvalidEvent as error:
        return RowError(line, column_of(mapping, error.field), error.field, error.reason)
    source = event.envelope.source_country.value
    if source != country:
        return RowError(
            line,
            column_of(mapping, "envelope.source_country"),
            "envelope.source_country",
            f"is {source}, and these rows are imported for {country}: "
            "a country publishes only its own events",
        )
    return event


class Converter:
    """Converts the rows of one file in order, rejecting a row whose key repeats an earlier valid
    row's: it would get the same event id, and the hub would take it for a resubmission of that row."""

    def __init__(self, mapping: ImportMapping, *, country: str, now: datetime) -> None:
        self.mapping = mapping
        self.country = country
        self.now = now
        # Ids as integers: the smallest exact record of the rows seen (one entry per valid row).
        self._lines: dict[int, int] = {}

    def convert(self, item: SourceRow | RowError) -> Event | RowError:
        if isinstance(item, RowError):
            return item
        result = convert_row(item, self.mapping, country=self.country, now=self.now)
        if isinstance(result, RowError):
            return result
        first = self._lines.setdefault(result.envelope.event_id.int, item.line)
        if first != item.line:
            return RowError(
                item.line,
                ", ".join(self.mapping.row_key),
                "envelope.event_id",
                f"the row key repeats line {first}'s, so the hub would take this row for line {first}",
            )
        return result


def convert_rows(
    rows: Iterable[SourceRow | RowError], mapping: ImportMapping, *, country: str, now: datetime
) -> Iterator[Event | RowError]:
    """Each row's event or error, in order (the errors of unreadable rows pass through)."""
    converter = Converter(mapping, country=country, now=now)
    for row in rows:
        yield converter.convert(row)
