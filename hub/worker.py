"""The routing worker: a thin Kafka adapter around :class:`hub.routing.Router`.

Exactly once, the Kafka Streams way: each batch read from the national topics is routed in memory, then
its inbox messages, receipts, dead letters, the changed case states (a compacted, co-partitioned
changelog) and the input offsets are written in ONE Kafka transaction. A crash before the commit aborts
all of it and the batch is read again; a crash after it has nothing left to redo. Case state lives in
memory and is rebuilt from the changelog when partitions are assigned.

All national events topics must have the same partition count, so that a case's events (keyed by case
id) land in the same partition number in every topic and its state is found where it is needed.
"""

from __future__ import annotations

import asyncio
import time
from collections import ChainMap, Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from hub.contract import ReceiptStatus
from hub.routing import CaseRoute, Incoming, Outgoing, Router, country_of_topic
from hub.topics import NRM_EVENTS_PATTERN, ROUTER_STATE

log = structlog.get_logger("lintas.router")

GROUP_ID = "lintas-router"


@dataclass
class WorkerStats:
    batches: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: RouterWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.worker.batch_lock:  # let an in-flight transaction finish first
            self.worker.forget(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        async with self.worker.batch_lock:
            await self.worker.restore(assigned)


class RouterWorker:
    def __init__(
        self,
        bootstrap: str,
        router: Router,
        *,
        instance: str = "0",
        group_id: str = GROUP_ID,
        max_batch: int = 2000,
        client_options: dict[str, Any] | None = None,
        auto_offset_reset: str = "earliest",
    ) -> None:
        self.bootstrap = bootstrap
        self.router = router
        self.group_id = group_id
        self.max_batch = max_batch
        self.options = client_options or {}
        self.auto_offset_reset = auto_offset_reset
        # One stable transactional id per instance: a restarted instance fences its predecessor
        # and aborts whatever it left open.
        self.transactional_id = f"{group_id}-{instance}"
        self.states: dict[str, CaseRoute] = {}
        self.state_partition: dict[str, int] = {}
        self.batch_lock = asyncio.Lock()
        self.stats = WorkerStats()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None

    # -- state ----------------------------------------------------------------------------------

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        partitions = {tp.partition for tp in revoked}
        for case_id in [c for c, p in self.state_partition.items() if p in partitions]:
            self.states.pop(case_id, None)
            self.state_partition.pop(case_id, None)

    async def restore(self, assigned: Iterable[TopicPartition]) -> None:
        """Rebuild the state of the assigned partitions from the committed changelog."""
        partitions = sorted({tp.partition for tp in assigned})
        if not partitions:
            return
        started = time.monotonic()
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **self.options,
        )
        await reader.start()
        try:
            tps = [TopicPartition(ROUTER_STATE, p) for p in partitions]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            restored = 0
            while [tp for tp in tps if await reader.position(tp) < ends[tp]]:
                batch = await reader.getmany(timeout_ms=500, max_records=10_000)
                for tp, records in batch.items():
                    for record in records:
                        case_id = record.key.decode()
                        if record.value is None:
                            self.states.pop(case_id, None)
                            continue
                        self.states[case_id] = CaseRoute.model_validate_json(record.value)
                        self.state_partition[case_id] = tp.partition
                        restored += 1
        finally:
            await reader.stop()
        log.info(
            "router_state_restored",
            partitions=partitions,
            records=restored,
            cases=len(self.states),
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
            metadata_max_age_ms=5000,  # pick up new national topics quickly
            **self.options,
        )
        self._consumer.subscribe(pattern=NRM_EVENTS_PATTERN, listener=_Rebalance(self))
        await self._consumer.start()
        log.info("router_started", transactional_id=self.transactional_id, group=self.group_id)

    async def assigned(self, within: float = 60.0) -> None:
        """Wait until the group has given this worker its partitions and their positions are known
        (so that with ``auto_offset_reset="latest"`` nothing published afterwards is skipped)."""
        consumer, _ = self._clients()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not consumer.assignment():
            if loop.time() > deadline:
                raise TimeoutError("no partitions assigned to the router")
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        log.info("router_stopped", batches=self.stats.batches, **self.stats.outcomes)

    async def run(self, stop: asyncio.Event, started: asyncio.Event | None = None) -> None:
        await self.start()
        try:
            if started is not None:
                await self.assigned()
                started.set()
            while not stop.is_set():
                await self.step()
        finally:
            await self.stop()

    # -- one batch ------------------------------------------------------------------------------

    def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
        if self._consumer is None or self._producer is None:
            raise RuntimeError("RouterWorker.start() has not been called")
        return self._consumer, self._producer

    async def step(self, timeout_ms: int = 200) -> int:
        """Read, route and commit one batch; returns the number of messages handled."""
        consumer, _ = self._clients()
        batch = await consumer.getmany(timeout_ms=timeout_ms, max_records=self.max_batch)
        if not batch:
            return 0
        async with self.batch_lock:
            return await self._commit_batch(batch)

    async def _commit_batch(self, batch: dict[TopicPartition, list[Any]]) -> int:
        consumer, producer = self._clients()
        overlay: dict[str, CaseRoute] = {}
        overlay_partition: dict[str, int] = {}
        view = ChainMap(overlay, self.states)
        outcomes: Counter[str] = Counter()
        outputs: list[Outgoing] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, records in batch.items():
            country = country_of_topic(tp.topic)
            for record in records:
                decision = self.router.route(
                    Incoming(
                        country=country,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value or b"",
                        headers=tuple(record.headers or ()),
                    ),
                    view,
                )
                outcomes[decision.status.value] += 1
                if decision.status is ReceiptStatus.Rejected:
                    log.info(
                        "event_rejected",
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        case_id=decision.case_id,
                        reason=decision.reason.value if decision.reason else None,
                    )
                if decision.state is not None and decision.case_id is not None:
                    overlay[decision.case_id] = decision.state
                    overlay_partition[decision.case_id] = tp.partition
                outputs.extend(decision.outputs)
            offsets[tp] = records[-1].offset + 1
        try:
            async with producer.transaction():
                sends = [
                    await producer.send(out.topic, out.value, key=out.key, headers=out.headers)
                    for out in outputs
                ]
                for case_id, state in overlay.items():
                    sends.append(
                        await producer.send(
                            ROUTER_STATE,
                            state.model_dump_json().encode(),
                            key=case_id.encode(),
                            partition=overlay_partition[case_id],
                        )
                    )
                await asyncio.gather(*sends)
                await producer.send_offsets_to_transaction(offsets, self.group_id)
        except ProducerFenced:
            raise  # a newer instance with our transactional id took over: this one must end
        except KafkaError as error:
            # Nothing of the batch is visible: read it again from its first offsets.
            for tp, records in batch.items():
                consumer.seek(tp, records[0].offset)
            log.warning("router_batch_aborted", messages=sum(map(len, batch.values())), error=repr(error))
            return 0
        self.states.update(overlay)
        self.state_partition.update(overlay_partition)
        self.stats.batches += 1
        self.stats.outcomes.update(outcomes)
        handled = sum(outcomes.values())
        log.debug("router_batch_committed", messages=handled, **outcomes)
        return handled
