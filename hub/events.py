"""Events: the generated contract models plus the rules Avro cannot express.

``parse_event`` turns a mapping (a decoded Avro record, or JSON from a connector) into a model and checks
it; every failure is an :class:`~hub.errors.InvalidEvent` naming the field path and the reason.
All of it is pure: the clock is a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from hub.contract import (
    CONTRACT_VERSION,
    EVENT_MODELS,
    AgeBand,
    CaseClosed,
    CaseStatus,
    CountryCode,
    Envelope,
    Event,
    FollowUpRecorded,
    Need,
    ReferralAnswered,
    ReferralDecision,
    ReferralRequested,
    ReturnNoticeIssued,
    VictimIdentified,
)
from hub.errors import InvalidEvent
from hub.validation import first_error

__all__ = [
    "CONTRACT_VERSION",
    "EVENT_MODELS",
    "MAX_CLOCK_SKEW",
    "Event",
    "check_event",
    "event_to_record",
    "parse_event",
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


def event_to_record(event: Event) -> dict[str, Any]:
    """The plain mapping an Avro writer takes (enums are ``str`` subclasses, tuples are sequences)."""
    return event.model_dump()


def _check_envelope(envelope: Envelope, expected_type: str, now: datetime) -> None:
    if envelope.event_type != expected_type:
        raise InvalidEvent(
            "envelope.event_type",
            f"says {envelope.event_type.value!r} but the record is {expected_type!r}",
        )
    if not 1 <= envelope.schema_version <= CONTRACT_VERSION:
        raise InvalidEvent(
            "envelope.schema_version",
            f"{envelope.schema_version} is not a published contract version (1..{CONTRACT_VERSION})",
        )
    if not CASE_ID.match(envelope.case_id):
        raise InvalidEvent(
            "envelope.case_id",
            f"{envelope.case_id!r} is not '<country code>-<reference>' (letters, digits, . _ / -)",
        )
    if not AGENCY_ID.match(envelope.source_agency):
        raise InvalidEvent(
            "envelope.source_agency",
            f"{envelope.source_agency!r} is not a directory id '<country code>-<agency>'",
        )
    if envelope.source_country == CountryCode.ZZ:
        raise InvalidEvent("envelope.source_country", "the publishing country must be known")
    if envelope.destination_country in (envelope.source_country, CountryCode.ZZ):
        raise InvalidEvent(
            "envelope.destination_country",
            f"{envelope.destination_country.value!r} cannot receive this event "
            "(unknown, or the source country itself)",
        )
    latest = now + MAX_CLOCK_SKEW
    for name in ("occurred_at", "recorded_at"):
        moment: datetime = getattr(envelope, name)
        if moment > latest:
            raise InvalidEvent(
                f"envelope.{name}",
                f"{moment.isoformat()} is in the future (now is {now.isoformat()})",
            )
    if envelope.recorded_at < envelope.occurred_at:
        raise InvalidEvent("envelope.recorded_at", "is before occurred_at")


def _require_destination(event: Event) -> None:
    if event.envelope.destination_country is None:
        raise InvalidEvent(
            "envelope.destination_country",
            f"required for {event.envelope.event_type.value}: it is addressed to a partner country",
        )


def check_event(event: Event, *, now: datetime) -> None:
    """The contract's rules beyond types and codes. Raises :class:`InvalidEvent`."""
    _check_envelope(event.envelope, type(event).__name__, now)
    match event:
        case VictimIdentified():
            if not event.exploitation_types:
                raise InvalidEvent("exploitation_types", "at least one form is required")
            if event.age_band in CHILD_BANDS and Need.ChildProtection not in event.needs:
                # A child, or a person presumed one, always involves child protection.
                raise InvalidEvent(
                    "needs", f"must include ChildProtection when age_band is {event.age_band.value}"
                )
            if (event.reflection_period_start is None) != (event.reflection_period_days is None):
                raise InvalidEvent("reflection_period_days", "start and length must be given together")
            days = event.reflection_period_days
            if days is not None and days not in REFLECTION_DAYS:
                raise InvalidEvent(
                    "reflection_period_days",
                    f"{days} is outside {REFLECTION_DAYS.start}..{REFLECTION_DAYS.stop - 1} days",
                )
        case ReferralRequested():
            _require_destination(event)
            if not event.purposes:
                raise InvalidEvent("purposes", "at least one purpose is required")
        case ReferralAnswered():
            _require_destination(event)
            declined = event.decision == ReferralDecision.Declined
            if declined and event.decline_reason is None:
                raise InvalidEvent("decline_reason", "required when the decision is Declined")
            if not declined and event.decline_reason is not None:
                raise InvalidEvent("decline_reason", "must be empty when the decision is Accepted")
        case ReturnNoticeIssued():
            _require_destination(event)
        case FollowUpRecorded():
            if event.months_since_return not in FOLLOW_UP_MONTHS:
                raise InvalidEvent(
                    "months_since_return",
                    f"{event.months_since_return} is outside 1..{FOLLOW_UP_MONTHS.stop - 1}",
                )
            if not event.domains_assessed:
                raise InvalidEvent("domains_assessed", "at least one domain is required")
        case CaseClosed():
            if event.status not in (CaseStatus.Closed, CaseStatus.ClosedReferred):
                raise InvalidEvent("status", f"{event.status.value!r} is not a closed status")
        case _:
            pass  # the remaining records have no rule beyond their types
