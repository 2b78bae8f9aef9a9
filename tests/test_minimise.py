"""Data minimisation: what a category removes, and that what is left is still a valid event."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codec import Codec
from hub.contract import EVENT_MODELS, AgeBand, DataCategory, Need, VictimIdentified
from hub.events import Event, check_event, parse_event
from hub.minimise import FIELD_CATEGORIES, minimise, minimise_record, withheld_fields
from hub.schema_registry import default_contract
from tests.strategies import NOW, events

CODEC = Codec(clock=lambda: NOW)

CATEGORISED = [
    (event_type, name, category)
    for event_type, fields in FIELD_CATEGORIES.items()
    for name, category in fields.items()
]


def avro_fields(event_type: str) -> dict[str, dict[str, Any]]:
    """The fields of ``lintas.events.<event_type>.avsc`` of the newest contract version, by name."""
    path = default_contract().latest.events[event_type].path
    assert path.name == f"lintas.events.{event_type}.avsc"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return {field["name"]: field for field in schema["fields"]}


# -- the field table against the contract ----------------------------------------------------------


def test_every_listed_event_type_is_an_event() -> None:
    assert set(FIELD_CATEGORIES) <= set(EVENT_MODELS)


@pytest.mark.parametrize(
    ("event_type", "name", "category"),
    CATEGORISED,
    ids=[f"{event_type}.{name}" for event_type, name, _ in CATEGORISED],
)
def test_every_listed_field_exists_and_is_optional(
    event_type: str, name: str, category: DataCategory
) -> None:
    # given a field the hub may remove
    model = EVENT_MODELS[event_type]

    # then it is not case core, exists on the model with a default, and has an empty default in Avro
    assert category != DataCategory.CaseCore
    assert name in model.model_fields, f"{event_type}.{name} is not a field of the model"
    model_field = model.model_fields[name]
    assert not model_field.is_required()
    empty = model_field.get_default()
    assert empty in (None, ())
    avro = avro_fields(event_type)
    assert name in avro, f"{event_type}.{name} is not in the Avro schema"
    assert "default" in avro[name], f"{event_type}.{name} has no default in the Avro schema"
    assert avro[name]["default"] == (None if empty is None else [])


# -- properties -----------------------------------------------------------------------------------------

granted_categories = st.frozensets(st.sampled_from(DataCategory)).map(lambda g: g | {DataCategory.CaseCore})


CHILD_BANDS = {
    AgeBand.Child0To11,
    AgeBand.Child12To14,
    AgeBand.Child15To17,
    AgeBand.UncertainPresumedChild,
}


def _emptied(event: Event, name: str) -> object:
    """What a withheld field becomes: its default, except that a child's need of child protection
    always stays."""
    if name == "needs" and isinstance(event, VictimIdentified) and event.age_band in CHILD_BANDS:
        return (Need.ChildProtection,)
    return type(event).model_fields[name].get_default()


@settings(max_examples=200, deadline=None)
@given(events(), granted_categories)
def test_minimised_events_keep_case_core_and_lose_exactly_the_withheld_fields(
    event: Event, granted: frozenset[DataCategory]
) -> None:
    # given any valid event and any grant that includes CaseCore
    categories = FIELD_CATEGORIES.get(type(event).__name__, {})

    # when it is minimised
    shared, withheld = minimise(event, granted)

    # then it is the same kind of event, still valid, and round-trips through the codec
    assert type(shared) is type(event)
    check_event(shared, now=NOW)
    assert CODEC.decode(CODEC.encode(shared)) == shared
    _, record = CODEC.decode_record(CODEC.encode(shared))
    assert type(event).model_validate(record) == shared

    # and exactly the non-empty fields of categories not granted are withheld, and emptied
    expected = tuple(
        name
        for name, category in categories.items()
        if category not in granted and getattr(event, name) not in (None, (), _emptied(event, name))
    )
    assert withheld == expected
    assert withheld == withheld_fields(event, granted)
    for name in type(event).model_fields:
        if name in withheld:
            assert getattr(shared, name) == _emptied(event, name)
        else:
            # every CaseCore field, and every granted or already empty field, is unchanged
            assert getattr(shared, name) == getattr(event, name)


@settings(max_examples=100, deadline=None)
@given(events())
def test_nothing_is_withheld_when_every_category_is_granted(event: Event) -> None:
    shared, withheld = minimise(event, DataCategory)

    assert withheld == ()
    assert shared is event


@settings(max_examples=100, deadline=None)
@given(events())
def test_case_core_alone_withholds_every_categorised_field_that_has_data(event: Event) -> None:
    shared, withheld = minimise(event, {DataCategory.CaseCore})

    categories = FIELD_CATEGORIES.get(type(event).__name__, {})
    assert set(withheld) == {
        name for name in categories if getattr(event, name) not in (None, (), _emptied(event, name))
    }
    for name in categories:
        assert getattr(shared, name) == _emptied(event, name)


def test_minimising_is_idempotent_on_an_example() -> None:
    event = _identified(age_band="Adult25To34", needs=["Shelter"])
    granted = {DataCategory.CaseCore, DataCategory.Legal}

    once, withheld = minimise(event, granted)
    twice, again = minimise(once, granted)

    assert withheld == ("needs", "personal")
    assert again == ()
    assert twice == once


# -- children ----------------------------------------------------------------------------------------------


def _identified(**fields: Any) -> Event:
    record: dict[str, Any] = {
        "envelope": {
            "event_id": "0b6f6d1c-2a59-4a0e-9d0c-6f8a3b8f1e21",
            "event_type": "VictimIdentified",
            "schema_version": 1,
            "case_id": "TH-2026-000777",
            "occurred_at": NOW - timedelta(days=1),
            "recorded_at": NOW - timedelta(hours=20),
            "source_country": "TH",
            "source_agency": "TH-DSDW",
            "destination_country": "MM",
        },
        "status": "PossibleVictimOfTrafficking",
        "identified_on": date(2026, 11, 22),
        "identifying_agency_type": "ChildProtection",
        "exploitation_types": ["ForcedLabour"],
        "sex": "Female",
        "age_band": "Child12To14",
        "nationality": "MM",
        "languages": ["my"],
        "needs": ["Shelter", "ChildProtection"],
        "consent_scope": ["CaseCore"],
        "personal": {"given_names": "Hnin"},
        **fields,
    }
    return parse_event(record, now=NOW)


def test_minimising_a_childs_needs_keeps_the_event_valid() -> None:
    # given a child identified in Thailand, whose needs include child protection
    event = _identified()
    assert isinstance(event, VictimIdentified)
    assert Need.ChildProtection in event.needs

    # when it is minimised to the case core (consent or agreement without AssistanceNeeds)
    shared, _ = minimise(event, {DataCategory.CaseCore})

    # then the shared event is still valid under the contract
    check_event(shared, now=NOW)


# -- the same on a decoded record ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(events(), granted_categories)
def test_a_minimised_record_is_written_as_the_minimised_event(
    event: Event, granted: frozenset[DataCategory]
) -> None:
    # given any valid event as the codec decodes it, and any grant
    kind = type(event).__name__
    _, record = CODEC.decode_record(CODEC.encode(event))

    # when the record and the event are minimised alike
    shared_record, withheld = minimise_record(kind, record, granted)
    shared, expected = minimise(event, granted)

    # then the same fields are withheld, the bytes written are the same, and the record is untouched
    assert withheld == expected
    assert CODEC.encode_record(kind, shared_record) == CODEC.encode(shared)
    assert (shared_record is record) == (withheld == ())
    assert CODEC.decode_record(CODEC.encode(event))[1] == record


def test_a_minimised_childs_record_keeps_child_protection() -> None:
    event = _identified()
    _, record = CODEC.decode_record(CODEC.encode(event))

    shared, withheld = minimise_record("VictimIdentified", record, {DataCategory.CaseCore})

    assert withheld == ("needs", "personal")
    assert shared["needs"] == ["ChildProtection"]
    assert shared["personal"] is None
    assert record["needs"] == ["Shelter", "ChildProtection"]
