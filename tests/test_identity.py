"""Event-id ownership (hub/identity.py): ids and case ids read straight from the bytes agree with a
full decode, garbage never raises, and the first claim of an id wins."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from hub.codec import HEADER_SIZE, Codec
from hub.events import Event
from hub.identity import Identities, IdIndex, case_digest
from tests.strategies import NOW, events

CODEC = Codec(clock=lambda: NOW)
IDENTITIES = Identities(CODEC)


@given(events())
def test_the_bytes_tell_the_same_ids_as_a_full_decode(event: Event) -> None:
    assert IDENTITIES.of(CODEC.encode(event)) == (str(event.envelope.event_id), event.envelope.case_id)


@given(events(), st.integers(min_value=0), st.binary(min_size=1, max_size=8))
def test_damaged_bytes_never_raise_and_never_invent_an_id(event: Event, at: int, junk: bytes) -> None:
    data = bytearray(CODEC.encode(event))
    position = HEADER_SIZE + at % (len(data) - HEADER_SIZE)
    data[position : position + len(junk)] = junk
    found = IDENTITIES.of(bytes(data))
    if found is not None:
        uuid.UUID(found[0])  # whatever it reads is a well-formed id


@given(st.binary(max_size=64))
def test_garbage_is_no_identity(data: bytes) -> None:
    assert IDENTITIES.of(data) is None or data[:2] == b"\xc3\x01"


def test_the_first_claim_of_an_id_wins() -> None:
    index = IdIndex()
    event_id = str(uuid.uuid4())
    assert index.owner(event_id) is None
    assert index.add(event_id, "TH-2026-000001") is True
    assert index.add(event_id, "TH-2026-000002") is False
    assert index.add(event_id, "TH-2026-000001") is False
    assert index.owner(event_id) == case_digest("TH-2026-000001")
    assert index.add("not-a-uuid", "TH-2026-000003") is False
    assert len(index) == 1


@given(st.lists(st.tuples(st.uuids(), st.sampled_from(["A", "B", "C"])), max_size=30))
def test_owners_are_the_first_claims_in_log_order(claims: list[tuple[uuid.UUID, str]]) -> None:
    index = IdIndex()
    first: dict[str, str] = {}
    for event_id, case_id in claims:
        index.add(str(event_id), case_id)
        first.setdefault(str(event_id), case_id)
    assert {i: index.owner(i) for i in first} == {i: case_digest(c) for i, c in first.items()}
