"""Exactly-once stream processing on Kafka transactions, the Kafka Streams way, on confluent-kafka.

A processor reads batches, computes their outputs and state changes in memory (pure code does the
thinking), and writes the outputs, the changed state (a compacted changelog co-partitioned with the
input) and the input offsets in ONE transaction, committed every ``commit_interval_ms`` (Kafka Streams'
commit.interval.ms). A crash before the commit aborts all of it and the batches are read again; a
crash after it has nothing to redo. An abort puts the state back as the changelog has it.

What makes it hold when workers scale out (see DESIGN §3):

* **Fencing (KIP-447).** Offsets go into the transaction with the consumer's group metadata
  (generation and member id), so a worker that was paused past its session timeout, or lost its
  partitions in a rebalance, cannot commit a transaction for partitions another worker now owns: the
  broker refuses it and the transaction aborts. A restarted instance keeps its transactional id, so
  Kafka fences the dead one and aborts whatever it left open.
* **Whole partition numbers.** Like Kafka Streams' tasks, a worker owns partition p of every input
  topic and of the changelog together. The group uses the range assignor, which gives every member
  the same partition numbers of every topic when all topics have the changelog's partition count; an
  assignment that splits a partition number across members anyway (a member that has not yet seen a
  new topic) is refused — nothing of it is processed — until the group agrees, and a topic with a
  different partition count is never read (a clear error, in the log and the health file).
* **State after the previous owner.** On assignment the committed offsets are fetched first (the
  broker holds them back while a previous owner's transaction is open), then the state is restored
  from the changelog up to its last stable offset, so it includes everything that owner committed.
  When the group takes partitions back, the open transaction is committed first (or aborted when
  they were lost), before they are released.
* **No poison pill.** Outputs are produced with a delivery report per message; a permanent
  per-message failure (too large for the topic, invalid for it, not allowed) aborts the batch once,
  and the batch is redone with that input marked, so the subclass gives it a receipt and a dead letter
  instead. Retriable errors are retried with backoff; a batch that keeps aborting shows as *stalled*
  in the health file instead of looping silently.

Subclasses say how to process a batch (and, optionally, what a timer emits) and how to read a state
record back; they never touch Kafka. The loop is synchronous (librdkafka serves rebalances inside
``consume``); :meth:`TransactionalProcessor.run` runs it in a thread for asyncio callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, cast

import structlog
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    ResourceType,
)

from hub.broker.tls import TrustContext
from hub.errors import LintasError
from hub.routing import Outgoing

log = structlog.get_logger("lintas.processor")


class ProcessorError(LintasError):
    """The processor cannot go on: fenced by a newer instance, a fatal client error, bad topics."""


class Part(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class Record:
    """One input message, independent of the Kafka client."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    @property
    def coordinates(self) -> Coordinates:
        return (self.topic, self.partition, self.offset)


#: Where an input came from: topic, partition, offset.
Coordinates = tuple[str, int, int]
Batch = dict[Part, list[Record]]


@dataclass(frozen=True)
class StateWrite:
    """A changelog record: ``value`` None deletes the key."""

    key: str
    value: bytes | None
    partition: int
    #: What ``value`` encodes, when the writer has it at hand: applying it then needs no decoding.
    decoded: object = None


@dataclass
class BatchResult:
    outputs: list[Outgoing] = field(default_factory=list)
    #: The input each output answers (None for timer outputs), so a failed output is traced back.
    origins: list[Coordinates | None] = field(default_factory=list)
    state: list[StateWrite] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Per input partition, the offset of the first record the subclass did not take yet: it and
    #: everything after it are offered again next time (see ``refresh``), and not committed.
    held: dict[Part, int] = field(default_factory=dict)

    def emit(self, outputs: Sequence[Outgoing], origin: Coordinates | None) -> None:
        self.outputs.extend(outputs)
        self.origins.extend([origin] * len(outputs))


@dataclass
class ProcessorStats:
    batches: int = 0
    aborts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Failure:
    """Why an input's outputs could not be written; ``attempt`` counts how often that happened."""

    error: str
    attempt: int


# Errors no retry can fix for the one message they concern; anything else is retried.
_PER_MESSAGE = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.POLICY_VIOLATION,
        KafkaError.INVALID_TIMESTAMP,
        KafkaError._INVALID_ARG,
        KafkaError.TOPIC_EXCEPTION,
    }
)


#: Failure attempts: 1 = a suspect (its outputs were in a refused request), 2 = refused alone (it
#: gets a rejection instead), 3 = its rejection refused too (a dead letter by reference); beyond
#: that it cannot be isolated and the batch is retried as a whole, with backoff.
_ISOLATION_ATTEMPTS = 3
#: A transaction holds at most this many batches, however short the commit interval is not.
_BATCHES_PER_TRANSACTION = 10


#: Errors after which the producer is replaced (see _abandon).
_UNSETTLED = frozenset({KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, KafkaError._TIMED_OUT, KafkaError._STATE})


@dataclass
class _Transaction:
    """What the open transaction holds beyond what Kafka keeps: input positions, counts, failures."""

    started: float
    offsets: dict[Part, int] = field(default_factory=dict)
    messages: int = 0
    outputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    #: Commit as soon as possible: records are held back until this transaction is visible.
    urgent: bool = False
    #: Inputs whose outputs Kafka refused for good, from the delivery reports.
    failed: dict[Coordinates, str] = field(default_factory=dict)

    def delivered(self, origin: Coordinates | None, error: KafkaError | None, _message: Message) -> None:
        if error is not None and origin is not None and error.code() in _PER_MESSAGE:
            self.failed.setdefault(origin, f"{error.name()}: {error.str()}")


@dataclass(frozen=True)
class ProcessorConfig:
    """Client settings the processor needs beyond the connection (see ``hub.settings``)."""

    session_timeout_ms: int = 45_000
    transaction_timeout_ms: int = 60_000
    #: Largest message the producer writes (librdkafka ``message.max.bytes``); topics allow a little more.
    max_message_bytes: int = 1_000_000
    metadata_refresh_ms: int = 5_000
    #: How long an assignment that splits partition numbers may last before the worker gives up.
    split_timeout_s: float = 120.0
    #: After this many aborts in a row of the same work the health file says "stalled".
    stalled_after: int = 3
    #: How long a transaction gathers batches before it commits (Kafka Streams' commit.interval.ms):
    #: fewer commits under load, at most this much added latency.
    commit_interval_ms: int = 100


def rdkafka_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """librdkafka connection settings from the aiokafka-style options of ``hub.kafka.client_options``."""
    names = {
        "security_protocol": "security.protocol",
        "sasl_mechanism": "sasl.mechanism",
        "sasl_plain_username": "sasl.username",
        "sasl_plain_password": "sasl.password",
    }
    config: dict[str, Any] = {}
    for key, value in options.items():
        if key == "ssl_context":
            # librdkafka takes a CA file, not a context: the hub's contexts remember theirs, and
            # any other context means the system's trusted CAs, librdkafka's default too.
            if isinstance(value, TrustContext):
                config["ssl.ca.location"] = value.cafile
            continue
        if key not in names:
            raise ProcessorError(f"client option {key!r} has no librdkafka equivalent")
        config[names[key]] = value
    return config


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
        config: ProcessorConfig | None = None,
        status_file: Path | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.instance = instance
        self.transactional_id = f"{group_id}-{instance}"
        self.topics = topics
        self.pattern = pattern
        self.max_batch = max_batch
        self.connection = rdkafka_options(client_options or {})
        self.auto_offset_reset = auto_offset_reset
        self.config = config or ProcessorConfig()
        self.health = Health(status_file, self._snapshot)
        self.stats = ProcessorStats()
        #: Partition numbers this instance owns (and whose state it holds).
        self.partitions: set[int] = set()
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._assigned: list[TopicPartition] = []
        self._lags: dict[tuple[str, int], int] = {}
        self._split_since: float | None = None
        self._resubscribed = 0.0
        self._failures: dict[Coordinates, Failure] = {}
        self._aborts_in_a_row = 0
        self._txn: _Transaction | None = None
        self._topic_limits: dict[str, int] = {}
        self._committed_since_offer = False
        self._closing = False
        self._admin: AdminClient | None = None
        self._kept_error: BaseException | None = None
        #: Records read but held back by the subclass (see BatchResult.held), per partition.
        self._held: dict[Part, list[Record]] = {}
        #: Committed position of each assigned input partition: where an abort rewinds to.
        self._committed_at: dict[Part, int] = {}
        self._ready = threading.Event()

    # -- what subclasses provide ----------------------------------------------------------------

    @abstractmethod
    def process(self, batch: Batch, failed: Mapping[Coordinates, Failure]) -> BatchResult:
        """Outputs and state changes of a batch; must not change ``self`` (applied on commit).

        ``failed`` holds the inputs whose outputs could not be written before, and why: give each
        of them what a rejected input gets instead (a receipt and a dead letter), fitting anywhere.
        """

    @abstractmethod
    def apply(self, write: StateWrite) -> None:
        """Take a committed (or restored) state record into memory."""

    @abstractmethod
    def forget(self, partitions: set[int]) -> None:
        """Drop the state of partitions this instance no longer owns."""

    def tick(self) -> BatchResult | None:
        """What a timer emits (nothing by default)."""
        return None

    def on_start(self) -> None:  # noqa: B027 - a hook, optional on purpose
        """Called once the clients are up, before the first batch (nothing by default)."""

    def on_stop(self) -> None:  # noqa: B027 - a hook, optional on purpose
        """Called when the processor stops (nothing by default)."""

    def on_abort(self) -> None:  # noqa: B027 - a hook, optional on purpose
        """Called when the open transaction was aborted (nothing by default)."""

    def refresh(self) -> bool:
        """Called before each batch: True when records held back should be offered again now."""
        return False

    # -- lifecycle --------------------------------------------------------------------------------

    def _connection(self, **extra: Any) -> dict[str, Any]:
        return {"bootstrap.servers": self.bootstrap, **self.connection, **extra}

    def start(self) -> None:
        config = self.config
        self._producer = self._new_producer()
        self._consumer = Consumer(
            self._connection(
                **{
                    "group.id": self.group_id,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": self.auto_offset_reset,
                    "isolation.level": "read_committed",
                    "partition.assignment.strategy": "range",
                    "session.timeout.ms": config.session_timeout_ms,
                    "heartbeat.interval.ms": max(500, config.session_timeout_ms // 10),
                    "max.poll.interval.ms": max(config.session_timeout_ms, 300_000),
                    "topic.metadata.refresh.interval.ms": config.metadata_refresh_ms,
                    "fetch.max.bytes": 64 * 1024 * 1024,
                    # The lag in the health file comes from librdkafka's own statistics, not from
                    # calls that take its locks: those could block the processing thread for a minute
                    # while a broker is down (seen once when the controller was killed).
                    "statistics.interval.ms": LAG_EVERY_MS,
                    "stats_cb": self._on_stats,
                }
            )
        )
        self._subscribe()
        self.on_start()
        self.health.update("starting")
        log.info("processor_started", transactional_id=self.transactional_id, group=self.group_id)

    def _new_producer(self) -> Producer:
        config = self.config
        producer = Producer(
            self._connection(
                **{
                    "transactional.id": self.transactional_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    # Java's murmur2, as aiokafka and Kafka's own clients use: a case id lands in the
                    # same partition number whoever wrote it, so case-keyed topics stay co-partitioned.
                    "partitioner": "murmur2_random",
                    "message.max.bytes": config.max_message_bytes,
                    # A batch larger than a topic's max.message.bytes is refused whole: stay below
                    # what every topic the hub creates takes (hub.limits.TOPIC_MAX_BYTES).
                    "batch.size": min(config.max_message_bytes, 512 * 1024),
                    "transaction.timeout.ms": config.transaction_timeout_ms,
                    "queue.buffering.max.messages": 1_000_000,
                    "queue.buffering.max.kbytes": 1_048_576,
                    # librdkafka does not time out a request to a group coordinator that left the
                    # cluster (librdkafka#5456, #5511): send_offsets_to_transaction then waits until
                    # some connection goes up or down. Closing idle connections within seconds is
                    # what wakes it, so losing the group's coordinator costs seconds, not minutes.
                    "connections.max.idle.ms": 5_000,
                }
            )
        )
        producer.init_transactions(30)  # fences and aborts what a predecessor left open
        return producer

    def _subscribe(self) -> None:
        consumer, _ = self._clients()
        subscription = [f"^{self.pattern.lstrip('^')}"] if self.pattern else list(self.topics)
        consumer.subscribe(
            subscription, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )

    def stop(self) -> None:
        self._closing = True
        self.on_stop()
        if self._txn is not None:
            with contextlib.suppress(KafkaException, ProcessorError):
                self._flush(restore=False)
        if self._consumer is not None:
            with contextlib.suppress(KafkaException, RuntimeError):
                self._consumer.close()  # leaves the group; what was open is committed above
            self._consumer = None
        if self._producer is not None:
            with contextlib.suppress(KafkaException):
                self._producer.flush(10)
            self._producer = None
        self.health.update("stopped")
        log.info(
            "processor_stopped", batches=self.stats.batches, aborts=self.stats.aborts, **self.stats.outcomes
        )

    def run_blocking(
        self, stop: threading.Event, *, tick_every: float | None = None, ready: threading.Event | None = None
    ) -> None:
        """Process until ``stop`` is set; ``ready`` is set once partitions are assigned and restored."""
        self.start()
        try:
            next_tick = time.monotonic()
            while not stop.is_set():
                self.step()
                if ready is not None and self._ready.is_set():
                    ready.set()
                if tick_every is not None and time.monotonic() >= next_tick:
                    self.emit_tick()
                    next_tick = time.monotonic() + tick_every
                self._check_split()
                self.health.heartbeat(recovered=self._aborts_in_a_row == 0)
        finally:
            self.stop()

    async def run(
        self,
        stop: asyncio.Event,
        started: asyncio.Event | None = None,
        *,
        tick_every: float | None = None,
    ) -> None:
        """:meth:`run_blocking` in a thread, for asyncio callers; ``started`` as ``ready`` there."""
        halt, ready = threading.Event(), threading.Event()
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(
            None, functools.partial(self.run_blocking, halt, tick_every=tick_every, ready=ready)
        )
        try:
            while not work.done():
                if started is not None and ready.is_set():
                    started.set()
                if stop.is_set():
                    halt.set()
                await asyncio.wait({work}, timeout=0.02)
            await work
        finally:
            halt.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(work)

    def _clients(self) -> tuple[Consumer, Producer]:
        if self._consumer is None or self._producer is None:
            raise RuntimeError(f"{type(self).__name__}.start() has not been called")
        return self._consumer, self._producer

    # -- assignment: whole partition numbers, offsets before state ---------------------------------

    def _input_topics(self) -> dict[str, int]:
        """The input topics the cluster has now, with their partition counts."""
        # Asked of the admin client, never of the consumer: this runs in the consumer's rebalance
        # callback, and a list_topics() on the same handle there clears confluent-kafka's record
        # of the consume() call under way, so the next callback of that call (a revocation right
        # after an assignment) aborts the process (CallState_get: Assertion `cs != NULL').
        metadata = self._admin_client().list_topics(timeout=10)
        if self.pattern is not None:
            matcher = re.compile(self.pattern)
            names = [name for name in metadata.topics if matcher.match(name)]
        else:
            names = [name for name in self.topics if name in metadata.topics]
        counts = {name: len(metadata.topics[name].partitions) for name in names}
        changelog = metadata.topics.get(self.changelog)
        if changelog is None or changelog.error is not None or not changelog.partitions:
            raise ProcessorError(f"changelog topic {self.changelog} does not exist (run lintas topics init)")
        counts[self.changelog] = len(changelog.partitions)
        return counts

    # librdkafka calls these inside consume(); an exception must not cross its C frames, so it is
    # kept and raised when consume() returns.

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._closing:
            consumer.assign([])
            return
        self._guarded(self._assign, consumer, partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._guarded(self._revoke, consumer, partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._guarded(self._lose, consumer, partitions)

    def _guarded(
        self,
        call: Callable[[Consumer, list[TopicPartition]], None],
        consumer: Consumer,
        partitions: list[TopicPartition],
    ) -> None:
        try:
            call(consumer, partitions)
        except BaseException as exc:
            self._kept_error = self._kept_error or exc

    def _raise_kept(self) -> None:
        error, self._kept_error = self._kept_error, None
        if error is not None:
            raise error

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        counts = self._input_topics()
        width = counts.pop(self.changelog)
        misfits = sorted(topic for topic, count in counts.items() if count != width)
        if misfits:
            # Keys would land in other partition numbers there: reading it would split cases.
            message = (
                f"topics {', '.join(misfits)} do not have the {width} partitions of {self.changelog}; "
                "they are not read until they do (all input topics need the changelog's partition count)"
            )
            log.error("input_topics_misfit", topics=misfits, partitions=width)
            self.health.error = message
        usable = [tp for tp in partitions if tp.topic not in misfits]
        numbers = {tp.partition for tp in usable}
        owned = {(tp.topic, tp.partition) for tp in usable}
        missing = sorted(
            f"{topic}[{number}]"
            for number in numbers
            for topic in counts
            if topic not in misfits and (topic, number) not in owned
        )
        if missing:
            # Another member holds part of these numbers: process none of it until the group agrees.
            log.warning("assignment_split", partitions=sorted(numbers), not_assigned=missing[:10])
            self._split_since = self._split_since or time.monotonic()
            self.health.update("split", detail=f"not assigned here: {', '.join(missing[:10])}")
            consumer.assign([])
            self._assigned = []
            return
        self._split_since = None
        started = time.monotonic()
        positioned = self._positions(consumer, usable)
        self.partitions = numbers
        self.health.update("restoring")
        restored = self._restore(numbers)
        consumer.assign(positioned)
        self._assigned = positioned
        self._committed_at = {Part(tp.topic, tp.partition): tp.offset for tp in positioned}
        self.health.update("running")
        self._ready.set()
        log.info(
            "partitions_assigned",
            partitions=sorted(numbers),
            topics=len({tp.topic for tp in usable}),
            restored=restored,
            seconds=round(time.monotonic() - started, 3),
        )

    def _positions(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """Where to start each partition: its committed offset, waiting for a previous owner's
        open transaction to end (the broker answers UNSTABLE_OFFSET_COMMIT until then)."""
        if not partitions:
            return []
        deadline = time.monotonic() + self.config.transaction_timeout_ms / 1000 + 30
        while True:
            try:
                committed = consumer.committed(partitions, timeout=10)
                break
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                # Anything but shutting down is waited out: an open transaction of the previous
                # owner, a coordinator moving or loading.
                ending = self._closing or error.fatal() or error.code() == KafkaError._DESTROY
                if ending or time.monotonic() > deadline:
                    raise ProcessorError(f"committed offsets of {self.group_id}: {exc}") from exc
                log.info("committed_offsets_pending", error=str(exc))
                time.sleep(0.2)
        positioned = []
        for tp in committed:
            if tp.offset == OFFSET_INVALID or tp.offset < 0:
                if self.auto_offset_reset == "latest":
                    _, high = consumer.get_watermark_offsets(tp, timeout=10)
                    tp = TopicPartition(tp.topic, tp.partition, high)
                else:
                    tp = TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING)
            positioned.append(tp)
        return positioned

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The group asks for the partitions back: commit what is open first (the generation is
        # still ours until we rejoin); if that fails, it is aborted and the next owner redoes it.
        self._flush(restore=False)
        self._release(consumer, partitions)

    def _lose(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The partitions are already someone else's: what is open must not be committed.
        if self._txn is not None:
            self._abandon(KafkaError(KafkaError._STATE, "partitions lost"), restore=False)
        self._release(consumer, partitions)

    def _release(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.forget(set(self.partitions))
        self.partitions = set()
        self._assigned = []
        self._committed_at = {}
        self._held = {}
        self._failures.clear()
        with contextlib.suppress(KafkaException, RuntimeError):
            consumer.unassign()
        log.info("partitions_revoked", count=len(partitions))

    def _check_split(self) -> None:
        if self._split_since is None:
            return
        now = time.monotonic()
        waited = now - self._split_since
        if waited > 3 and now - self._resubscribed > 10:
            # Ask the group to assign again: members that had not seen every topic see them now.
            self._resubscribed = now
            consumer, _ = self._clients()
            consumer.unsubscribe()
            self._subscribe()
        if waited > self.config.split_timeout_s:
            raise ProcessorError(
                f"group {self.group_id} kept assigning parts of the same partition numbers to different "
                f"members for {waited:.0f} s; do all members subscribe to the same topics?"
            )

    # -- state ----------------------------------------------------------------------------------

    def _restore(self, partitions: set[int]) -> int:
        """Rebuild the state of the assigned partitions from the committed changelog, up to its
        last stable offset (read_committed); returns the records read."""
        if not partitions:
            return 0
        restored = 0
        for write in changelog_records(self._connection(), self.changelog, sorted(partitions)):
            self.apply(write)
            restored += 1
        return restored

    # -- transactions ---------------------------------------------------------------------------

    def step(self, timeout: float = 0.2) -> int:
        """Read and process one batch into the open transaction, and commit it when it is due;
        returns the number of messages read."""
        consumer, _ = self._clients()
        # Held records are offered again after each commit (it may be what they waited for) and
        # whenever the subclass says what they wait for has come.
        offer_held = self.refresh() or self._committed_since_offer
        self._committed_since_offer = False
        if self._held:
            timeout = min(timeout, 0.01)  # held records wait on something else: look again soon
        if self._txn is not None:  # wait no longer than the open transaction may stay open
            left = self.config.commit_interval_ms / 1000 - (time.monotonic() - self._txn.started)
            timeout = max(0.0, min(timeout, left))
        # consume(n, timeout) waits until n messages or the timeout: take what is there, else wait
        # for the first one only, so a trickle is not held back by the batch size.
        messages = consumer.consume(num_messages=self.max_batch, timeout=0)
        if not messages:
            messages = consumer.consume(num_messages=1, timeout=timeout)
            if messages:
                messages += consumer.consume(num_messages=self.max_batch - 1, timeout=0)
        self._raise_kept()
        batch: Batch = {part: list(records) for part, records in self._held.items()}
        read = 0
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise ProcessorError(f"consumer: {error}")
                log.warning("consume_error", error=str(error))
                continue
            record = _record(message)
            batch.setdefault(Part(record.topic, record.partition), []).append(record)
            read += 1
        if read or (offer_held and batch):
            self._held = {}
            self._add(batch)
        elif batch:
            self._held = batch
        # Fetched again: an abort above may have replaced the producer.
        self._clients()[1].poll(0)  # delivery reports: a refused output ends the transaction early
        if self._due():
            self._flush()
        return read

    def emit_tick(self) -> int:
        """Commit what the timer emits (after what is open); returns the number of outputs."""
        if self._txn is not None:
            self._flush()
        result = self.tick()
        if result is None or not (result.outputs or result.state):
            return 0
        txn = self._begin()
        try:
            self._write(txn, result)
        except _Produced as produced:
            self._abandon(produced.error)
            return 0
        return len(result.outputs) if self._flush() else 0

    def _begin(self) -> _Transaction:
        if self._txn is None:
            _, producer = self._clients()
            producer.begin_transaction()
            self._txn = _Transaction(time.monotonic())
        return self._txn

    def _add(self, batch: Batch) -> None:
        batch, kept = self._isolate_suspects(batch)
        for part, records in kept.items():
            self._held[part] = records
        txn = self._begin()
        txn.urgent = txn.urgent or bool(kept)
        if not batch:
            return
        result = self.process(batch, self._failures)
        try:
            self._write(txn, result)
        except _Produced as produced:  # refused before sending (e.g. over message.max.bytes)
            self._abandon(produced.error)
            return
        for part, records in batch.items():
            held_from = result.held.get(part)
            if held_from is None:
                txn.offsets[part] = records[-1].offset + 1
                continue
            self._held[part] = [
                *[record for record in records if record.offset >= held_from],
                *self._held.get(part, []),
            ]
            if held_from > records[0].offset:
                txn.offsets[part] = held_from
        txn.messages += sum(len(records) for records in batch.values())
        txn.urgent = txn.urgent or bool(result.held)  # what is held waits for this commit

    def _isolate_suspects(self, batch: Batch) -> tuple[Batch, Batch]:
        """(what to process now, what to hold). Kafka refuses a whole request when one of its
        messages is bad, so every input with an output in it is only a suspect: each suspect is
        processed alone, in a transaction of its own, to tell the bad one from the others."""
        suspects = {origin for origin, failure in self._failures.items() if failure.attempt == 1}
        if not suspects:
            return batch, {}
        now: Batch = {}
        later: Batch = {}
        for part, records in batch.items():
            cut = next((i for i, r in enumerate(records) if r.coordinates in suspects), len(records))
            if cut:
                now[part] = records[:cut]
            if cut < len(records):
                later[part] = records[cut:]
        if now:
            return now, later  # the innocent first, then the suspects one by one
        part, records = next(iter(later.items()))
        alone = {part: records[:1]}
        rest = {p: (r[1:] if p == part else r) for p, r in later.items()}
        return alone, {p: r for p, r in rest.items() if r}

    def _write(self, txn: _Transaction, result: BatchResult) -> None:
        """Produce a result into the open transaction and take its state into memory at once, so the
        next batch of the same transaction sees it (an abort restores the state from the changelog)."""
        _, producer = self._clients()
        origins = [*result.origins, *[None] * (len(result.outputs) - len(result.origins))]
        for out, origin in zip(result.outputs, origins, strict=True):
            self._produce(producer, txn, out.topic, out.value, out.key, out.headers, None, origin)
        for write in result.state:
            self._produce(
                producer, txn, self.changelog, write.value, write.key.encode(), None, write.partition, None
            )
            self.apply(write)
        txn.outputs += len(result.outputs)
        txn.outcomes.update(result.outcomes)

    def _due(self) -> bool:
        txn = self._txn
        if txn is None:
            return False
        return (
            txn.urgent
            or bool(txn.failed)
            or txn.messages >= self.max_batch * _BATCHES_PER_TRANSACTION
            or time.monotonic() - txn.started >= self.config.commit_interval_ms / 1000
        )

    def _flush(self, *, restore: bool = True) -> bool:
        """Commit the open transaction with its input offsets; on failure abort it (see _abandon)."""
        txn = self._txn
        if txn is None:
            return True
        consumer, producer = self._clients()
        try:
            if txn.failed:
                raise _Produced(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "an output was refused"))
            if txn.offsets:
                offsets = [
                    TopicPartition(part.topic, part.partition, offset) for part, offset in txn.offsets.items()
                ]
                # The group's generation and member id go with the offsets: a worker that lost these
                # partitions in a rebalance is refused here, whatever it wrote before (KIP-447).
                metadata = consumer.consumer_group_metadata()
                _retrying(lambda: producer.send_offsets_to_transaction(offsets, metadata, 30))
            _retrying(lambda: producer.commit_transaction(60))
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.fatal():
                if error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED):
                    raise ProcessorError(
                        f"transactional id {self.transactional_id} was fenced: a newer instance took it "
                        "over, or Kafka aborted a transaction open longer than the transaction timeout"
                    ) from exc
                raise ProcessorError(f"producer: {error}") from exc
            self._abandon(error, restore=restore)
            return False
        except _Produced as produced:
            self._abandon(produced.error, restore=restore)
            return False
        self._txn = None
        self._aborts_in_a_row = 0
        self._committed_since_offer = True
        self._committed_at.update(txn.offsets)
        self._failures = {
            origin: failure
            for origin, failure in self._failures.items()
            if origin[2] >= self._committed_at.get(Part(origin[0], origin[1]), 0)
        }
        self.stats.batches += 1
        self.stats.outcomes.update(txn.outcomes)
        return True

    def _produce(
        self,
        producer: Producer,
        txn: _Transaction,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
        origin: Coordinates | None,
    ) -> None:
        options: dict[str, Any] = {"on_delivery": functools.partial(txn.delivered, origin)}
        if headers:
            options["headers"] = list(headers)
        if partition is not None:
            options["partition"] = partition
        while True:
            try:
                producer.produce(topic, value, key, **options)
                return
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let deliveries drain it
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.code() in _PER_MESSAGE and origin is not None:
                    txn.failed.setdefault(origin, f"{error.name()}: {error.str()}")
                raise _Produced(error) from exc

    def _abandon(self, error: KafkaError, *, restore: bool = True) -> None:
        """Abort the open transaction; the state goes back to what the changelog holds and the
        inputs back to their committed positions. Inputs whose outputs Kafka refused for good are
        marked, so that the redo rejects them instead; anything else is retried after a backoff."""
        txn = self._txn
        self._txn = None
        self._held = {}  # read again from the committed positions
        consumer, producer = self._clients()
        try:
            _retrying(lambda: producer.abort_transaction(30))
        except KafkaException as exc:
            raise ProcessorError(f"producer: cannot abort the transaction: {exc.args[0]}") from exc
        self.stats.aborts += 1
        self._topic_limits.clear()  # a topic may take less than it did
        self.on_abort()
        failed = txn.failed if txn is not None else {}
        for origin, reason in failed.items():
            previous = self._failures.get(origin)
            self._failures[origin] = Failure(reason, previous.attempt + 1 if previous else 1)
        # An input whose replacement outputs fail too, again and again, cannot be isolated.
        isolated = bool(failed) and all(self._failures[o].attempt <= _ISOLATION_ATTEMPTS for o in failed)
        if not isolated:
            self._aborts_in_a_row += 1
        log.warning(
            "transaction_aborted",
            outputs=txn.outputs if txn is not None else 0,
            error=str(error),
            failed_inputs=len(failed),
            aborts_in_a_row=self._aborts_in_a_row,
        )
        if failed or error.code() in _UNSETTLED:
            # After Kafka refused part of a request the idempotent producer's sequence numbers for
            # those partitions may not recover in place: start afresh under the same id.
            producer.close()
            self._producer = self._new_producer()
        if not restore:
            return
        partitions = set(self.partitions)
        self.forget(partitions)
        self._restore(partitions)
        for part, position in self._committed_at.items():
            try:
                consumer.seek(TopicPartition(part.topic, part.partition, position))
            except KafkaException as exc:
                log.warning("rewind_failed", topic=part.topic, partition=part.partition, error=str(exc))
        if self._aborts_in_a_row >= self.config.stalled_after:
            self.health.update("stalled", detail=str(error))
        if not isolated:  # back off before reading the inputs again
            time.sleep(min(5.0, 0.1 * 2 ** min(self._aborts_in_a_row, 6)))

    def _admin_client(self) -> AdminClient:
        if self._admin is None:  # one, kept: destroying clients with replies pending is unsafe
            self._admin = AdminClient(self._connection())
        return self._admin

    def topic_limit(self, topic: str) -> int:
        """The largest message ``topic`` takes: the producer's limit, or the topic's own
        ``max.message.bytes`` when smaller (read once per topic; a refused message reads it again)."""
        limit = self._topic_limits.get(topic)
        if limit is None:
            limit = self.config.max_message_bytes
            admin = self._admin_client()
            try:
                (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
                entry = future.result(timeout=10).get("max.message.bytes")
                if entry is not None and entry.value is not None:
                    limit = min(limit, int(entry.value))
            except (KafkaException, ValueError, TimeoutError) as exc:
                log.warning("topic_limit_unknown", topic=topic, error=str(exc))
            self._topic_limits[topic] = limit
        return limit

    # -- health ----------------------------------------------------------------------------------

    def _snapshot(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "group": self.group_id,
            "partitions": sorted(self.partitions),
            "lag": self.lag(),
            "batches": self.stats.batches,
            "aborts": self.stats.aborts,
            "outcomes": dict(self.stats.outcomes),
        }

    def lag(self) -> dict[str, int]:
        """Messages behind the end of each assigned input partition, as librdkafka's last statistics
        (every ``LAG_EVERY_MS``) saw them."""
        assigned = {(tp.topic, tp.partition) for tp in self._assigned}
        return {
            f"{topic}[{partition}]": lag
            for (topic, partition), lag in self._lags.items()
            if (topic, partition) in assigned
        }

    def _on_stats(self, text: str) -> None:
        # Called by librdkafka from within consume(): parses only, makes no call on a client.
        self._lags = partition_lags(text)


#: How often librdkafka reports its statistics, the lag in the health files among them.
LAG_EVERY_MS = 5000


def partition_lags(statistics: str) -> dict[tuple[str, int], int]:
    """Each partition's consumer lag in a librdkafka statistics document (unknown ones left out)."""
    try:
        document = json.loads(statistics)
    except ValueError:
        return {}
    lags: dict[tuple[str, int], int] = {}
    for topic, body in (document.get("topics") or {}).items():
        for partition, figures in (body.get("partitions") or {}).items():
            if partition == "-1":
                continue
            high, read = figures.get("hi_offset", -1), figures.get("app_offset", -1)
            # What was handed to the processor, else what the group committed (consumer_lag).
            lag = high - read if high >= 0 and read >= 0 else figures.get("consumer_lag", -1)
            if isinstance(lag, int) and lag >= 0:
                lags[(topic, int(partition))] = lag
    return lags


def _retrying(call: Callable[[], None], attempts: int = 10) -> None:
    """A transactional call, repeated while librdkafka says it may be (a timed-out commit is still
    in progress and must be called again, never aborted)."""
    for attempt in range(attempts):
        try:
            call()
            return
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if not error.retriable() or attempt == attempts - 1:
                raise
            log.warning("transaction_call_retried", error=str(error), attempt=attempt + 1)
            time.sleep(min(2.0, 0.1 * 2**attempt))


class _Produced(Exception):
    def __init__(self, error: KafkaError) -> None:
        super().__init__(str(error))
        self.error = error


def _record(message: Message) -> Record:
    # A message without an error always has its topic, partition and offset; headers are bytes
    # for what Kafka delivers.
    return Record(
        cast(str, message.topic()),
        cast(int, message.partition()),
        cast(int, message.offset()),
        message.key(),
        message.value(),
        cast("Sequence[tuple[str, bytes]]", message.headers() or ()),
    )


def changelog_records(
    connection: dict[str, Any], changelog: str, partitions: Sequence[int]
) -> Sequence[StateWrite]:
    """The committed records of the changelog's ``partitions``, from the beginning up to the last
    stable offset each had when reading started (read_committed: aborted writes never show)."""
    consumer = Consumer(
        {
            **connection,
            "group.id": f"lintas-restore-{os.getpid()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    writes: list[StateWrite] = []
    try:
        pending = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(changelog, partition), timeout=10)
            if high > low:
                pending[partition] = high
        consumer.assign([TopicPartition(changelog, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                error = message.error()
                partition = cast(int, message.partition())
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.pop(partition, None)
                        continue
                    raise ProcessorError(f"restoring {changelog}: {error}")
                key = message.key()
                if key is not None:
                    writes.append(StateWrite(key.decode(), message.value(), partition))
                if cast(int, message.offset()) + 1 >= pending.get(partition, 0):
                    pending.pop(partition, None)
    finally:
        consumer.close()
    return writes


# -- health ------------------------------------------------------------------------------------------


class Health:
    """What an operator or an orchestrator needs to know, in a JSON file replaced atomically:
    ``state`` (starting, restoring, running, split, stalled, stopped), the partitions owned, the lag
    per input partition, counters and the last error. Fresh ``updated`` = live; ``running`` = ready."""

    def __init__(self, path: Path | None, snapshot: Callable[[], dict[str, Any]], every: float = 1.0) -> None:
        self.path = path
        self.snapshot = snapshot
        self.every = every
        self.state = "starting"
        self.detail = ""
        self.error = ""
        self._written = 0.0

    def update(self, state: str, *, detail: str = "") -> None:
        if state != self.state:
            log.info("health_changed", state=state, detail=detail or None)
        self.state, self.detail = state, detail
        self._write()

    def heartbeat(self, *, recovered: bool) -> None:
        if self.state == "stalled" and recovered:
            self.update("running")
        if time.monotonic() - self._written >= self.every:
            self._write()

    def _write(self) -> None:
        self._written = time.monotonic()
        if self.path is None:
            return
        body = {
            "state": self.state,
            "ready": self.state == "running",
            "detail": self.detail,
            "error": self.error,
            "pid": os.getpid(),
            "updated": datetime.now(UTC).isoformat(),
            **self.snapshot(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(body, indent=1))
        temporary.replace(self.path)


def read_health(path: Path, *, stale_after: float = 30.0) -> tuple[bool, bool, dict[str, Any]]:
    """(live, ready, the file's content) of a worker's health file."""
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, False, {}
    updated = datetime.fromisoformat(body["updated"])
    live = (datetime.now(UTC) - updated).total_seconds() <= stale_after and body["state"] != "stopped"
    return live, live and bool(body["ready"]), body
