"""Events: the generated contract models plus the rules Avro cannot express.

``parse_event`` turns a mapping (a decoded Avro record, or JSON from a connector) into a model and checks
it; every failure is an :class:`~hub.errors.InvalidEvent` naming the field path and the reason.
All of it is pure: the clock is a parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from pydantic import ValidationError

from hub.contract import (
    CONTRACT_VERSION,
    EVENT_MODELS,
    AgeBand,
    CaseStatus,
    CountryCode,
    Event,
    Need,
    ReferralDecision,
)
from hub.errors import InvalidEvent
from hub.validation import all_errors, first_error

__all__ = [
    "CONTRACT_VERSION",
    "EVENT_MODELS",
    "MAX_CLOCK_SKEW",
    "Event",
    "check_event",
    "check_record",
    "event_problems",
    "event_to_record",
    "parse_event",
    "record_is_valid",
]

#: How far in the future an event's time may be: national systems' clocks drift, but an event from
#: tomorrow is an error in the sending system.
MAX_CLOCK_SKEW = timedelta(minutes=5)
#: Reflection and recovery periods in the region run 30 to 90 days (Thailand: 15 + 30 = 45).
REFLECTION_DAYS = range(30, 91)
FOLLOW_UP_MONTHS = range(1, 61)
CASE_ID = re.compile(r"^[A-Z]{2}-[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
AGENCY_ID = re.compile(r"^[A-Z]{2}-[A-Za-z0-9._-]{1,40}$")
CHILD_BANDS = frozenset(
    {AgeBand.Child0To11, AgeBand.Child12To14, AgeBand.Child15To17, AgeBand.UncertainPresumedChild}
)


def parse_event(data: Mapping[str, Any], *, now: datetime) -> Event:
    """Build and check an event from a mapping whose ``envelope.event_type`` names its record."""
    envelope = data.get("envelope")
    if not isinstance(envelope, Mapping):
        raise InvalidEvent("envelope", "required record is missing")
    event_type = envelope.get("event_type")
    if event_type is None:
        raise InvalidEvent("envelope.event_type", "required field is missing")
    model = EVENT_MODELS.get(str(event_type))
    if model is None:
        raise InvalidEvent(
            "envelope.event_type",
            f"unknown code {event_type!r}; expected one of {', '.join(EVENT_MODELS)}",
        )
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidEvent(*first_error(exc)) from exc
    check_event(event, now=now)
    return event


def event_problems(data: Any, *, now: datetime) -> tuple[Event | None, list[tuple[str, str]]]:
    """:func:`parse_event`, reporting every field at fault (path, reason) rather than the first: what a
    connector answers a national system with. The event is ``None`` when anything is wrong."""
    if not isinstance(data, Mapping):
        return None, [("<top>", f"an event is a JSON object, not {type(data).__name__}")]
    envelope = data.get("envelope")
    if not isinstance(envelope, Mapping):
        return None, [("envelope", "required record is missing")]
    model = EVENT_MODELS.get(str(envelope.get("event_type")))
    if model is None:
        try:
            parse_event(data, now=now)
        except InvalidEvent as error:
            return None, [(error.field, error.reason)]
        raise AssertionError("parse_event accepted an unknown event type")
    try:
        event = model.model_validate(data)
    except ValidationError as exc:
        return None, all_errors(exc)
    try:
        check_event(event, now=now)
    except InvalidEvent as error:
        return None, [(error.field, error.reason)]
    return event, []


def event_to_record(event: Event) -> dict[str, Any]:
    """The plain mapping an Avro writer takes (enums are ``str`` subclasses, tuples are sequences)."""
    return event.model_dump()


def _fields(value: Any) -> Mapping[str, Any]:
    """A record's fields by name: a decoded record itself, or a model's ``__dict__``."""
    return value if isinstance(value, dict) else value.__dict__


def _check_envelope(envelope: Mapping[str, Any], expected_type: str, now: datetime) -> None:
    event_type = envelope["event_type"]
    if event_type != expected_type:
        raise InvalidEvent(
            "envelope.event_type",
            f"says {str(event_type)!r} but the record is {expected_type!r}",
        )
    schema_version = envelope["schema_version"]
    if not 1 <= schema_version <= CONTRACT_VERSION:
        raise InvalidEvent(
            "envelope.schema_version",
            f"{schema_version} is not a published contract version (1..{CONTRACT_VERSION})",
        )
    case_id = envelope["case_id"]
    if not CASE_ID.match(case_id):
        raise InvalidEvent(
            "envelope.case_id",
            f"{case_id!r} is not '<country code>-<reference>' (letters, digits, . _ / -)",
        )
    source_agency = envelope["source_agency"]
    if not AGENCY_ID.match(source_agency):
        raise InvalidEvent(
            "envelope.source_agency",
            f"{source_agency!r} is not a directory id '<country code>-<agency>'",
        )
    source, destination = envelope["source_country"], envelope["destination_country"]
    if source == CountryCode.ZZ:
        raise InvalidEvent("envelope.source_country", "the publishing country must be known")
    if destination is not None and destination in (source, CountryCode.ZZ):
        raise InvalidEvent(
            "envelope.destination_country",
            f"{str(destination)!r} cannot receive this event (unknown, or the source country itself)",
        )
    latest = now + MAX_CLOCK_SKEW
    occurred_at: datetime = envelope["occurred_at"]
    recorded_at: datetime = envelope["recorded_at"]
    for name, moment in (("occurred_at", occurred_at), ("recorded_at", recorded_at)):
        if moment > latest:
            raise InvalidEvent(
                f"envelope.{name}",
                f"{moment.isoformat()} is in the future (now is {now.isoformat()})",
            )
    if recorded_at < occurred_at:
        raise InvalidEvent("envelope.recorded_at", "is before occurred_at")


def _require_destination(event_type: str, envelope: Mapping[str, Any]) -> None:
    if envelope["destination_country"] is None:
        raise InvalidEvent(
            "envelope.destination_country",
            f"required for {event_type}: it is addressed to a partner country",
        )


#: The age bands of children, as codes (a decoded record holds codes, a model holds members).
CHILD_BAND_CODES = frozenset(band.value for band in CHILD_BANDS)
_CLOSED = (CaseStatus.Closed, CaseStatus.ClosedReferred)


#: Fields a correction may not change: the envelope, and what the router's sequence rules read (those
#: change through new events: a consent change, a retraction and a new answer, a transit change).
_CHANGE_ARRAYS = ("core_changes", "needs_changes", "legal_changes", "health_changes", "personal_changes")
UNCORRECTABLE = frozenset(
    {
        "envelope",
        "consent_scope",
        "decision",
        "transit_country",
        "transit_change",
        # a correction or retraction is itself retracted, and sent again, never corrected
        "target_event_id",
        "reason",
        *_CHANGE_ARRAYS,
    }
)
#: Every top-level field some event carries: what a correction may name.
EVENT_FIELDS = frozenset(name for model in EVENT_MODELS.values() for name in model.model_fields)


def _check_legs(legs: Any) -> None:
    previous = None
    for index, leg in enumerate(legs):
        leg = _fields(leg)
        if leg["from_country"] == leg["to_country"]:
            raise InvalidEvent(f"legs[{index}].to_country", "a leg joins two different countries")
        if previous is not None and leg["from_country"] != previous["to_country"]:
            raise InvalidEvent(
                f"legs[{index}].from_country",
                f"{leg['from_country']!s} does not continue the leg before, "
                f"which ends in {previous['to_country']!s}",
            )
        previous = leg


@cache
def _category_of() -> dict[str, str]:
    from hub.minimise import FIELD_CATEGORIES  # minimisation reads this module's code lists

    return {name: category for fields in FIELD_CATEGORIES.values() for name, category in fields.items()}


def _check_corrections(record: Mapping[str, Any]) -> None:
    category_of = _category_of()
    wanted = {
        "core_changes": None,
        "needs_changes": "AssistanceNeeds",
        "legal_changes": "Legal",
        "health_changes": "Health",
        "personal_changes": "PersonalIdentity",
    }
    for array in _CHANGE_ARRAYS:
        for index, change in enumerate(record[array]):
            change = _fields(change)
            path = f"{array}[{index}]"
            name = change["field"]
            if name not in EVENT_FIELDS:
                raise InvalidEvent(f"{path}.field", f"{name!r} is not a field of any event of the contract")
            if name in UNCORRECTABLE:
                raise InvalidEvent(
                    f"{path}.field", f"{name} cannot be corrected: send the event that changes it instead"
                )
            category = category_of.get(name)
            if category != wanted[array]:
                belongs = next(other for other, wants in wanted.items() if wants == category)
                raise InvalidEvent(f"{path}.field", f"{name} belongs in {belongs}, with its data category")
            try:
                json.loads(change["value_json"])
            except ValueError as exc:
                raise InvalidEvent(f"{path}.value_json", f"not JSON: {exc}") from exc


def check_event(event: Event, *, now: datetime) -> None:
    """The contract's rules beyond types and codes. Raises :class:`InvalidEvent`."""
    check_record(type(event).__name__, event.__dict__, now=now)


def check_record(event_type: str, record: Mapping[str, Any], *, now: datetime) -> None:
    """The rules of :func:`check_event` over the fields of a record of ``event_type`` (a model's, or a
    decoded record whose values already have the contract's types: codes as strings or members,
    arrays as lists or tuples). Raises :class:`InvalidEvent`."""
    envelope = _fields(record["envelope"])
    _check_envelope(envelope, event_type, now)
    match event_type:
        case "VictimIdentified":
            if not record["exploitation_types"]:
                raise InvalidEvent("exploitation_types", "at least one form is required")
            age_band = record["age_band"]
            if str(age_band) in CHILD_BAND_CODES and Need.ChildProtection not in record["needs"]:
                # A child, or a person presumed one, always involves child protection.
                raise InvalidEvent("needs", f"must include ChildProtection when age_band is {age_band!s}")
            days = record["reflection_period_days"]
            if (record["reflection_period_start"] is None) != (days is None):
                raise InvalidEvent("reflection_period_days", "start and length must be given together")
            if days is not None and days not in REFLECTION_DAYS:
                raise InvalidEvent(
                    "reflection_period_days",
                    f"{days} is outside {REFLECTION_DAYS.start}..{REFLECTION_DAYS.stop - 1} days",
                )
        case "ReferralRequested":
            _require_destination(event_type, envelope)
            if not record["purposes"]:
                raise InvalidEvent("purposes", "at least one purpose is required")
        case "ReferralAnswered":
            _require_destination(event_type, envelope)
            declined = record["decision"] == ReferralDecision.Declined
            if declined and record["decline_reason"] is None:
                raise InvalidEvent("decline_reason", "required when the decision is Declined")
            if not declined and record["decline_reason"] is not None:
                raise InvalidEvent("decline_reason", "must be empty when the decision is Accepted")
        case "ReturnNoticeIssued":
            _require_destination(event_type, envelope)
            _check_legs(record.get("legs") or ())
        case "FollowUpRecorded":
            months = record["months_since_return"]
            if months not in FOLLOW_UP_MONTHS:
                raise InvalidEvent(
                    "months_since_return", f"{months} is outside 1..{FOLLOW_UP_MONTHS.stop - 1}"
                )
            if not record["domains_assessed"]:
                raise InvalidEvent("domains_assessed", "at least one domain is required")
        case "CaseClosed":
            status = record["status"]
            if status not in _CLOSED:
                raise InvalidEvent("status", f"{str(status)!r} is not a closed status")
        case "TransitPartyChanged" | "EventRetracted":
            _require_destination(event_type, envelope)
        case "EventCorrected":
            _require_destination(event_type, envelope)
            _check_corrections(record)
        case _:
            pass  # the remaining records have no rule beyond their types


#: The fields of the event models whose type bounds a value beyond what Avro's own type gives (an
#: Avro ``int`` read by fastavro may exceed 32 bits): each is bounded tighter by a rule above, so a
#: decoded record that passes the rules passes the model's bounds too (a test holds the models to it).
RULE_BOUNDED_FIELDS = frozenset(
    {
        ("Envelope", "schema_version"),
        ("VictimIdentified", "reflection_period_days"),
        ("FollowUpRecorded", "months_since_return"),
    }
)


def record_is_valid(event_type: str, record: Mapping[str, Any], *, now: datetime) -> bool:
    """Whether :func:`parse_event` would accept ``record``, for a record that fastavro decoded in
    this contract version (``CONTRACT_VERSION``), without building the model.

    Such a record already has every field, and every value of the type and code list the models
    require, except the bounds of :data:`RULE_BOUNDED_FIELDS`, which the rules check more tightly;
    so the envelope's type naming the record, plus the rules, are what is left to check. ``False``
    means only "not sure": :func:`parse_event` then says what is wrong, with the same error as ever.
    """
    if event_type not in EVENT_MODELS or record["envelope"]["event_type"] != event_type:
        return False
    try:
        check_record(event_type, record, now=now)
    except InvalidEvent:
        return False
    return True
