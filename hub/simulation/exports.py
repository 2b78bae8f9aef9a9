"""The batch-import door's files, pure: an event as the JSONL row a national system's export holds, and
the mapping that turns such rows back into the very same events (``connectors.importer``).

A row's columns are the event's field paths (``envelope.case_id``, ``personal.given_names``). Its key is
the case id and the event's type and time, as a case-management export identifies a record; the event's
id is derived from that key exactly as the importer derives it, so the plan knows it in advance."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any, Final
from uuid import UUID

from pydantic import BaseModel

from connectors.importer.convert import event_id_for
from connectors.importer.mapping import DERIVED_FIELDS, ImportMapping, parse_mapping, target_of
from hub.contract import EVENT_MODELS
from hub.events import Event

__all__ = ["ROW_KEY", "export_mapping", "export_row", "import_key", "importable", "imported_id"]

#: The columns that identify a row: the case, and the record within it.
ROW_KEY: Final = ("envelope.case_id", "record")
_EVENT_TYPE: Final = "envelope.event_type"


def import_key(event: Event) -> tuple[str, str]:
    """The row key of ``event`` in an export: its case, and its type at its time (to the millisecond)."""
    envelope = event.envelope
    moment = envelope.occurred_at.isoformat(timespec="milliseconds")
    return envelope.case_id, f"{envelope.event_type.value}@{moment}"


def imported_id(country: str, event: Event) -> UUID:
    """The id the importer gives ``event`` when ``country`` imports it."""
    return event_id_for(country, import_key(event))


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name in model.model_fields:
        yield f"{prefix}{name}"


@cache
def _columns() -> tuple[str, ...]:
    """Every field path one column can hold, over every event of the contract."""
    found: dict[str, None] = {}
    for kind, model in EVENT_MODELS.items():
        candidates = [*_paths(model)]
        for name in list(candidates):
            target = target_of(kind, name)
            if target is not None and target.kind == "record":
                nested = model.model_fields[name].annotation
                record = next(
                    arg
                    for arg in getattr(nested, "__args__", (nested,))
                    if isinstance(arg, type) and issubclass(arg, BaseModel)
                )
                candidates += [*_paths(record, f"{name}.")]
        for path in candidates:
            target = target_of(kind, path)
            if target is None or target.kind in ("record", "records") or path in DERIVED_FIELDS:
                continue
            found[path] = None
    return tuple(found)


@cache
def export_mapping() -> ImportMapping:
    """The mapping of the export's rows: each column is the field path it holds."""
    raw = {
        "description": "The simulation's exports: one event per row, columns named by field path",
        "row_key": list(ROW_KEY),
        "event_type": {"column": _EVENT_TYPE},
        "fields": {path: {"column": path} for path in _columns()},
    }
    return parse_mapping(raw, "hub.simulation.exports")


def importable(event: Event) -> bool:
    """Whether an export can carry ``event``: one column holds no list of records (documents,
    contacts, route legs, a correction's changes)."""
    return not any(
        isinstance(value, list) and value and isinstance(value[0], dict) for value in _flat(event).values()
    )


def _flat(event: Event) -> dict[str, Any]:
    flat: dict[str, Any] = {}

    def walk(value: Any, prefix: str) -> None:
        for name, item in value.items():
            path = f"{prefix}{name}"
            if isinstance(item, dict):
                walk(item, f"{path}.")
            else:
                flat[path] = item

    walk(event.model_dump(mode="json"), "")
    return flat


def export_row(event: Event) -> dict[str, Any]:
    """The row of ``event`` in an export (``None`` and empty lists left out, as empty cells)."""
    if not importable(event):
        raise ValueError(f"{event.envelope.event_id}: a list of records cannot be exported in one column")
    row = {
        path: value
        for path, value in _flat(event).items()
        if value is not None and value != [] and path != "envelope.event_id"
    }
    row["record"] = import_key(event)[1]
    return row
