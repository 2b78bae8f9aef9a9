"""Data minimisation: each field of each event belongs to a data category; what the agreement and the
person's consent do not grant is removed before an event leaves for a partner country.

Fields not listed are ``CaseCore``, which every agreement grants; everything listed is optional in the
contract, so removing it leaves a valid event (a test holds the schemas to that).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hub.contract import DataCategory, Need, VictimIdentified
from hub.events import CHILD_BANDS, Event

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


def _kept(event: Event, name: str) -> Any:
    """What stays of a withheld field: for a child, the need of child protection is never withheld,
    since the partner must involve it (and the event would otherwise break the contract)."""
    if name == "needs" and isinstance(event, VictimIdentified) and event.age_band in CHILD_BANDS:
        return (Need.ChildProtection,)
    return type(event).model_fields[name].get_default()


def withheld_fields(event: Event, granted: Iterable[DataCategory]) -> tuple[str, ...]:
    """Fields of ``event`` that carry data outside ``granted`` (what would be kept anyway is not
    counted)."""
    allowed = frozenset(granted)
    categories = FIELD_CATEGORIES.get(type(event).__name__, {})
    return tuple(
        name
        for name, category in categories.items()
        if category not in allowed and getattr(event, name) not in (None, (), _kept(event, name))
    )


def minimise(event: Event, granted: Iterable[DataCategory]) -> tuple[Event, tuple[str, ...]]:
    """The event without what is not granted, and the names of the fields removed."""
    removed = withheld_fields(event, granted)
    if not removed:
        return event, ()
    cleared: dict[str, Any] = {name: _kept(event, name) for name in removed}
    return event.model_copy(update=cleared), removed
