"""The publications of the regional statistics on ``lintas.regional.stats`` (thin Kafka adapter).

The topic keeps every publication forever (``hub.kafka.topic_config``): a later publication is
protected together with every earlier one a reader may hold. All go to its first partition, keyed by
id, so they have one order whatever their ids.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import structlog

from hub.kafka import all_partitions, committed_batches, producer
from hub.topics import REGIONAL_STATS
from projections.stats.publication import from_document

log = structlog.get_logger("lintas.stats")

#: The partition every publication is written to.
PARTITION = 0


async def publish_document(
    bootstrap: str,
    document: Mapping[str, Any],
    *,
    topic: str = REGIONAL_STATS,
    within: float = 30.0,
    **options: Any,
) -> None:
    """Publish one document (key: its id; value: its JSON, UTF-8), acknowledged by every in-sync
    replica; the producer is idempotent, so a retried send is written once."""
    value = json.dumps(document, ensure_ascii=False).encode()
    kafka_producer = producer(bootstrap, **options)
    await kafka_producer.start()
    try:
        sent = await kafka_producer.send(topic, value, key=str(document["id"]).encode(), partition=PARTITION)
        await asyncio.wait_for(sent, within)
    finally:
        await kafka_producer.stop()


async def read_publications(
    bootstrap: str, *, topic: str = REGIONAL_STATS, within: float = 30.0, **options: Any
) -> list[dict[str, Any]]:
    """Every publication on ``topic``, from the beginning to its end offsets, in the order published;
    one published twice counts once. A record that is not a publication this installation reads is
    passed over and logged (an empty or missing topic gives none)."""
    partitions = await all_partitions(bootstrap, [topic], **options)
    records: list[Any] = []
    async for batch in committed_batches(bootstrap, partitions, within=within, **options):
        for messages in batch.values():
            records.extend(messages)
    records.sort(key=lambda record: (record.timestamp, record.partition, record.offset))
    documents: dict[str, dict[str, Any]] = {}
    for record in records:
        try:
            document = json.loads(record.value)
            published = from_document(document)
        except (ValueError, TypeError) as error:
            log.warning(
                "publication_skipped",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=str(error),
            )
            continue
        documents.setdefault(published.id, document)
    return list(documents.values())
