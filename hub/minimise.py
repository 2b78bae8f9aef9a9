"""Data minimisation: each field of each event belongs to a data category; what the agreement and the
person's consent do not grant is removed before an event leaves for a partner country.

Fields not listed are ``CaseCore``, which every agreement grants; everything listed is optional in the
contract, so removing it leaves a valid event (a test holds the schemas to that).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.contract import DataCategory
from hub.events import Event

FIELD_CATEGORIES: dict[str, dict[str, DataCategory]] = {
    "VictimIdentified": {
        "needs": DataCategory.AssistanceNeeds,
        "methods_of_control": DataCategory.Legal,
        "recruitment_methods": DataCategory.Legal,
        "personal": DataCategory.PersonalIdentity,
    },
    "ReferralRequested": {
        "services_requested": DataCategory.AssistanceNeeds,
        "personal": DataCategory.PersonalIdentity,
    },
    "ReferralAnswered": {"services_offered": DataCategory.AssistanceNeeds},
    "ReturnNoticeIssued": {
        "special_needs": DataCategory.Health,
        "personal": DataCategory.PersonalIdentity,
    },
    "HandoverCompleted": {"personal": DataCategory.PersonalIdentity},
    "FollowUpRecorded": {"needs": DataCategory.AssistanceNeeds},
}


def withheld_fields(event: Event, granted: Iterable[DataCategory]) -> tuple[str, ...]:
    """Fields of ``event`` that carry data outside ``granted`` (empty fields are not counted)."""
    allowed = frozenset(granted)
    categories = FIELD_CATEGORIES.get(type(event).__name__, {})
    return tuple(
        name
        for name, category in categories.items()
        if category not in allowed and getattr(event, name) not in (None, ())
    )


def minimise(event: Event, granted: Iterable[DataCategory]) -> tuple[Event, tuple[str, ...]]:
    """The event without what is not granted, and the names of the fields removed."""
    removed = withheld_fields(event, granted)
    if not removed:
        return event, ()
    fields = type(event).model_fields
    cleared: dict[str, Any] = {name: fields[name].get_default() for name in removed}
    return event.model_copy(update=cleared), removed
