"""The ACL layout on a broker secured as ``lintas broker start`` secures it (SASL_SSL, SCRAM-SHA-512,
the StandardAuthorizer refusing what no ACL allows): every refusal with the error each client really
raises, every principal doing exactly its job, and the router and the alert worker routing a referral
under their own principals."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from confluent_kafka import Consumer, KafkaError, Producer
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

from connectors.api.app import Outgoing
from connectors.api.server import KafkaPublisher
from connectors.readstore.projector import projected_topics
from connectors.webhooks import DELIVERIES
from hub.agreements import load_agreements
from hub.broker.local import LocalBroker
from hub.codec import Codec
from hub.kafka import ensure_topics, producer, publish_events, read_all, topic_partitions
from hub.routing import Router
from hub.security import admin
from hub.security import cli as acl_cli
from hub.security.principals import (
    OPERATOR,
    Binding,
    Operation,
    PatternType,
    ResourceType,
    layout,
    principals,
)
from hub.topics import AUDIT, alerts, all_topics, focal_inbox, nrm_events, nrm_receipts
from hub.worker import RouterWorker
from projections.alerts.worker import AlertWorker
from projections.stats.kafka import publish_document, read_publications
from tests.conftest import SECURE_COUNTRIES, new_topic_name
from tests.test_alerts_kafka import Clock, case_events

pytestmark = pytest.mark.kafka
STEP = 30.0
#: The layout is applied for every country the secured broker was formatted with (others' tests share
#: it); the refusals are between Thailand and Myanmar.
COUNTRIES = SECURE_COUNTRIES


@dataclass(frozen=True)
class Hub:
    broker: LocalBroker
    bootstrap: str

    def options(self, user: str, **changes: Any) -> dict[str, Any]:
        """aiokafka connection options of ``user``, with ``changes``."""
        return {**self.broker.client_options(user), **changes}

    def rdkafka(self, user: str, **changes: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.broker.rdkafka_config(user), **changes}

    def admin(self) -> Any:
        return admin.connect(self.rdkafka(OPERATOR))


@pytest.fixture(scope="module")
def hub(secure_kafka: LocalBroker) -> Hub:
    bootstrap = secure_kafka.start()  # running already: its address
    found = Hub(secure_kafka, bootstrap)
    admin.apply(found.admin(), COUNTRIES)
    asyncio.run(
        ensure_topics(bootstrap, all_topics(COUNTRIES), partitions=3, options=found.options(OPERATOR))
    )
    return found


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 2 * STEP))


@asynccontextmanager
async def started(client: AIOKafkaProducer | AIOKafkaConsumer) -> AsyncIterator[Any]:
    try:
        await asyncio.wait_for(client.start(), STEP)
        yield client
    finally:
        await client.stop()


async def publish(hub: Hub, user: str, topic: str, *, idempotent: bool = True, **changes: Any) -> None:
    client = AIOKafkaProducer(
        bootstrap_servers=hub.bootstrap,
        enable_idempotence=idempotent,
        acks="all",
        request_timeout_ms=10_000,
        **hub.options(user, **changes),
    )
    async with started(client) as kafka_producer:
        await asyncio.wait_for(kafka_producer.send_and_wait(topic, b"probe", key=b"probe"), STEP)


async def consume(hub: Hub, user: str, topic: str, group: str | None = None, **changes: Any) -> int:
    """Records read from ``topic`` in ``group`` (subscribed), or assigned without a group."""
    consumer = AIOKafkaConsumer(
        *([topic] if group else []),
        bootstrap_servers=hub.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
        **hub.options(user, **changes),
    )
    async with started(consumer):
        if group is None:
            consumer.assign([TopicPartition(topic, 0)])
        batch = await consumer.getmany(timeout_ms=500)
        if group is not None:
            await consumer.commit()
        return sum(len(records) for records in batch.values())


def first_rdkafka_error(config: dict[str, Any], within: float = 10.0) -> KafkaError:
    errors: list[KafkaError] = []
    client = Producer({**config, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + within
    while not errors and time.monotonic() < deadline:
        client.poll(0.1)
    assert errors, "librdkafka reported no error"
    return errors[0]


def subscription_error(config: dict[str, Any], topic: str) -> KafkaError:
    client = Consumer({**config, "enable.auto.commit": False})
    try:
        client.subscribe([topic])
        deadline = time.monotonic() + STEP
        while time.monotonic() < deadline:
            message = client.poll(0.2)
            if message is not None and message.error() is not None:
                return cast(KafkaError, message.error())
    finally:
        client.close()
    raise AssertionError(f"subscribing to {topic} raised no error")


async def visible_topics(hub: Hub, user: str) -> set[str]:
    """The topics the cluster's metadata shows ``user``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=hub.bootstrap, **hub.options(user))
    async with started(consumer):
        return cast(set[str], await consumer.topics())


def delivery_error(config: dict[str, Any], topic: str) -> KafkaError | None:
    reports: list[KafkaError | None] = []
    client = Producer(config)
    client.produce(topic, b"probe", key=b"probe", on_delivery=lambda error, _message: reports.append(error))
    client.flush(STEP)
    assert reports, "no delivery report"
    return reports[0]


# -- authentication ------------------------------------------------------------------------------------


def test_a_wrong_password_an_unknown_user_and_a_plaintext_client_are_refused(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    wrong: list[dict[str, Any]] = [
        {"sasl_plain_password": "not-the-password"},
        {"sasl_plain_username": "nobody"},
    ]
    for changes in wrong:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            run(publish(hub, "nrm-th", nrm_events("TH"), **changes))
        assert "[Error 58] SaslAuthenticationFailed" in caplog.text
        assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in caplog.text
        caplog.clear()
    for config in (
        hub.rdkafka("nrm-th", **{"sasl.password": "wrong"}),
        hub.rdkafka("nrm-th", **{"sasl.username": "nobody"}),
    ):
        error = first_rdkafka_error(config)
        assert error.code() == KafkaError._AUTHENTICATION
        assert "invalid credentials" in error.str()

    plaintext = {"security_protocol": "PLAINTEXT"}
    plaintext_aio = {k: v for k, v in hub.options("nrm-th").items() if not k.startswith(("sasl", "ssl"))}
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        run(publish(hub, "nrm-th", nrm_events("TH"), **{**plaintext_aio, **plaintext}))
    error = first_rdkafka_error({"bootstrap.servers": hub.bootstrap, "security.protocol": "PLAINTEXT"})
    assert error.code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)


def test_a_client_that_does_not_trust_the_hubs_ca_does_not_connect(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    with pytest.raises(KafkaConnectionError):
        run(publish(hub, "nrm-th", nrm_events("TH"), ssl_context=ssl.create_default_context()))
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
    error = first_rdkafka_error(hub.rdkafka("nrm-th", **{"ssl.ca.location": "probe"}))  # the system's CAs
    assert error.code() == KafkaError._SSL


# -- authorization: refusals -----------------------------------------------------------------------------


def test_a_national_system_cannot_publish_for_another_country(hub: Hub) -> None:
    with pytest.raises(TopicAuthorizationFailedError, match=r"lintas\.nrm\.mm\.events"):
        run(publish(hub, "nrm-th", nrm_events("MM")))
    error = delivery_error(hub.rdkafka("nrm-th"), nrm_events("MM"))
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(TopicAuthorizationFailedError):  # nor read another's receipts
        run(consume(hub, "nrm-th", nrm_receipts("MM"), "lintas.nrm.th.receipts"))


def test_a_focal_point_cannot_read_another_countrys_inbox_or_alerts(hub: Hub) -> None:
    with pytest.raises(TopicAuthorizationFailedError, match=r"lintas\.focal\.mm\.inbox"):
        run(consume(hub, "fp-th", focal_inbox("MM"), f"lintas.fp.th.{uuid.uuid4().hex}"))
    with pytest.raises(TopicAuthorizationFailedError, match=r"lintas\.alerts\.mm"):
        run(consume(hub, "fp-th", alerts("MM"), f"lintas.fp.th.{uuid.uuid4().hex}"))
    error = subscription_error(hub.rdkafka("fp-th", **{"group.id": "lintas.fp.th.alerts"}), alerts("MM"))
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # Assigned partitions of a topic it may not see are no error to either client: nothing comes.
    assert not {focal_inbox("MM"), alerts("MM")} & run(visible_topics(hub, "fp-th"))


def test_a_focal_point_cannot_join_another_countrys_group_or_the_hubs(hub: Hub) -> None:
    for group in ("lintas.fp.mm.inbox", "lintas-router", "lintas.nrm.th.receipts"):
        with pytest.raises(GroupAuthorizationFailedError, match=group.replace(".", r"\.")):
            run(consume(hub, "fp-th", focal_inbox("TH"), group))


def test_a_focal_point_cannot_publish_anything(hub: Hub) -> None:
    # With no Write anywhere it gets no producer id (Write on a topic implies IdempotentWrite, KIP-679).
    with pytest.raises(ClusterAuthorizationFailedError):
        run(publish(hub, "fp-th", nrm_events("TH")))
    with pytest.raises(TopicAuthorizationFailedError):
        run(publish(hub, "fp-th", focal_inbox("TH"), idempotent=False))
    error = delivery_error(hub.rdkafka("fp-th"), alerts("TH"))
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_no_principal_touches_a_topic_without_an_acl(hub: Hub) -> None:
    unguarded = new_topic_name("lintas.unguarded")
    run(ensure_topics(hub.bootstrap, [unguarded], partitions=1, options=hub.options(OPERATOR)))
    everyone = [p.name for p in principals(COUNTRIES) if p.name != OPERATOR]

    async def refused(user: str) -> tuple[str, str, str]:
        try:
            await publish(hub, user, unguarded, idempotent=False)
        except TopicAuthorizationFailedError:
            written = "refused"
        else:
            written = "allowed"
        seen = "seen" if unguarded in await visible_topics(hub, user) else "hidden"
        return user, written, seen

    async def all_of_them() -> list[tuple[str, str, str]]:
        return list(await asyncio.gather(*(refused(user) for user in everyone)))

    assert run(all_of_them()) == [(user, "refused", "hidden") for user in everyone]
    with pytest.raises(TopicAuthorizationFailedError):  # nor read it in a group of its own
        run(consume(hub, "nrm-th", unguarded, "lintas.nrm.th.unguarded"))
    # The operator, a super user, may.
    run(publish(hub, OPERATOR, unguarded))
    assert unguarded in run(visible_topics(hub, OPERATOR))


def invoke(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str] | None = None
) -> tuple[Result, list[MutableMapping[str, Any]]]:
    """``lintas acl ARGS`` and what it logged. The command configures logging to its stderr, which the
    runner closes afterwards: the test captures the log entries instead."""
    monkeypatch.setattr(acl_cli, "configure_logging", lambda _format: None)
    with capture_logs() as logs:
        result = CliRunner().invoke(acl_cli.acl_app, args, env=env)
    return result, logs


def _as(name: str, password: str) -> dict[str, Any]:
    return {"sasl_plain_username": name, "sasl_plain_password": password}


async def authenticates(hub: Hub, name: str, password: str) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hub.bootstrap, **hub.options("fp-th", **_as(name, password))
    )
    try:
        await asyncio.wait_for(consumer.start(), STEP)
    except KafkaConnectionError:
        return False
    finally:
        await consumer.stop()
    return True


def until_authenticates(hub: Hub, name: str, password: str, expected: bool = True) -> None:
    """Wait until the broker has taken a changed credential in (the controller commits it, then each
    broker applies the metadata record)."""
    deadline = time.monotonic() + STEP
    while run(authenticates(hub, name, password)) is not expected:
        assert time.monotonic() < deadline, f"{name}: the credential change did not reach the broker"
        time.sleep(0.1)


def _throwaway(hub: Hub, acls_of: str) -> tuple[str, str]:
    """A principal of the test's own with the ACLs of ``acls_of``: (name, password)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    client = hub.admin()
    password = admin.create_user(client, name)
    admin.create_bindings(
        client,
        [
            Binding(name, b.resource_type, b.resource_name, b.pattern_type, b.operation)
            for b in layout(COUNTRIES)
            if b.principal == acls_of
        ],
    )
    until_authenticates(hub, name, password)
    return name, password


def test_a_rotated_passwords_old_value_is_refused_and_the_new_one_works(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    name, old = _throwaway(hub, "fp-th")
    new = admin.rotate(hub.admin(), name)
    assert new != old
    until_authenticates(hub, name, new)
    caplog.clear()
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        run(consume(hub, "fp-th", focal_inbox("TH"), **_as(name, old)))
    assert "[Error 58] SaslAuthenticationFailed" in caplog.text
    error = first_rdkafka_error(hub.rdkafka("fp-th", **{"sasl.username": name, "sasl.password": old}))
    assert error.code() == KafkaError._AUTHENTICATION
    assert run(consume(hub, "fp-th", focal_inbox("TH"), f"lintas.fp.th.{name}", **_as(name, new))) == 0
    admin.revoke(hub.admin(), name)


def test_rotate_on_the_embedded_broker_keeps_the_new_password_in_its_store(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, old = _throwaway(hub, "fp-th")
    monkeypatch.setenv("LINTAS_BROKER__HOME", str(hub.broker.home))
    monkeypatch.delenv("LINTAS_BOOTSTRAP_SERVERS", raising=False)
    result, logs = invoke(monkeypatch, ["rotate", name])
    assert result.exit_code == 0, result.output
    password = result.stdout.strip()  # the password alone on stdout, shown once
    assert password != old
    assert f"its password is kept in {hub.broker.secrets.file(name)}" in result.stderr
    assert hub.broker.secrets.get(name) == password
    assert [entry["event"] for entry in logs] == ["scram_credential_rotated"]
    assert password not in repr(logs)
    until_authenticates(hub, name, password)
    result, _ = invoke(monkeypatch, ["revoke", name])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"revoked {name}: credential deleted, 5 ACLs deleted"
    assert hub.broker.secrets.get(name) is None
    assert hub.broker.secrets.revoked(name)


async def fetch_until_refused(consumer: AIOKafkaConsumer, partition: TopicPartition) -> None:
    """Fetch ``partition`` again and again (from 0), for at most five seconds."""
    for _ in range(20):
        await consumer.getmany(timeout_ms=250)
        consumer.seek(partition, 0)


def test_a_revoked_principal_is_refused_and_its_open_connection_loses_access_at_once(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aiokafka")
    name, password = _throwaway(hub, "fp-th")

    async def scenario() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=hub.bootstrap, **hub.options("fp-th", **_as(name, password))
        )
        async with started(consumer):
            inbox = TopicPartition(focal_inbox("TH"), 0)
            consumer.assign([inbox])
            await consumer.getmany(timeout_ms=500)  # allowed
            revoked = admin.revoke(hub.admin(), name)
            assert revoked.credential
            assert {b.resource_name for b in revoked.bindings} == {
                focal_inbox("TH"),
                alerts("TH"),
                "lintas.fp.th.",
            }
            with pytest.raises(TopicAuthorizationFailedError):  # Kafka authorizes every request
                await fetch_until_refused(consumer, inbox)

    run(scenario())
    until_authenticates(hub, name, password, expected=False)
    caplog.clear()
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        run(consume(hub, "fp-th", focal_inbox("TH"), **_as(name, password)))
    assert "[Error 58] SaslAuthenticationFailed" in caplog.text
    client = hub.admin()
    assert name not in admin.describe_users(client)
    assert not [b for b in admin.current_bindings(client) if b.principal == name]
    assert admin.revoke(client, name) == admin.Revoked(name, False, ())  # twice is harmless


# -- each principal does exactly its job -----------------------------------------------------------------


async def read_in_group(
    hub: Hub, user: str, topics: Iterable[str], group: str, until: Callable[[list[Any]], bool]
) -> list[Any]:
    """Records of ``topics`` read as ``user`` in ``group`` (committing) until ``until`` says enough."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=hub.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        **hub.options(user),
    )
    records: list[Any] = []
    async with started(consumer):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STEP
        while not until(records):
            assert loop.time() < deadline, f"{user} read {len(records)} records of {topics}"
            batch = await consumer.getmany(timeout_ms=200)
            records.extend(record for part in batch.values() for record in part)
        await consumer.commit()
    return records


def test_each_country_does_its_job(hub: Hub) -> None:
    tag = uuid.uuid4().hex[:8]

    async def scenario() -> None:
        await publish(hub, "nrm-th", nrm_events("TH"))  # idempotent: Write implies IdempotentWrite
        await consume(hub, "nrm-th", nrm_receipts("TH"), f"lintas.nrm.th.receipts-{tag}")
        for topic in (focal_inbox("TH"), alerts("TH")):
            await consume(hub, "fp-th", topic, f"lintas.fp.th.{tag}")
        assert {nrm_events("TH"), nrm_receipts("TH")} == {
            t for t in await visible_topics(hub, "nrm-th") if t.startswith("lintas.")
        }
        assert {focal_inbox("TH"), alerts("TH")} == {
            t for t in await visible_topics(hub, "fp-th") if t.startswith("lintas.")
        }

    run(scenario())


def test_the_api_projector_webhooks_and_statistics_principals_do_their_jobs(hub: Hub) -> None:
    tag = uuid.uuid4().hex[:12]

    async def scenario() -> None:
        # The API: single events, a batch in a transaction of its own family, the audit log.
        api = KafkaPublisher(hub.bootstrap, transactional_id=f"lintas-api-{tag}", **hub.options("api"))
        await asyncio.wait_for(api.start(), STEP)
        try:
            probe = [Outgoing(nrm_events(c), b"probe", b"probe", []) for c in ("TH", "MM")]
            await api.publish(probe, atomic=False)
            await api.publish(probe, atomic=True)
            await api.write(tag.encode(), b'{"request_id": "probe"}')
        finally:
            await api.stop()
        # The projector: sees every topic it projects, and reads them.
        projected = projected_topics(COUNTRIES)
        counts = await topic_partitions(hub.bootstrap, projected, **hub.options("projector"))
        assert all(counts.values()), counts
        await read_all(hub.bootstrap, [AUDIT, nrm_receipts("MM")], **hub.options("projector"))
        # The webhook worker: its topics exist for it (nothing to create), it logs its deliveries.
        feeds = [name for c in COUNTRIES for name in (alerts(c), focal_inbox(c))]
        report = await ensure_topics(
            hub.bootstrap, [*feeds, DELIVERIES], partitions=3, options=hub.options("webhooks")
        )
        assert report.created == ()
        await publish(hub, "webhooks", DELIVERIES)
        # The statistics: a publication, read back.
        await publish_document(hub.bootstrap, {"id": f"probe-{tag}"}, **hub.options("stats"))
        await read_publications(hub.bootstrap, **hub.options("stats"))

    run(scenario())
    # And no more: the API sees the national topics it writes (Describe) but may not read them.
    with pytest.raises(TopicAuthorizationFailedError):
        run(consume(hub, "api", nrm_events("TH")))


async def both(first: asyncio.Event, second: asyncio.Event) -> None:
    await first.wait()
    await second.wait()


def test_the_router_and_the_alert_worker_route_a_referral_under_their_own_principals(hub: Hub) -> None:
    codec = Codec()
    agreements = load_agreements()
    tag = uuid.uuid4().hex[:8].upper()
    case_id = f"TH-SEC-{tag}"
    events = case_events(case_id)  # identified in TH, referred to MM
    mine = case_id.encode()

    async def scenario() -> tuple[list[Any], list[Any]]:
        stop, router_ready, alerts_ready = asyncio.Event(), asyncio.Event(), asyncio.Event()
        router = RouterWorker(
            hub.bootstrap,
            Router(codec=codec, agreements=agreements),
            instance=tag,
            auto_offset_reset="latest",
            client_options=hub.options("router"),
        )
        alert_worker = AlertWorker(
            hub.bootstrap,
            codec,
            agreements,
            clock=Clock(datetime(2026, 11, 23, tzinfo=UTC)),  # the acknowledgement is overdue
            instance=tag,
            client_options=hub.options("alerts"),
        )
        tasks = [
            asyncio.create_task(router.run(stop, router_ready)),
            asyncio.create_task(alert_worker.run(stop, alerts_ready, tick_every=0.1)),
        ]
        try:
            waiting = asyncio.create_task(both(router_ready, alerts_ready))
            done, _ = await asyncio.wait({waiting, *tasks}, timeout=STEP, return_when=asyncio.FIRST_COMPLETED)
            assert waiting in done, [task.exception() for task in tasks if task.done()]
            national = producer(hub.bootstrap, **hub.options("nrm-th"))
            async with started(national):
                await publish_events(national, codec, events)
            receipts = await read_in_group(
                hub,
                "nrm-th",
                [nrm_receipts("TH")],
                f"lintas.nrm.th.receipts-{tag}",
                lambda records: sum(r.key == mine for r in records) >= len(events),
            )

            def inbox_and_alert(records: list[Any]) -> bool:
                ours = [r for r in records if r.key == mine]
                return (
                    len({r.topic for r in ours}) == 2 and sum(r.topic == focal_inbox("MM") for r in ours) == 2
                )

            delivered = await read_in_group(
                hub, "fp-mm", [focal_inbox("MM"), alerts("MM")], f"lintas.fp.mm.inbox-{tag}", inbox_and_alert
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), STEP)
        for task in tasks:
            assert task.exception() is None
        return receipts, delivered

    receipts, delivered = run(scenario())
    decoded = [codec.decode_receipt(r.value) for r in receipts if r.key == mine]
    assert [(r.case_id, r.status.value) for r in decoded] == [(case_id, "Accepted")] * 2
    ours = [r for r in delivered if r.key == mine]
    copies = [codec.decode(r.value) for r in ours if r.topic == focal_inbox("MM")]
    assert [event.envelope.event_id for event in copies] == [event.envelope.event_id for event in events]
    (alert,) = [codec.decode_alert(r.value) for r in ours if r.topic == alerts("MM")]
    assert alert.case_id == case_id
    assert (alert.owner.value, alert.waiting.value, alert.level.value) == ("MM", "TH", "Overdue")


# -- lintas acl apply -----------------------------------------------------------------------------------


def test_acl_apply_twice_creates_nothing_the_second_time_and_removes_stale_acls_of_the_hubs_principals(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = hub.admin()
    stale = Binding("fp-th", ResourceType.TOPIC, "lintas.deadletter", PatternType.LITERAL, Operation.READ)
    others = Binding("auditor", ResourceType.TOPIC, "lintas.audit", PatternType.LITERAL, Operation.READ)
    missing = Binding("nrm-th", ResourceType.TOPIC, nrm_receipts("TH"), PatternType.LITERAL, Operation.READ)
    admin.create_bindings(client, [stale, others])
    admin.delete_bindings(client, [missing])
    # The cluster given by --bootstrap-servers, with the settings' connection as the operator.
    monkeypatch.setattr(acl_cli, "_countries", lambda _settings: list(COUNTRIES))
    environment = {
        "LINTAS_SECURITY_PROTOCOL": "SASL_SSL",
        "LINTAS_SASL_MECHANISM": "SCRAM-SHA-512",
        "LINTAS_SASL_USERNAME": OPERATOR,
        "LINTAS_SASL_PASSWORD": hub.broker.secrets.require(OPERATOR),
        "LINTAS_SSL_CAFILE": str(hub.broker.ca_file),
    }
    try:
        first, _ = invoke(monkeypatch, ["apply", "-b", hub.bootstrap], environment)
        assert first.exit_code == 0, first.output
        assert "+ nrm-th ALLOW READ TOPIC lintas.nrm.th.receipts" in first.stdout
        assert "- fp-th ALLOW READ TOPIC lintas.deadletter" in first.stdout
        assert "created 1, deleted 1," in first.stdout

        second, _ = invoke(monkeypatch, ["apply", "-b", hub.bootstrap], environment)
        assert second.exit_code == 0, second.output
        assert second.stdout == f"created 0, deleted 0, unchanged {len(layout(COUNTRIES))}\n"

        current = admin.current_bindings(client)
        assert others in current  # not one of the hub's principals: left alone
        assert stale not in current
        assert set(layout(COUNTRIES)) <= current

        live, _ = invoke(monkeypatch, ["show", "--live", "-b", hub.bootstrap], environment)
        assert live.exit_code == 0, live.output
        assert "| auditor | TOPIC | `lintas.audit` | LITERAL | ALLOW | READ |" in live.stdout
        users, _ = invoke(monkeypatch, ["users", "-b", hub.bootstrap], environment)
        assert users.exit_code == 0, users.output
        assert "| nrm-th | national-system | SCRAM_SHA_512 (4096 iterations) |" in users.stdout
    finally:
        admin.delete_bindings(client, [others])
        admin.apply(client, COUNTRIES)
