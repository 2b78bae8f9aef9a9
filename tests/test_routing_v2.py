"""Routing contract v2 events: signatures, sections withheld without decoding, data keys granted and
destroyed, v1 events converted for the countries the hub may sign for. Pure (no Kafka)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from hub.contract import DataCategory, ReceiptStatus, VictimIdentified
from hub.crypto.keystore import KeyNotGranted, KeysDestroyed
from hub.crypto.signing import Signer
from hub.routing import Reason
from hub.topics import ACCEPTED_EVENTS
from hub.wire import format as wire_format
from hub.wire.codec import HUB_SIGNER, Wire
from hub.wire.records import verify_signed
from tests.strategies import NOW
from tests.test_routing import (
    CODEC,
    SIGNERS,
    Case,
    Hub,
    assert_rejected,
    assert_routed,
    inbox,
    logged,
    receipts,
)

PERSONAL_VALUES = (b"Aung", b"Win", b"CI-0042", b"+95 9 4000 0000", b"Hpa-an")


@pytest.fixture
def hub() -> Hub:
    return Hub.v2()


def _case(tag: str) -> Case:
    return Case(f"TH-2026-V2{tag}", "TH", "MM")


def _rewrite(wire: Wire, data: bytes, **changes: Any) -> bytes:
    parsed = wire.parse(data)
    return wire_format.write(replace(parsed, **changes), wire.event_fingerprint)


# -- signatures ------------------------------------------------------------------------------------


def test_a_section_changed_on_the_way_is_rejected_as_a_bad_signature(hub: Hub) -> None:
    data = hub.national.encode(_case("A1").identified())
    parsed = hub.wire.parse(data)
    needs = parsed.section(DataCategory.AssistanceNeeds.value)
    assert needs is not None
    assert needs.body is not None
    forged_body = needs.body[:-1] + bytes([needs.body[-1] ^ 1])
    forged = _rewrite(
        hub.wire,
        data,
        sections=tuple(replace(s, body=forged_body) if s is needs else s for s in parsed.sections),
    )

    decision = hub.submit_bytes(forged, "TH")

    receipt = assert_rejected(decision, Reason.BAD_SIGNATURE, hub.sent[-1])
    assert "AssistanceNeeds" in receipt.message


def test_a_changed_envelope_is_rejected_as_a_bad_signature(hub: Hub) -> None:
    case = _case("A2")
    honest = hub.wire.parse(hub.national.encode(case.identified()))
    other = hub.wire.parse(hub.national.encode(case.identified(envelope={"destination_country": "LA"})))
    # the header of one event under the signature of another
    forged = wire_format.write(replace(honest, header=other.header), hub.wire.event_fingerprint)

    decision = hub.submit_bytes(forged, "TH")

    assert_rejected(decision, Reason.BAD_SIGNATURE, hub.sent[-1])


def test_an_event_signed_with_a_key_the_directory_lacks_is_an_unknown_key(hub: Hub) -> None:
    stranger = Signer.generate("TH", "th-stolen-1")
    data = hub.wire.seal(_case("A3").identified(), stranger, keys=hub.keys)

    decision = hub.submit_bytes(data, "TH")

    receipt = assert_rejected(decision, Reason.UNKNOWN_KEY, hub.sent[-1])
    assert "th-stolen-1" in receipt.message


def test_a_country_cannot_sign_for_another(hub: Hub) -> None:
    data = hub.wire.seal(_case("A4").identified(), SIGNERS["MM"], keys=hub.keys)
    assert_rejected(hub.submit_bytes(data, "TH"), Reason.UNKNOWN_KEY, hub.sent[-1])


def test_receipts_are_signed_by_the_hub(hub: Hub) -> None:
    decision = hub.submit(_case("A5").identified())
    [receipt] = receipts(decision)
    assert verify_signed(receipt.value, receipt.headers, hub.wire.directory, at=NOW) == HUB_SIGNER  # type: ignore[arg-type]
    with pytest.raises(Exception, match="signature"):
        verify_signed(receipt.value + b"x", receipt.headers, hub.wire.directory, at=NOW)  # type: ignore[arg-type]


# -- sections ---------------------------------------------------------------------------------------


def test_the_router_decides_without_decoding_a_section(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("a section was decoded")

    monkeypatch.setattr(Wire, "_decode_section", refuse)
    case = _case("B1")
    event = case.identified(consent_scope=["CaseCore", "AssistanceNeeds"])

    decision = hub.submit(event)

    assert_routed(
        decision, event, hub.sent[-1], withheld=("methods_of_control", "recruitment_methods", "personal")
    )


def test_the_partner_verifies_the_origin_of_a_copy_the_hub_thinned(hub: Hub) -> None:
    case = _case("B2")
    event = case.identified(consent_scope=["CaseCore"])

    decision = hub.submit(event)

    [delivered] = inbox(decision)
    opened = hub.wire.open(delivered.value, reader="MM")  # verifies the signature, or raises
    assert opened.signer == "TH"
    assert set(opened.withheld) == {"AssistanceNeeds", "Legal", "PersonalIdentity"}
    assert isinstance(opened.event, VictimIdentified)
    assert opened.event.personal is None
    assert opened.event.needs == ()
    # and the hub's log keeps every section, sealed
    [log_entry] = logged(decision)
    assert log_entry.value == hub.sent[-1].value
    for value in PERSONAL_VALUES:
        assert value not in log_entry.value
        assert value not in delivered.value


# -- data keys ------------------------------------------------------------------------------------


def test_the_partner_gets_the_key_only_when_agreement_and_consent_grant_identity(hub: Hub) -> None:
    granted, refused = _case("C1"), _case("C2")
    hub.submit(granted.identified())
    hub.submit(refused.identified(consent_scope=["CaseCore", "AssistanceNeeds"]))

    assert "MM" in hub.keys.readers(granted.case_id)
    assert hub.keys.unwrap(granted.case_id, "MM").key == hub.keys.unwrap(granted.case_id, "TH").key
    assert "MM" not in hub.keys.readers(refused.case_id)
    with pytest.raises(KeyNotGranted):
        hub.keys.unwrap(refused.case_id, "MM")


def test_a_withdrawal_of_consent_destroys_the_keys_and_refuses_new_personal_data(hub: Hub) -> None:
    # given a case whose identity the partner received, and an unrelated case
    case, other = _case("D1"), _case("D2")
    first = case.identified()
    [delivered] = inbox(hub.submit(first))
    hub.submit(other.identified())
    assert hub.wire.open(delivered.value, reader="MM").event == first

    # when the person withdraws consent to share their identity
    decision = hub.submit(case.consent_changed(["CaseCore", "AssistanceNeeds"]))

    # then the case's keys are gone: every copy reads as erased, for every country
    assert decision.status == ReceiptStatus.Accepted, decision.message
    for country in ("TH", "MM"):
        with pytest.raises(KeysDestroyed):
            hub.keys.unwrap(case.case_id, country)
        opened = hub.wire.open(delivered.value, reader=country)
        assert opened.erased == ("PersonalIdentity",)
        assert isinstance(opened.event, VictimIdentified)
        assert opened.event.personal is None
        assert opened.event.needs == first.needs  # nothing else of the case changes
    assert hub.states[case.case_id].shredded
    # and new personal data for the case cannot be sealed by the national system
    with pytest.raises(KeysDestroyed):
        hub.national.encode(case.requested())
    # nor accepted by the hub, should it come sealed under an earlier copy of the key
    # and the other case is untouched
    assert hub.keys.unwrap(other.case_id, "MM")
    # the case goes on without personal data
    without = case.requested(personal=None)
    assert hub.submit(without).status == ReceiptStatus.Accepted


def test_personal_data_for_a_shredded_case_is_refused_with_the_reason(hub: Hub) -> None:
    case = _case("D3")
    hub.submit(case.identified())
    early = hub.national.encode(case.requested())  # sealed before the withdrawal
    hub.submit(case.consent_changed(["CaseCore"]))

    decision = hub.submit_bytes(early, "TH")

    receipt = assert_rejected(decision, Reason.PERSONAL_DATA_ERASED, hub.sent[-1])
    assert case.case_id in receipt.message


# -- v1 events ---------------------------------------------------------------------------------------


def test_a_v1_event_from_a_country_the_hub_may_not_sign_for_is_refused(hub: Hub) -> None:
    decision = hub.submit_bytes(CODEC.encode(_case("E1").identified()), "TH")
    receipt = assert_rejected(decision, Reason.UNSIGNED, hub.sent[-1])
    assert "v1" in receipt.message


def test_a_v1_event_is_converted_sealed_and_signed_for_a_country_the_hub_may_sign_for() -> None:
    hub = Hub.v2(hub_signs_for=frozenset({"TH"}))
    event = _case("E2").identified()

    decision = hub.submit_bytes(CODEC.encode(event), "TH")

    assert decision.status == ReceiptStatus.Accepted, decision.message
    [delivered] = inbox(decision)
    [log_entry] = [out for out in decision.outputs if out.topic == ACCEPTED_EVENTS]
    for value in PERSONAL_VALUES:
        assert value not in delivered.value
        assert value not in log_entry.value
    opened = hub.wire.open(delivered.value, reader="MM", may_sign=lambda signer, source: signer == HUB_SIGNER)
    assert opened.signer == HUB_SIGNER
    assert opened.event == event
    # a resubmission of the same v1 bytes is a duplicate, not a conflict
    assert hub.submit_bytes(CODEC.encode(event), "TH").status == ReceiptStatus.Duplicate
