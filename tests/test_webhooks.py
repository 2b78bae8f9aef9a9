"""Signed webhooks, the pure parts: signatures, message ids, payloads, backoff, the receiver address
guard, subscriptions from the directory; the outbox and the dispatcher over a fake network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from connectors.webhooks.backoff import CAPS, GIVE_UP_AFTER, after_attempt, cap, next_attempt
from connectors.webhooks.dispatcher import Dispatcher
from connectors.webhooks.outbox import Outbox, OutboxRow
from connectors.webhooks.payloads import alert_message, inbox_message
from connectors.webhooks.signing import new_secret, signature, signed_headers, webhook_id
from connectors.webhooks.ssrf import (
    AddressClass,
    IPAddress,
    ReceiverPolicy,
    UnsafeReceiver,
    address_class,
    check_receiver,
)
from connectors.webhooks.subscriptions import Subscription, resolve_secret, subscriptions
from connectors.webhooks.worker import feeds_for, outbox_rows
from hub.agreements import Directory
from hub.contract import Alert, AlertLevel, ContractModel, CountryCode, ObligationKind
from hub.errors import ConfigError
from hub.events import parse_event
from tests.test_codec import fisherman

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def an_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "alert_id": "TH-2026-000123/answer/2026-12-05/overdue",
        "obligation_id": "TH-2026-000123/answer",
        "kind": ObligationKind.AnswerReferral,
        "level": AlertLevel.Overdue,
        "case_id": "TH-2026-000123",
        "due": datetime(2026, 12, 5, tzinfo=UTC),
        "owner": CountryCode.MM,
        "waiting": CountryCode.TH,
        "detail": "Aung, fisherman, waits in the Songkhla shelter",
        "raised_at": NOW,
    }
    return Alert(**{**fields, **changes})


def directory(channels: list[dict[str, Any]]) -> Directory:
    return Directory.model_validate(
        {
            "countries": [
                {
                    "country": "TH",
                    "languages": ["th"],
                    "focal_points": [
                        {
                            "agency_id": "TH-DSDW",
                            "name": "Social development",
                            "agency_type": "SocialWelfare",
                            "languages": ["th"],
                            "alert_channels": channels,
                        }
                    ],
                }
            ]
        }
    )


# -- signatures -----------------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    timestamp = datetime.fromtimestamp(1614265330, UTC)

    signed = signature(SPEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp, b'{"test": 2432232314}')

    assert signed == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_is_hmac_sha256_of_id_timestamp_and_body() -> None:
    secret = new_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    body = b'{"type":"alert.raised"}'

    headers = signed_headers(secret, "msg_1", NOW, body)

    expected = hmac.new(key, f"msg_1.{int(NOW.timestamp())}.".encode() + body, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    assert headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert len(key) == 32


def test_receivers_verify_the_headers_with_the_standard_library() -> None:
    secret = new_secret()
    body = alert_message(an_alert()).body
    headers = signed_headers(secret, "msg_1", datetime.now(UTC), body)

    assert Webhook(secret).verify(body, headers)["type"] == "alert.raised"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"Overdue", b"DueSoon"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_every_secret_is_new() -> None:
    assert new_secret() != new_secret()


@given(subscription=st.text(min_size=1), message=st.text(min_size=1), other=st.text(min_size=1))
def test_webhook_ids_are_stable_per_message_and_subscription(
    subscription: str, message: str, other: str
) -> None:
    first = webhook_id(subscription, message)

    assert first == webhook_id(subscription, message)
    assert first.startswith("msg_")
    if other != message:
        assert webhook_id(subscription, other) != first
    if other != subscription:
        assert webhook_id(other, message) != first


# -- payloads -------------------------------------------------------------------------------------


def _personal_field_names() -> set[str]:
    from hub import contract

    names: set[str] = set()
    for model_name in ("PersonalDetails", "IdentityDocument", "Contact"):
        model: type[ContractModel] = getattr(contract, model_name)
        names |= set(model.model_fields)
    return names - {"kind"}  # a contact's channel; an alert's kind is an obligation kind


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {key for value in node.values() for key in _keys(value)}
    if isinstance(node, list):
        return {key for value in node for key in _keys(value)}
    return set()


def test_an_alert_payload_carries_the_alerts_fields_and_nothing_personal() -> None:
    message = alert_message(an_alert())
    payload = json.loads(message.body)

    assert payload["type"] == "alert.raised"
    assert payload["timestamp"] == "2026-12-02T09:00:00Z"
    assert payload["data"] == {
        "alert_id": "TH-2026-000123/answer/2026-12-05/overdue",
        "obligation_id": "TH-2026-000123/answer",
        "kind": "AnswerReferral",
        "level": "Overdue",
        "case_id": "TH-2026-000123",
        "due": "2026-12-05T00:00:00Z",
        "owner": "MM",
        "waiting": "TH",
    }
    assert b"Aung" not in message.body  # the free-text detail stays in the hub
    assert not _keys(payload) & _personal_field_names()


def test_an_inbox_payload_carries_the_envelope_and_a_link_to_the_audited_case() -> None:
    event = parse_event(fisherman(), now=NOW)

    message = inbox_message(dict(event.envelope))
    payload = json.loads(message.body)

    assert payload["type"] == "inbox.delivered"
    assert payload["data"] == {
        "event_id": "6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11",
        "event_type": "VictimIdentified",
        "case_id": "TH-2026-000123",
        "source_country": "TH",
        "occurred_at": event.envelope.occurred_at.isoformat().replace("+00:00", "Z"),
        "link": "/v1/cases/TH-2026-000123",
    }
    assert message.message_id == "event:6f1c1f56-7b8e-4c1e-9a55-0d6c3e0b7a11"
    assert b"Aung" not in message.body
    assert not _keys(payload) & _personal_field_names()


def test_a_message_always_has_the_same_bytes() -> None:
    assert alert_message(an_alert()).body == alert_message(an_alert()).body


# -- backoff --------------------------------------------------------------------------------------


@given(attempt=st.integers(min_value=1, max_value=50), seed=st.integers())
def test_each_delay_is_between_zero_and_its_cap(attempt: int, seed: int) -> None:
    delay = next_attempt(attempt, random.Random(seed))

    assert timedelta(0) <= delay <= cap(attempt) <= timedelta(hours=14)


def test_caps_follow_the_standard_webhooks_schedule_and_never_shrink() -> None:
    assert [cap(n) for n in range(1, 9)] == [*CAPS, CAPS[-1]]
    assert list(CAPS) == sorted(CAPS)
    assert cap(1) == timedelta(seconds=5)
    with pytest.raises(ValueError, match="attempt"):
        cap(0)


@given(seed=st.integers())
def test_a_failing_message_is_tried_for_at_least_24_hours(seed: int) -> None:
    rng = random.Random(seed)
    first = now = NOW
    attempt = 0
    while True:
        attempt += 1
        verdict = after_attempt(500, round_attempt=attempt, first_attempt_at=first, now=now, rng=rng)
        if verdict.state == "failed":
            break
        assert verdict.state == "pending"
        assert verdict.next_attempt_at is not None
        assert now <= verdict.next_attempt_at <= now + cap(attempt)
        now = verdict.next_attempt_at

    assert GIVE_UP_AFTER <= now - first < GIVE_UP_AFTER + CAPS[-1]


def test_a_2xx_delivers_a_410_disables_anything_else_is_tried_again() -> None:
    rng = random.Random(1)

    def state(status: int | None) -> str:
        return after_attempt(status, round_attempt=1, first_attempt_at=NOW, now=NOW, rng=rng).state

    assert [state(code) for code in (200, 204, 299)] == ["delivered"] * 3
    assert state(410) == "disabled"
    assert [state(code) for code in (None, 199, 301, 302, 400, 404, 429, 500, 503)] == ["pending"] * 9


# -- the receiver address guard ------------------------------------------------------------------

REFUSED = [
    ("127.0.0.1", AddressClass.loopback),
    ("127.8.9.10", AddressClass.loopback),
    ("::1", AddressClass.loopback),
    ("10.1.2.3", AddressClass.private),
    ("172.16.0.1", AddressClass.private),
    ("172.31.255.254", AddressClass.private),
    ("192.168.1.1", AddressClass.private),
    ("169.254.169.254", AddressClass.link_local),
    ("fe80::1", AddressClass.link_local),
    ("100.64.0.1", AddressClass.cgnat),
    ("100.127.255.254", AddressClass.cgnat),
    ("224.0.0.1", AddressClass.multicast),
    ("ff02::1", AddressClass.multicast),
    ("0.0.0.0", AddressClass.unspecified),
    ("::", AddressClass.unspecified),
    ("fc00::1", AddressClass.unique_local),
    ("fd12:3456:789a::1", AddressClass.unique_local),
    ("::ffff:127.0.0.1", AddressClass.loopback),
    ("::ffff:10.0.0.1", AddressClass.private),
    ("64:ff9b::a9fe:a9fe", AddressClass.link_local),
    ("240.0.0.1", AddressClass.reserved),
]
PUBLIC = ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111"]


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize(("address", "expected"), REFUSED)
def test_non_public_addresses_are_refused(address: str, expected: AddressClass) -> None:
    assert address_class(ip(address)) == expected
    with pytest.raises(UnsafeReceiver, match=f"a {expected.value} address"):
        check_receiver("https://nrm.th.example/hook", [ip(address)], ReceiverPolicy())


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    target = check_receiver("https://nrm.th.example:8443/hook", [ip(address)], ReceiverPolicy())

    assert (target.host, target.port) == ("nrm.th.example", 8443)


def test_one_non_public_address_among_the_answers_refuses_the_receiver() -> None:
    with pytest.raises(UnsafeReceiver, match=r"10\.0\.0\.7"):
        check_receiver("https://nrm.th.example/", [ip("8.8.8.8"), ip("10.0.0.7")], ReceiverPolicy())


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://nrm.th.example/hook", "http is not allowed"),
        ("ftp://nrm.th.example/hook", "ftp is not https"),
        ("https://user:pw@nrm.th.example/hook", "credentials"),
        ("https:///hook", "url.host: missing"),
    ],
)
def test_only_https_urls_without_credentials(url: str, reason: str) -> None:
    with pytest.raises(UnsafeReceiver, match=reason):
        check_receiver(url, [ip("8.8.8.8")], ReceiverPolicy())


def test_a_deployment_may_allow_http_and_private_receivers_but_never_multicast() -> None:
    policy = ReceiverPolicy(allow_private=True, allow_http=True)

    for address, kind in REFUSED:
        if kind in (AddressClass.multicast, AddressClass.unspecified, AddressClass.reserved):
            with pytest.raises(UnsafeReceiver):
                check_receiver("http://127.0.0.1:8080/hook", [ip(address)], policy)
        else:
            check_receiver("http://127.0.0.1:8080/hook", [ip(address)], policy)


def test_a_name_without_addresses_is_refused() -> None:
    with pytest.raises(UnsafeReceiver, match="no address"):
        check_receiver("https://nrm.th.example/", [], ReceiverPolicy())


# -- subscriptions --------------------------------------------------------------------------------


def test_subscriptions_come_from_webhook_channels_with_stable_ids() -> None:
    found = subscriptions(
        directory(
            [
                {"kind": "kafka", "target": "lintas.alerts.th"},
                {"kind": "webhook", "target": "https://a.th.example/", "secret": "env:A"},
                {
                    "kind": "webhook",
                    "target": "https://b.th.example/",
                    "secret": "file:/run/secrets/b",
                    "feeds": ["inbox"],
                    "id": "th-inbox",
                },
            ]
        )
    )

    assert [(s.id, s.country, s.feeds) for s in found] == [
        ("TH-DSDW:1", "TH", frozenset({"alerts", "inbox"})),
        ("th-inbox", "TH", frozenset({"inbox"})),
    ]
    assert [feed.topic for feed in feeds_for(found)] == ["lintas.alerts.th", "lintas.focal.th.inbox"]


def test_a_webhook_needs_a_secret_reference_not_a_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        directory([{"kind": "webhook", "target": "https://a.th.example/"}])
    with pytest.raises(ValueError, match="secret"):
        directory([{"kind": "webhook", "target": "https://a.th.example/", "secret": new_secret()}])
    with pytest.raises(ValueError, match="feeds"):
        directory([{"kind": "webhook", "target": "https://a.th.example/", "secret": "env:A", "feeds": ["x"]}])


def test_two_webhooks_with_one_id_are_refused() -> None:
    channel = {"kind": "webhook", "target": "https://a.th.example/", "secret": "env:A", "id": "same"}

    with pytest.raises(ConfigError, match="same"):
        subscriptions(directory([channel, channel]))


def test_secrets_are_read_from_the_environment_or_a_file(tmp_path: Path) -> None:
    secret = new_secret()
    (tmp_path / "secret").write_text(secret + "\n")

    assert resolve_secret("env:HOOK", environ={"HOOK": secret}) == secret
    assert resolve_secret(f"file:{tmp_path / 'secret'}") == secret
    with pytest.raises(ConfigError, match="HOOK is not set"):
        resolve_secret("env:HOOK", environ={})
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_secret(f"file:{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match="not a whsec_ secret"):
        resolve_secret("env:HOOK", environ={"HOOK": "hunter2"})


# -- the outbox -----------------------------------------------------------------------------------

SUBSCRIPTION = Subscription(
    "TH-DSDW:1", "TH", "TH-DSDW", "https://nrm.th.example/hook", frozenset({"alerts"}), "env:A"
)


def test_a_record_read_twice_is_one_outbox_row_and_offsets_move_with_it(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "webhooks.sqlite")
    rows = outbox_rows(alert_message(an_alert()), [SUBSCRIPTION])

    assert outbox.enqueue(rows, {("lintas.alerts.th", 0): 8}, NOW) == 1
    assert outbox.enqueue(rows, {("lintas.alerts.th", 0): 9}, NOW) == 0

    assert [row.webhook_id for row in outbox.rows()] == [rows[0].webhook_id]
    assert outbox.offsets() == {("lintas.alerts.th", 0): 9}
    outbox.start_at({("lintas.alerts.th", 0): 0, ("lintas.alerts.th", 1): 4})
    assert outbox.offsets() == {("lintas.alerts.th", 0): 9, ("lintas.alerts.th", 1): 4}


# -- the dispatcher over a fake network ------------------------------------------------------------


def _dispatch(
    tmp_path: Path,
    handler: Any,
    answers: list[str],
    *,
    clock: Clock,
) -> tuple[Outbox, str]:
    outbox = Outbox(tmp_path / "webhooks.sqlite")
    row = OutboxRow("msg_x", SUBSCRIPTION.id, "alert:x", "alert.raised", alert_message(an_alert()).body)
    outbox.enqueue([row], {}, clock())
    secret = new_secret()

    async def resolver(host: str, port: int) -> list[IPAddress]:
        return [ip(answers.pop(0))]

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=False) as http:
            dispatcher = Dispatcher(
                outbox,
                [SUBSCRIPTION],
                {SUBSCRIPTION.id: secret},
                http=http,
                clock=clock,
                rng=random.Random(0),
                policy=ReceiverPolicy(),
                resolver=resolver,
            )
            await dispatcher.dispatch_due()

    asyncio.run(main())
    return outbox, secret


def test_the_request_goes_to_the_address_checked_with_the_names_host_and_sni(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    outbox, secret = _dispatch(tmp_path, handler, ["93.184.215.14"], clock=Clock(datetime.now(UTC)))

    (request,) = seen
    assert request.url.host == "93.184.215.14"
    assert request.headers["host"] == "nrm.th.example"
    assert request.extensions["sni_hostname"] == "nrm.th.example"
    assert Webhook(secret).verify(request.content, dict(request.headers))["type"] == "alert.raised"
    assert [row.state for row in outbox.rows()] == ["delivered"]


def test_a_name_that_now_resolves_to_a_private_address_is_not_contacted(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    clock = Clock(NOW)
    outbox, _ = _dispatch(tmp_path, handler, ["169.254.169.254"], clock=clock)

    assert seen == []
    (attempt,) = outbox.recent()
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "link-local" in attempt.error
    (row,) = outbox.rows()
    assert row.state == "pending"
    assert NOW < row.next_attempt_at <= NOW + cap(1)


def test_a_redirect_is_a_failed_attempt_and_a_410_disables_the_subscription(tmp_path: Path) -> None:
    def redirect(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://elsewhere.example/"})

    outbox, _ = _dispatch(tmp_path / "a", redirect, ["93.184.215.14"], clock=Clock(NOW))
    (attempt,) = outbox.recent()
    assert (attempt.status_code, attempt.error) == (302, "redirect not followed")
    assert [row.state for row in outbox.rows()] == ["pending"]

    def gone(request: httpx.Request) -> httpx.Response:
        return httpx.Response(410)

    outbox, _ = _dispatch(tmp_path / "b", gone, ["93.184.215.14"], clock=Clock(NOW))
    assert [row.state for row in outbox.rows()] == ["disabled"]
    assert SUBSCRIPTION.id in outbox.disabled()
    assert outbox.enable(SUBSCRIPTION.id, NOW) == 1
    assert [row.state for row in outbox.rows()] == ["pending"]
