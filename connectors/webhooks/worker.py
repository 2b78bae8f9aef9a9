"""The webhook worker: reads ``lintas.alerts.<cc>`` and ``lintas.focal.<cc>.inbox`` (read_committed) of
the countries with subscriptions, writes an outbox row per record and subscription in the same SQLite
transaction as the offsets read (at least once, nothing skipped, no row twice), and runs the dispatcher.

Offsets are the outbox's own, not a consumer group's: partitions are assigned, not subscribed, and one
worker serves a deployment's subscriptions (its outbox is a local file).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from connectors.webhooks import DELIVERIES
from connectors.webhooks.backoff import Random
from connectors.webhooks.dispatcher import Dispatcher, Publisher, client
from connectors.webhooks.outbox import Attempt, Outbox, OutboxRow, Position
from connectors.webhooks.payloads import Message, alert_message, inbox_message
from connectors.webhooks.settings import WebhookSettings
from connectors.webhooks.signing import webhook_id
from connectors.webhooks.subscriptions import Subscription
from hub.agreements import WebhookFeed
from hub.codec import Codec
from hub.errors import InvalidEvent
from hub.kafka import ensure_topics, producer, topic_partitions
from hub.topics import alerts, focal_inbox
from hub.wire.codec import Wire

log = structlog.get_logger("lintas.webhooks")


@dataclass(frozen=True)
class Feed:
    """One topic the worker reads: which feed it is and whose."""

    topic: str
    feed: WebhookFeed
    country: str


def feeds_for(found: Sequence[Subscription]) -> tuple[Feed, ...]:
    """The topics that some subscription needs, each once."""
    topics: dict[str, Feed] = {}
    for subscription in found:
        if subscription.carries("alerts"):
            topic = alerts(subscription.country)
            topics[topic] = Feed(topic, "alerts", subscription.country)
        if subscription.carries("inbox"):
            topic = focal_inbox(subscription.country)
            topics[topic] = Feed(topic, "inbox", subscription.country)
    return tuple(sorted(topics.values(), key=lambda feed: feed.topic))


def message_of(feed: WebhookFeed, value: bytes, codec: Codec, wire: Wire | None) -> Message:
    """The webhook message of a record; the inbox's events are read from their envelope alone, without
    keys. Raises :class:`InvalidEvent` for a record that is not one."""
    if feed == "alerts":
        return alert_message(codec.decode_alert(value))
    if wire is not None and wire.is_v2(value):
        return inbox_message(wire.header(wire.parse(value))["envelope"])
    return inbox_message(dict(codec.decode(value).envelope))


def outbox_rows(message: Message, found: Sequence[Subscription]) -> list[OutboxRow]:
    return [
        OutboxRow(webhook_id(s.id, message.message_id), s.id, message.message_id, message.type, message.body)
        for s in found
    ]


def delivery_log(kafka_producer: AIOKafkaProducer) -> Publisher:
    """A publisher of attempts to :data:`DELIVERIES`, one JSON record each, keyed by webhook id."""

    async def publish(attempts: Sequence[Attempt]) -> None:
        sent = [
            await kafka_producer.send(
                DELIVERIES, json.dumps(attempt.to_json()).encode(), key=attempt.webhook_id.encode()
            )
            for attempt in attempts
        ]
        await asyncio.gather(*sent)

    return publish


class WebhookWorker:
    def __init__(
        self,
        bootstrap: str,
        found: Sequence[Subscription],
        outbox: Outbox,
        dispatcher: Dispatcher,
        *,
        clock: Callable[[], datetime],
        codec: Codec | None = None,
        start_from: Literal["latest", "earliest"] = "latest",
        poll_ms: int = 500,
        partitions: int = 6,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.subscriptions = tuple(found)
        self.feeds = {feed.topic: feed for feed in feeds_for(found)}
        self.outbox = outbox
        self.dispatcher = dispatcher
        self.clock = clock
        self.codec = codec or Codec()
        self.wire = Wire(self.codec)
        self.start_from = start_from
        self.poll_ms = poll_ms
        self.partitions = partitions
        self.options = dict(options or {})
        self.stats = {"records": 0, "rows": 0, "unreadable": 0, "attempts": 0}

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        topics = list(self.feeds)
        await ensure_topics(
            self.bootstrap, [*topics, DELIVERIES], partitions=self.partitions, options=self.options
        )
        counts = await topic_partitions(self.bootstrap, topics, **self.options)
        assigned = [TopicPartition(topic, p) for topic in topics for p in range(counts[topic])]
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            **self.options,
        )
        await consumer.start()
        try:
            consumer.assign(assigned)
            await self._seek(consumer, assigned)
            log.info("webhooks_started", topics=topics, subscriptions=[s.id for s in self.subscriptions])
            if started is not None:
                started.set()
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=self.poll_ms, max_records=1000)
                if batch:
                    self._enqueue(batch)
                self.stats["attempts"] += await self.dispatcher.dispatch_due()
        finally:
            await consumer.stop()

    async def _seek(self, consumer: AIOKafkaConsumer, assigned: Sequence[TopicPartition]) -> None:
        stored = self.outbox.offsets()
        new = [tp for tp in assigned if (tp.topic, tp.partition) not in stored]
        if new:
            # Stored at once, so records arriving before the first read are not skipped after a restart.
            first = consumer.end_offsets if self.start_from == "latest" else consumer.beginning_offsets
            starts = await first(new)
            self.outbox.start_at({(tp.topic, tp.partition): offset for tp, offset in starts.items()})
            stored = self.outbox.offsets()
        for tp in assigned:
            consumer.seek(tp, stored[(tp.topic, tp.partition)])

    def _enqueue(self, batch: Mapping[TopicPartition, Sequence[Any]]) -> None:
        rows: list[OutboxRow] = []
        offsets: dict[Position, int] = {}
        for tp, records in batch.items():
            feed = self.feeds[tp.topic]
            found = [s for s in self.subscriptions if s.country == feed.country and s.carries(feed.feed)]
            for record in records:
                self.stats["records"] += 1
                try:
                    message = message_of(feed.feed, record.value or b"", self.codec, self.wire)
                except InvalidEvent as error:  # nothing can be said of it; the hub's own log keeps it
                    self.stats["unreadable"] += 1
                    log.warning(
                        "webhook_record_unreadable",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        error=str(error),
                    )
                    continue
                rows.extend(outbox_rows(message, found))
            if records:
                offsets[(tp.topic, tp.partition)] = records[-1].offset + 1
        added = self.outbox.enqueue(rows, offsets, self.clock())
        self.stats["rows"] += added


async def serve(
    bootstrap: str,
    found: Sequence[Subscription],
    secrets: Mapping[str, str],
    settings: WebhookSettings,
    *,
    stop: asyncio.Event,
    clock: Callable[[], datetime],
    rng: Random,
    started: asyncio.Event | None = None,
    partitions: int = 6,
    options: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """The worker wired to its outbox, HTTP client and delivery log, until ``stop``; returns its counts."""
    outbox = Outbox(settings.database)
    kafka_producer = producer(bootstrap, **dict(options or {}))
    await kafka_producer.start()
    try:
        async with client(settings.timeout_seconds) as http:
            dispatcher = Dispatcher(
                outbox,
                found,
                secrets,
                http=http,
                clock=clock,
                rng=rng,
                policy=settings.policy,
                publish=delivery_log(kafka_producer),
                concurrency=settings.concurrency,
            )
            worker = WebhookWorker(
                bootstrap,
                found,
                outbox,
                dispatcher,
                clock=clock,
                start_from=settings.start_from,
                poll_ms=settings.poll_ms,
                partitions=partitions,
                options=options,
            )
            await worker.run(stop, started)
            return worker.stats
    finally:
        await kafka_producer.stop()
        outbox.close()
