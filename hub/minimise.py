"""Data minimisation: each field of each event belongs to a data category; what the agreement and the
person's consent do not grant is removed before an event leaves for a partner country.

Fields not listed are ``CaseCore``, which every agreement grants; everything listed is optional in the
contract, so removing it leaves a valid event (a test holds the schemas to that).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from hub.contract import EVENT_MODELS, DataCategory, Need, VictimIdentified
from hub.events import CHILD_BAND_CODES, CHILD_BANDS, Event

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
    # A correction carries each changed value with the category of its field.
    "EventCorrected": {
        "needs_changes": DataCategory.AssistanceNeeds,
        "legal_changes": DataCategory.Legal,
        "health_changes": DataCategory.Health,
        "personal_changes": DataCategory.PersonalIdentity,
    },
}


def section_fields(event_type: str) -> dict[DataCategory, tuple[str, ...]]:
    """The field names of ``event_type`` per data category, in schema order (categories in the code
    list's order, only those with a field): ``CaseCore`` is every field that is neither the envelope
    nor categorised. The wire format carries each category as its own section."""
    model = EVENT_MODELS.get(event_type)
    if model is None:
        raise KeyError(f"event_type: {event_type!r} is not an event of the contract")
    categories = FIELD_CATEGORIES.get(event_type, {})
    split: dict[DataCategory, list[str]] = {}
    for name in model.model_fields:
        if name != "envelope":
            split.setdefault(categories.get(name, DataCategory.CaseCore), []).append(name)
    return {category: tuple(split[category]) for category in DataCategory if category in split}


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


# -- the same on a decoded record (the router's hot path: no model is built) -----------------------

#: Per event type, each categorised field with its category and its empty value in a decoded
#: record (``None``, or ``[]`` for an array).
_RECORD_FIELDS: dict[str, tuple[tuple[str, DataCategory, Any], ...]] = {
    event_type: tuple(
        (name, category, None if EVENT_MODELS[event_type].model_fields[name].get_default() is None else [])
        for name, category in categories.items()
    )
    for event_type, categories in FIELD_CATEGORIES.items()
}
_CHILD_NEEDS: list[str] = [Need.ChildProtection.value]


def minimise_record(
    event_type: str, record: Mapping[str, Any], granted: Collection[DataCategory]
) -> tuple[Mapping[str, Any], tuple[str, ...]]:
    """:func:`minimise` for a record as the codec decodes it (codes as strings, arrays as lists): the
    record to share (``record`` itself when nothing is withheld) and the names of the fields removed."""
    fields = _RECORD_FIELDS.get(event_type)
    if not fields:
        return record, ()
    cleared: dict[str, Any] = {}
    for name, category, empty in fields:
        if category in granted:
            continue
        value = record[name]
        kept = empty
        if name == "needs" and event_type == "VictimIdentified" and record["age_band"] in CHILD_BAND_CODES:
            kept = _CHILD_NEEDS
        if not value or value == kept:
            continue
        cleared[name] = None if kept is None else list(kept)
    if not cleared:
        return record, ()
    return {**record, **cleared}, tuple(cleared)


def categorised_runs(event_type: str, field_names: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """The runs of adjacent fields of one category in a record with fields ``field_names``: what can
    be withheld, replaced as a piece (a category is granted or not as a whole)."""
    categories = FIELD_CATEGORIES.get(event_type, {})
    runs: list[list[str]] = []
    previous: DataCategory | None = None
    for name in field_names:
        category = categories.get(name)
        if category is None:
            previous = None
            continue
        if category == previous:
            runs[-1].append(name)
        else:
            runs.append([name])
        previous = category
    return tuple(tuple(run) for run in runs)
