"""Thin Kafka adapter: client settings, topic creation, publishing and reading events."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from hub.broker.tls import client_context
from hub.errors import BrokerError
from hub.events import Event
from hub.headers import envelope_headers
from hub.limits import INPUT_MAX_BYTES, TOPIC_MAX_BYTES
from hub.settings import Settings
from hub.topics import AUDIT, COMPACTED, NRM_EVENTS_PATTERN, REGIONAL_STATS, ROUTER_IDS, nrm_events

NRM_EVENTS = re.compile(NRM_EVENTS_PATTERN)
#: How long the claims of event ids are kept, and so known to every router worker.
ID_RETENTION_DAYS = 400


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by every client (aiokafka's names; ``hub.processor.rdkafka_options``
    translates them for librdkafka): TLS and SASL only when configured."""
    options: dict[str, Any] = {"security_protocol": settings.security_protocol}
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = (
            client_context(settings.ssl_cafile) if settings.ssl_cafile else ssl.create_default_context()
        )
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        password = _password(settings)
        if password is not None:
            options["sasl_plain_password"] = password
    return options


def _password(settings: Settings) -> str | None:
    if settings.sasl_password is not None:
        return settings.sasl_password.get_secret_value()
    if settings.sasl_password_file is None:
        return None
    try:
        return settings.sasl_password_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BrokerError(f"sasl_password_file {settings.sasl_password_file}: {exc.strerror}") from exc


@dataclass(frozen=True)
class TopicsReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]


async def ensure_topics(
    bootstrap: str,
    names: Sequence[str],
    *,
    partitions: int,
    replication_factor: int | None = None,
    options: dict[str, Any] | None = None,
) -> TopicsReport:
    """Create the topics that are missing; existing ones are left as they are (idempotent).

    ``replication_factor`` defaults to what the cluster can hold: three copies once it has three
    brokers (acknowledged by two, ``min.insync.replicas=2``), one on a single broker.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {}))
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [name for name in names if name not in present]
        if missing:
            replicas = replication_factor or default_replication(await _broker_count(admin))
            # Another process may create them between our listing and our request.
            with contextlib.suppress(TopicAlreadyExistsError):
                response = await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            partitions,
                            replicas,
                            topic_configs=topic_config(name, replicas),
                        )
                        for name in missing
                    ]
                )
                _refused(response)
            await _until_led(admin, missing)
        return TopicsReport(created=tuple(missing), existing=tuple(name for name in names if name in present))
    finally:
        await admin.close()


#: Kafka's error codes for a principal that may not create topics.
_NOT_AUTHORIZED = {29: "TopicAuthorizationFailed", 31: "ClusterAuthorizationFailed"}


def _refused(response: Any) -> None:
    """Fail at once when the principal may not create the topics, rather than wait for topics that
    will never appear."""
    refused = [
        (entry[0], _NOT_AUTHORIZED[entry[1]])
        for entry in getattr(response, "topic_errors", ())
        if entry[1] in _NOT_AUTHORIZED
    ]
    if refused:
        names = ", ".join(name for name, _ in refused)
        raise BrokerError(
            f"not allowed to create {names} ({refused[0][1]}): the operator creates the topics "
            "(`lintas topics init`)"
        )


def default_replication(brokers: int) -> int:
    """Three replicas where there are three brokers or more, else as many as there are."""
    return max(1, min(3, brokers))


def min_insync(replicas: int) -> int:
    """Acknowledged by two of three: one broker may be lost without losing an acknowledged write, and
    with two lost, writes stop (NotEnoughReplicas) instead of resting on a single copy."""
    return 2 if replicas >= 3 else 1


async def _broker_count(admin: AIOKafkaAdminClient) -> int:
    cluster = await admin.describe_cluster()
    return len(cluster["brokers"])


def topic_config(name: str, replicas: int = 1) -> dict[str, str]:
    """Per-topic settings: compaction for changelogs, the size limits of ``hub.limits`` (a national
    topic takes less than the hub may write, so a routed copy with its headers always fits), and how
    many replicas acknowledge a write."""
    config = {
        "max.message.bytes": str(INPUT_MAX_BYTES if NRM_EVENTS.match(name) else TOPIC_MAX_BYTES),
        "min.insync.replicas": str(min_insync(replicas)),
        "unclean.leader.election.enable": "false",
    }
    if name in COMPACTED:
        config["cleanup.policy"] = "compact"
    if name == AUDIT:  # the record of who read what is kept as long as the cases are
        config["retention.ms"] = "-1"
    if name == REGIONAL_STATS:  # a later publication is protected with every earlier one: keep them all
        config["retention.ms"] = "-1"
    if name == ROUTER_IDS:  # not compacted: the first claim of an id wins, compaction keeps the last
        config["retention.ms"] = str(ID_RETENTION_DAYS * 24 * 3600 * 1000)
    return config


async def topic_partitions(bootstrap: str, topics: Sequence[str], **options: Any) -> dict[str, int]:
    """Partition count of each topic (0 when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    counts = {topic: 0 for topic in topics}
    for entry in described:
        if entry["topic"] in counts and not entry["error_code"]:
            counts[entry["topic"]] = len(entry["partitions"])
    return counts


async def _until_led(admin: AIOKafkaAdminClient, topics: list[str], within: float = 30.0) -> None:
    """Wait until every partition of new topics has a leader; producing earlier only earns
    NotLeaderForPartition retries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        described = await admin.describe_topics(topics)
        led = [
            entry
            for entry in described
            if not entry["error_code"]
            and entry["partitions"]
            and all(partition["leader"] >= 0 for partition in entry["partitions"])
        ]
        if len(led) == len(topics):
            return
        if loop.time() > deadline:
            raise BrokerError(f"topics {', '.join(topics)} have no partition leaders after {within} s")
        await asyncio.sleep(0.1)


def producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
    # Idempotence: a retried send is never written twice.
    return AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **options)


class EventWriter(Protocol):
    """What writes an event's bytes: the v1 :class:`hub.codec.Codec`, or the national systems of contract v2
    (:class:`hub.wire.national.NationalSystems`)."""

    def encode(self, event: Event) -> bytes: ...


async def publish_events(
    kafka_producer: AIOKafkaProducer, codec: EventWriter, events: Iterable[Event]
) -> int:
    """Publish each event to its source country's topic, keyed by case id; returns the count."""
    pending = []
    for event in events:
        envelope = event.envelope
        pending.append(
            await kafka_producer.send(
                nrm_events(envelope.source_country.value),
                codec.encode(event),
                key=envelope.case_id.encode(),
                headers=envelope_headers(envelope),
            )
        )
    await asyncio.gather(*pending)
    return len(pending)


async def committed_batches(
    bootstrap: str,
    partitions: Sequence[TopicPartition],
    *,
    within: float | None = None,
    max_records: int = 10_000,
    **options: Any,
) -> AsyncIterator[dict[TopicPartition, list[Any]]]:
    """The committed records of ``partitions``, from the beginning up to the end offsets they had
    when reading started, batch by batch (memory does not grow with the topic)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(list(partitions))
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        # Positions, not record counts: transaction markers and aborted records take offsets too.
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if deadline is not None and loop.time() > deadline:
                topics = sorted({tp.topic for tp in partitions})
                raise TimeoutError(f"reading {', '.join(topics)} did not reach the end offsets in {within} s")
            batch = await consumer.getmany(timeout_ms=500, max_records=max_records)
            if batch:
                yield batch
    finally:
        await consumer.stop()


async def all_partitions(bootstrap: str, topics: Sequence[str], **options: Any) -> list[TopicPartition]:
    counts = await topic_partitions(bootstrap, topics, **options)
    return [TopicPartition(topic, partition) for topic in topics for partition in range(counts[topic])]


async def read_all(
    bootstrap: str, topics: Sequence[str], *, within: float = 30.0, **options: Any
) -> list[Any]:
    """Every committed record now in ``topics``, from the beginning (for demos and tests)."""
    records: list[Any] = []
    partitions = await all_partitions(bootstrap, topics, **options)
    async for batch in committed_batches(bootstrap, partitions, within=within, **options):
        for messages in batch.values():
            records.extend(messages)
    return records
