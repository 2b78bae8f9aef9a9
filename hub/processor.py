"""Exactly-once stream processing on Kafka transactions, the Kafka Streams way.

A processor reads a batch, computes its outputs and state changes in memory (pure code does the
thinking), then writes the outputs, the changed state (a compacted changelog co-partitioned with the
input) and the input offsets in ONE transaction. A crash before the commit aborts all of it and the
batch is read again; a crash after it has nothing to redo. State lives in memory and is rebuilt from the
changelog when partitions are assigned. A restarted instance keeps its transactional id, so Kafka fences
the dead one and aborts whatever it left open.

Subclasses say how to process a batch (and, optionally, what a timer emits) and how to read a state
record back; they never touch Kafka.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from hub.kafka import committed_batches
from hub.routing import Outgoing

log = structlog.get_logger("lintas.processor")


@dataclass(frozen=True)
class StateWrite:
    """A changelog record: ``value`` None deletes the key."""

    key: str
    value: bytes | None
    partition: int


@dataclass
class BatchResult:
    outputs: list[Outgoing] = field(default_factory=list)
    state: list[StateWrite] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass
class ProcessorStats:
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: TransactionalProcessor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.processor.batch_lock:  # let an in-flight transaction finish first
            self.processor.forget({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self.processor.batch_lock:
            await self.processor.restore({tp.partition for tp in assigned})


class TransactionalProcessor(ABC):
    #: The compacted topic holding this processor's state.
    changelog: str

    def __init__(
        self,
        bootstrap: str,
        *,
        group_id: str,
        instance: str = "0",
        topics: tuple[str, ...] = (),
        pattern: str | None = None,
        max_batch: int = 2000,
        client_options: dict[str, Any] | None = None,
        auto_offset_reset: str = "earliest",
    ) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.transactional_id = f"{group_id}-{instance}"
        self.topics = topics
        self.pattern = pattern
        self.max_batch = max_batch
        self.options = client_options or {}
        self.auto_offset_reset = auto_offset_reset
        self.batch_lock = asyncio.Lock()
        self.stats = ProcessorStats()
        self.partitions: set[int] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    # -- what subclasses provide ----------------------------------------------------------------

    @abstractmethod
    def process(self, batch: dict[TopicPartition, list[Any]]) -> BatchResult:
        """Outputs and state changes of a batch; must not change ``self`` (applied on commit)."""

    @abstractmethod
    def apply(self, write: StateWrite) -> None:
        """Take a committed (or restored) state record into memory."""

    @abstractmethod
    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this instance no longer owns."""

    def tick(self) -> BatchResult | None:
        """What a timer emits (nothing by default)."""
        return None

    # -- state ----------------------------------------------------------------------------------

    async def restore(self, partitions: set[int]) -> None:
        """Rebuild the state of the assigned partitions from the committed changelog."""
        self.partitions = set(partitions)
        if not partitions:
            return
        started = time.monotonic()
        restored = 0
        tps = [TopicPartition(self.changelog, p) for p in sorted(partitions)]
        async for batch in committed_batches(self.bootstrap, tps, **self.options):
            for tp, records in batch.items():
                for record in records:
                    self.apply(StateWrite(record.key.decode(), record.value, tp.partition))
                    restored += 1
        log.info(
            "state_restored",
            changelog=self.changelog,
            partitions=sorted(partitions),
            records=restored,
            seconds=round(time.monotonic() - started, 3),
        )

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
            **self.options,
        )
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.auto_offset_reset,
            isolation_level="read_committed",
            max_poll_records=self.max_batch,
            metadata_max_age_ms=5000,  # pick up new topics of a pattern quickly
            **self.options,
        )
        if self.pattern is not None:
            self._consumer.subscribe(pattern=self.pattern, listener=_Rebalance(self))
        else:
            self._consumer.subscribe(topics=list(self.topics), listener=_Rebalance(self))
        await self._consumer.start()
        log.info("processor_started", transactional_id=self.transactional_id, group=self.group_id)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        log.info("processor_stopped", batches=self.stats.batches, **self.stats.outcomes)

    async def assigned(self, within: float = 60.0) -> None:
        """Wait until the group has given this instance its partitions and their positions are
        known (so that with ``auto_offset_reset="latest"`` nothing published afterwards is missed)."""
        consumer, _ = self._clients()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not consumer.assignment():
            if loop.time() > deadline:
                raise TimeoutError(f"no partitions assigned to {self.group_id}")
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)

    async def run(
        self,
        stop: asyncio.Event,
        started: asyncio.Event | None = None,
        *,
        tick_every: float | None = None,
    ) -> None:
        await self.start()
        try:
            if started is not None:
                await self.assigned()
                started.set()
            next_tick = time.monotonic()
            while not stop.is_set():
                await self.step()
                if tick_every is not None and time.monotonic() >= next_tick:
                    await self.emit_tick()
                    next_tick = time.monotonic() + tick_every
        finally:
            await self.stop()

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
        if self._consumer is None or self._producer is None:
            raise RuntimeError(f"{type(self).__name__}.start() has not been called")
        return self._consumer, self._producer

    # -- transactions ---------------------------------------------------------------------------

    async def step(self, timeout_ms: int = 200) -> int:
        """Read, process and commit one batch; returns the number of messages handled."""
        consumer, _ = self._clients()
        batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        if not batch:
            return 0
        async with self.batch_lock:
            result = self.process(batch)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            if not await self._commit(result, offsets):
                for tp, records in batch.items():  # nothing is visible: read it all again
                    consumer.seek(tp, records[0].offset)
                return 0
            return sum(len(records) for records in batch.values())

    async def emit_tick(self) -> int:
        """Commit what the timer emits; returns the number of outputs."""
        async with self.batch_lock:
            result = self.tick()
            if result is None or not (result.outputs or result.state):
                return 0
            return len(result.outputs) if await self._commit(result, {}) else 0

    async def _commit(self, result: BatchResult, offsets: dict[TopicPartition, int]) -> bool:
        _, producer = self._clients()
        try:
            async with producer.transaction():
                sends = [
                    await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                    for out in result.outputs
                ]
                sends += [
                    await producer.send(
                        self.changelog, write.value, key=write.key.encode(), partition=write.partition
                    )
                    for write in result.state
                ]
                await asyncio.gather(*sends)
                if offsets:
                    await producer.send_offsets_to_transaction(offsets, self.group_id)
        except ProducerFenced:
            raise  # a newer instance with our transactional id took over: this one must end
        except KafkaError as error:
            log.warning("transaction_aborted", outputs=len(result.outputs), error=repr(error))
            return False
        for write in result.state:
            self.apply(write)
        self.stats.batches += 1
        self.stats.outcomes.update(result.outcomes)
        return True
