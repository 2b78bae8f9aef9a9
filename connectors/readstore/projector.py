"""The projector: reads the log (accepted events, receipts, inboxes, alerts, the audit log, the
published regional statistics) and applies each batch to the read store in one store transaction
with the positions it reached."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.engine import Connection

from connectors.readstore.store import Position, ReadStore
from hub.codec import Codec
from hub.errors import InvalidEvent
from hub.headers import header_map
from hub.kafka import topic_partitions
from hub.topics import ACCEPTED_EVENTS, AUDIT, DEADLETTER, REGIONAL_STATS, alerts, focal_inbox, nrm_receipts
from projections.cases.fold import evolve
from projections.stats.publication import from_document

log = structlog.get_logger("lintas.readstore")

_PREFIX = "org.lintas."


def projected_topics(countries: Iterable[str]) -> list[str]:
    names = [ACCEPTED_EVENTS, AUDIT, REGIONAL_STATS, DEADLETTER]
    for country in countries:
        names += [nrm_receipts(country), focal_inbox(country), alerts(country)]
    return names


def _country_of(topic: str) -> str:
    # lintas.nrm.th.receipts, lintas.focal.th.inbox, lintas.alerts.th
    parts = topic.split(".")
    return (parts[2] if len(parts) == 4 else parts[-1]).upper()


def _moment(milliseconds: int) -> datetime:
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC)


class Applier:
    """Turns log records into store rows (no Kafka here: records are anything with ``topic``,
    ``partition``, ``offset``, ``timestamp``, ``headers`` and ``value``)."""

    def __init__(self, store: ReadStore, codec: Codec) -> None:
        self.store = store
        self.codec = codec

    def apply(self, records: Sequence[Any], reached: Mapping[tuple[str, int], int] | None = None) -> int:
        """Apply ``records`` (in partition order) and advance the positions, in one transaction.

        ``reached`` is where reading stands per partition (past transaction markers too); by default,
        just after each partition's last record."""
        positions = {(record.topic, record.partition): record.offset + 1 for record in records}
        positions.update(reached or {})
        if not positions:
            return 0
        with self.store.transaction() as connection:
            for record in records:
                self._one(connection, record)
            self.store.advance(connection, (Position(t, p, o) for (t, p), o in positions.items()))
        return len(records)

    def _one(self, connection: Connection, record: Any) -> None:
        topic: str = record.topic
        try:
            if topic == ACCEPTED_EVENTS:
                self._accepted(connection, record)
            elif topic == AUDIT:
                self._audit(connection, record)
            elif topic == REGIONAL_STATS:
                self._publication(connection, record)
            elif topic == DEADLETTER:
                self._dead_letter(connection, record)
            elif topic.endswith(".receipts"):
                self._receipt(connection, record)
            elif topic.endswith(".inbox"):
                self._inbox(connection, record)
            elif topic.startswith("lintas.alerts."):
                self._alert(connection, record)
        except (InvalidEvent, ValueError, KeyError) as error:
            # Written under rules this installation does not share: the position still advances.
            log.warning(
                "record_not_projected",
                topic=topic,
                partition=record.partition,
                offset=record.offset,
                error=str(error),
            )

    def _accepted(self, connection: Connection, record: Any) -> None:
        event = self.codec.decode(record.value)
        envelope = event.envelope
        self.store.add_accepted(
            connection,
            {
                "event_id": str(envelope.event_id),
                "event_type": envelope.event_type.value,
                "case_id": envelope.case_id,
                "source_country": envelope.source_country.value,
                "occurred_at": envelope.occurred_at,
                "value": record.value,
            },
        )
        state = evolve(self.store.case_state_in(connection, envelope.case_id), event)
        if state is not None:
            self.store.put_case(connection, state)

    def _receipt(self, connection: Connection, record: Any) -> None:
        receipt = self.codec.decode_receipt(record.value)
        self.store.add_receipt(
            connection,
            {
                "sender": _country_of(record.topic),
                "event_id": None if receipt.event_id is None else str(receipt.event_id),
                "case_id": receipt.case_id,
                "status": receipt.status.value,
                "record": receipt.model_dump_json(),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )

    def _inbox(self, connection: Connection, record: Any) -> None:
        headers = header_map(record.headers)
        event_type = headers["ce_type"].decode()
        source = headers["ce_source"].decode().split("/")
        self.store.add_inbox(
            connection,
            {
                "country": _country_of(record.topic),
                "event_id": headers["ce_id"].decode(),
                "event_type": event_type.removeprefix(_PREFIX),
                "case_id": headers["ce_subject"].decode(),
                "source_country": source[2],
                "occurred_at": datetime.fromisoformat(headers["ce_time"].decode()),
                "received_at": _moment(record.timestamp),
                "value": record.value,
            },
        )

    def _alert(self, connection: Connection, record: Any) -> None:
        alert = self.codec.decode_alert(record.value)
        self.store.add_alert(
            connection,
            {
                "country": _country_of(record.topic),
                "alert_id": alert.alert_id,
                "case_id": alert.case_id,
                "raised_at": alert.raised_at,
                "record": alert.model_dump_json(),
            },
        )

    def _audit(self, connection: Connection, record: Any) -> None:
        entry = json.loads(record.value)
        # Only the API writes here, but a malformed record must not stop the projector on every retry.
        if not isinstance(entry, dict) or not isinstance(entry.get("request_id"), str):
            raise ValueError("an audit record needs a request_id")
        cases = entry.get("cases") or [None]
        if not isinstance(cases, list) or not all(c is None or isinstance(c, str) for c in cases):
            raise ValueError("an audit record's cases are a list of case ids")
        for case_id in cases:
            self.store.add_audit(
                connection,
                {"request_id": entry["request_id"], "case_id": case_id, "record": record.value.decode()},
            )

    def _dead_letter(self, connection: Connection, record: Any) -> None:
        headers = [(name, bytes(value or b"")) for name, value in record.headers or ()]
        named = header_map(headers)

        def text(name: str) -> str | None:
            value = named.get(name)
            return None if value is None else value.decode(errors="replace")

        def number(name: str) -> int | None:
            value = text(name)
            return int(value) if value is not None and value.isdigit() else None

        self.store.add_dead_letter(
            connection,
            {
                "reason": text("lintas_error_code") or "unknown",
                "error": text("lintas_error") or "",
                "key": None if record.key is None else record.key.decode(errors="replace")[:200],
                "source_topic": text("lintas_source_topic"),
                "source_partition": number("lintas_source_partition"),
                "source_offset": number("lintas_source_offset"),
                "logged_at": _moment(record.timestamp),
                "value": record.value or b"",
                "headers": json.dumps([(name, value.hex()) for name, value in headers]),
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
            },
        )

    def _publication(self, connection: Connection, record: Any) -> None:
        if record.value is None:
            raise ValueError("a publication record needs a value")
        document = json.loads(record.value)
        published = from_document(document)  # a document this installation cannot read is not served
        self.store.add_publication(
            connection,
            {
                "id": published.id,
                "period_first": published.period.first,
                "period_last": published.period.last,
                "published": document["published"],
                "logged_at": _moment(record.timestamp),
                "partition": record.partition,
                "offset": record.offset,
                "document": json.dumps(document, ensure_ascii=False),
            },
        )


class Projector:
    """Keeps a read store current from the log; resumes from the positions the store holds."""

    def __init__(
        self,
        bootstrap: str,
        store: ReadStore,
        codec: Codec,
        countries: Sequence[str],
        *,
        on_batch: Callable[[int], None] | None = None,
        **options: Any,
    ) -> None:
        self.bootstrap = bootstrap
        self.applier = Applier(store, codec)
        self.store = store
        self.topics = projected_topics(countries)
        self.options = options
        self.on_batch = on_batch
        self.applied = 0

    async def _partitions(self) -> list[TopicPartition]:
        counts = await topic_partitions(self.bootstrap, self.topics, **self.options)
        return [TopicPartition(t, p) for t in self.topics for p in range(counts[t])]

    async def run(self, stop: asyncio.Event, caught_up: asyncio.Event | None = None) -> None:
        """Project until ``stop``; ``caught_up`` is set once the log as it was at the start is in."""
        partitions = await self._partitions()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            **self.options,
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            stored = await asyncio.to_thread(self.store.positions)
            fresh = []
            for tp in partitions:
                if (tp.topic, tp.partition) in stored:
                    consumer.seek(tp, stored[(tp.topic, tp.partition)])
                else:
                    fresh.append(tp)
            if fresh:  # one call: each call waits for its own offset lookup
                await consumer.seek_to_beginning(*fresh)
            ends = await consumer.end_offsets(partitions) if partitions else {}
            persisted = {
                tp: stored[(tp.topic, tp.partition)]
                for tp in partitions
                if (tp.topic, tp.partition) in stored
            }
            log.info("projector_started", partitions=len(partitions), resumed=len(stored))
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                records = [record for messages in batch.values() for record in messages]
                # Where reading stands: past the records returned and any transaction markers.
                now_at = {tp: await consumer.position(tp) for tp in partitions}
                moved = {(tp.topic, tp.partition): at for tp, at in now_at.items() if persisted.get(tp) != at}
                if records or moved:
                    applied = await asyncio.to_thread(self.applier.apply, records, moved)
                    persisted.update(now_at)
                    self.applied += applied
                    if self.on_batch is not None and applied:
                        self.on_batch(applied)
                behind = any(now_at[tp] < ends[tp] for tp in partitions)
                if caught_up is not None and not caught_up.is_set() and not behind:
                    caught_up.set()
        finally:
            await consumer.stop()


async def replay_into(
    bootstrap: str, store: ReadStore, codec: Codec, countries: Sequence[str], **options: Any
) -> int:
    """Rebuild ``store`` from offset 0 of the log; returns the records applied."""
    store.drop_projections()
    store.create()
    projector = Projector(bootstrap, store, codec, countries, **options)
    stop, caught_up = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(projector.run(stop, caught_up))
    waiter = asyncio.create_task(caught_up.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    waiter.cancel()
    await task  # raises what the projector raised
    return projector.applied
