"""Hypothesis strategies for valid events, derived from the Avro contract itself.

Random records follow the schema; a few rules that Avro cannot express are then applied so that every
generated event is valid (``hub.events.check_event``).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from hub.events import CASE_ID, CHILD_BANDS, FOLLOW_UP_MONTHS, REFLECTION_DAYS, Event, parse_event
from hub.schema_registry import default_contract

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
COUNTRIES = ("TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP", "KR", "SG", "TL", "BN")

_texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=24)
_timestamps = st.datetimes(
    min_value=datetime(2015, 1, 1), max_value=NOW.replace(tzinfo=None), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def from_avro(node: Any, named: dict[str, Any]) -> st.SearchStrategy[Any]:
    if isinstance(node, str):
        if node in named:
            return from_avro(named[node], named)
        return {
            "string": _texts,
            "int": st.integers(-(2**31), 2**31 - 1),
            "long": st.integers(-(2**63), 2**63 - 1),
            "boolean": st.booleans(),
        }[node]
    if isinstance(node, list):
        return st.one_of(*(st.none() if branch == "null" else from_avro(branch, named) for branch in node))
    logical = node.get("logicalType")
    if logical == "date":
        return st.dates(min_value=date(2000, 1, 1), max_value=date(2030, 12, 31))
    if logical == "timestamp-millis":
        return _timestamps
    if logical == "uuid":
        return st.uuids()
    kind = node["type"]
    if kind == "enum":
        return st.sampled_from(node["symbols"])
    if kind == "array":
        items = node["items"]
        # Codes are sets in meaning; records (documents, contacts) may repeat.
        unique = isinstance(items, str) and named.get(items, {}).get("type") == "enum"
        return st.lists(from_avro(items, named), max_size=3, unique=unique)
    if kind == "record":
        return st.fixed_dictionaries(
            {field["name"]: from_avro(field["type"], named) for field in node["fields"]}
        )
    return from_avro(kind, named)


@st.composite
def envelopes(draw: st.DrawFn, event_type: str) -> dict[str, Any]:
    source = draw(st.sampled_from(COUNTRIES))
    destination = draw(st.sampled_from([c for c in COUNTRIES if c != source]))
    occurred = draw(_timestamps)
    return {
        "event_id": draw(st.uuids()),
        "event_type": event_type,
        "schema_version": 1,
        "case_id": draw(st.from_regex(CASE_ID, fullmatch=True)),
        "occurred_at": occurred,
        "recorded_at": min(occurred + timedelta(seconds=draw(st.integers(0, 86_400))), NOW),
        "source_country": source,
        "source_agency": f"{source}-{draw(st.from_regex(r'[A-Z]{2,8}', fullmatch=True))}",
        "destination_country": destination,
        "correlation_id": draw(st.none() | st.uuids()),
        "causation_id": draw(st.none() | st.uuids()),
    }


def _make_valid(event_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """Apply the contract's cross-field rules to a schema-shaped random record."""
    if event_type == "VictimIdentified":
        record["exploitation_types"] = record["exploitation_types"] or ["ForcedLabour"]
        if record["age_band"] in CHILD_BANDS and "ChildProtection" not in record["needs"]:
            record["needs"] = [*record["needs"], "ChildProtection"]
        if record["reflection_period_start"] is None:
            record["reflection_period_days"] = None
        else:
            days = record["reflection_period_days"] or 0
            record["reflection_period_days"] = REFLECTION_DAYS.start + abs(days) % len(REFLECTION_DAYS)
    elif event_type == "ReferralRequested":
        record["purposes"] = record["purposes"] or ["TraceFamily"]
    elif event_type == "ReferralAnswered":
        if record["decision"] == "Declined":
            record["decline_reason"] = record["decline_reason"] or "HomeNotSafe"
        else:
            record["decline_reason"] = None
    elif event_type == "FollowUpRecorded":
        record["months_since_return"] = FOLLOW_UP_MONTHS.start + abs(record["months_since_return"]) % len(
            FOLLOW_UP_MONTHS
        )
        record["domains_assessed"] = record["domains_assessed"] or ["Family"]
    elif event_type == "CaseClosed" and record["status"] not in ("Closed", "ClosedReferred"):
        record["status"] = "Closed"
    elif event_type == "ReturnNoticeIssued":
        legs, previous = [], record["envelope"]["source_country"]
        for leg in record["legs"]:
            if leg["to_country"] == previous:
                continue
            legs.append({**leg, "from_country": previous})
            previous = leg["to_country"]
        record["legs"] = legs
    elif event_type == "EventCorrected":
        for array, name in _CORRECTABLE.items():
            record[array] = [
                {"field": name, "value_json": json.dumps(c["value_json"])} for c in record[array]
            ]
        if not any(record[array] for array in _CORRECTABLE):
            record["core_changes"] = [{"field": "respond_by", "value_json": '"2026-12-01"'}]
    return record


#: A field each change array of a correction may carry.
_CORRECTABLE = {
    "core_changes": "respond_by",
    "needs_changes": "needs",
    "legal_changes": "methods_of_control",
    "health_changes": "special_needs",
    "personal_changes": "personal",
}


@st.composite
def event_records(draw: st.DrawFn, event_type: str | None = None) -> dict[str, Any]:
    """A valid event as the plain mapping a decoder would produce."""
    latest = default_contract().latest
    event_type = event_type or draw(st.sampled_from(sorted(latest.events)))
    named = latest.named_types()
    schema = named[f"lintas.events.{event_type}"]
    body = {
        field["name"]: draw(from_avro(field["type"], named))
        for field in schema["fields"]
        if field["name"] != "envelope"
    }
    return _make_valid(event_type, {"envelope": draw(envelopes(event_type)), **body})


def events(event_type: str | None = None) -> st.SearchStrategy[Event]:
    return event_records(event_type).map(lambda record: parse_event(record, now=NOW))
