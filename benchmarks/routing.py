"""Routing throughput and latency on a real broker: ``lintas worker`` against confluent-kafka baselines.

Same broker, same run. Every contender reads a backlog of ``--events`` synthetic events (keyed by case id,
on the national topics ``lintas.nrm.<cc>.events``) with a consumer group of its own, seeded at the
backlog's first offsets, read_committed, and writes exactly once: one Kafka transaction per batch of at
most the worker's ``max_batch``, with the input offsets and the consumer's group metadata in it.

(a) passthrough 1 -> 1: each message produced unchanged to ``bench.passthrough.out``: what an exactly-once
    consume-produce loop costs on this machine with no work per message;
(b) fan-out 1 -> k: for each message exactly the records the hub writes for it (inbox message, accepted
    log and receipt; or receipt and dead letter) plus one case-state write per changed case per batch,
    the same bytes, to the hub's topic names under ``bench.fanout.``. They come from a dry run of the pure
    router (``Router.route``), in-process and untimed, over the same backlog in the order a consumer meets
    it: partition by partition, each national topic's records in offset order (its outcomes are printed
    next to the hub's, to compare). So (b) is the hub's Kafka traffic without its work, and hub / (b)
    (``ratio_vs_fanout``) is the hub's own overhead;
(c) the hub: 1, 2 and 3 ``lintas worker`` processes of one fresh group. The router remembers every case
    it routed (in a changelog every group shares), so each hub run reads a new backlog of the same shape
    (the same seed under other case ids). Its receipts are read back: every input must have exactly one.

Each backlog is written in one transaction that stays open while its contender starts, joins its group
and (the hub) restores its state; it is committed once the contender holds every input partition (the
hub: group stable, every worker's health file, when it keeps one, ready, and every worker idle). Then two
clocks: **per_s**, from the first commit seen to the last, counting the events committed after the first
(start-up, state restore, group join and the first batch are outside it; the hub's commits are seen by
polling the group's committed offsets every ``--poll`` s, the baselines' in-process); and
**per_s_from_visible**, every event from the moment the backlog became readable to the last commit. With
several workers the first clock also counts the other workers' first batches, begun before it started,
so it flatters scaling a little; the second does not. Every contender has a warm-up round that is not
counted, then ``--rounds`` rounds, interleaved (a, b, hub 1, 2, 3 in each), so the machine's noise falls on
all of them; each figure is the median of the rounds, with their range.

(d) latency, exactly once, one worker process: for each offered rate (``--rates``) a fresh worker (a new
group seeded at the current end offsets: new messages only) while an idempotent producer (linger 0)
publishes new cases (VictimIdentified, which the agreements route to the partner) at that pace for
``--seconds``, and a read_committed reader of the focal-point inboxes matches them by the ``ce_id``
header: latency = receive time - send time, the first ``--warmup`` seconds not counted; ``lost`` is how
many did not arrive within 30 s of the last send. ``p50_each_second`` is flat when the hub keeps up.

Figures are only comparable on the same machine in the same run: the load average is printed with them.
Without ``--bootstrap-servers`` a private broker is started in a temporary directory and stopped at the
end. Every wait has a deadline; a worker that exits fails the run with the end of its log. Prints a
table, then one JSON line of every figure.
Usage: python benchmarks/routing.py [--bootstrap-servers HOST:PORT] [--events N] [--rounds R]
       [--rates 200,2000] [--seconds S] [--warmup S] [--keep-logs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import inspect
import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

# Run as a script, this directory comes first on sys.path, and benchmarks/projections.py would stand in
# for the projections package that hub.cli imports: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from confluent_kafka import (
    Consumer,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from hub.agreements import load_agreements
from hub.broker import local as broker_local
from hub.limits import INPUT_MAX_BYTES

try:
    from hub.cli import make_router, national_systems
except Exception as exc:  # the worker's own module: without it there is no hub to measure
    raise SystemExit(
        f"routing benchmark: hub.cli does not import, nor can `lintas worker` start: {exc!r}"
    ) from exc
from hub.codec import Codec
from hub.contract import ReceiptStatus
from hub.events import Event
from hub.headers import Headers, envelope_headers
from hub.kafka import EventWriter, client_options, ensure_topics
from hub.routing import Incoming, country_of_topic, encode_route
from hub.settings import Settings
from hub.synthetic import CORRIDORS, synthetic_case, synthetic_stream
from hub.topics import (
    ACCEPTED_EVENTS,
    DEADLETTER,
    NRM_EVENTS_PATTERN,
    ROUTER_STATE,
    all_topics,
    focal_inbox,
    nrm_events,
    nrm_receipts,
)
from hub.wire.national import NationalSystems

REPO = Path(__file__).resolve().parent.parent
PASSTHROUGH_OUT = "bench.passthrough.out"
FANOUT_PREFIX = "bench.fanout."
#: The worker's batch size (``LINTAS_PROCESSOR__MAX_BATCH``); the baselines consume batches as large.
MAX_BATCH = getattr(getattr(Settings(), "processor", None), "max_batch", 2000)
TXN_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 180.0  # workers started, state restored, group stable
PHASE_TIMEOUT_S = 600.0  # one contender over one backlog
STALL_TIMEOUT_S = 90.0  # no committed progress at all for this long: the hub is stuck
STOP_TIMEOUT_S = 30.0  # SIGTERM to exit; SIGKILL after
ARRIVAL_TIMEOUT_S = 30.0  # latency: after the last send, how long the stragglers may take
Partition = tuple[str, int]
#: Errors of a client whose metadata is behind the broker's (a topic just created): ask again.
_METADATA_LAG = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._TIMED_OUT,
    }
)


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says what did not happen and within how long."""


# -- messages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    """A national system's message, encoded."""

    topic: str
    key: bytes
    value: bytes
    headers: Headers
    event_id: str


@dataclass(frozen=True)
class Placed:
    """Where the broker wrote a published message."""

    topic: str
    partition: int
    offset: int


def encoded(codec: EventWriter, events: Sequence[Event]) -> list[Outbound]:
    return [
        Outbound(
            nrm_events(e.envelope.source_country.value),
            e.envelope.case_id.encode(),
            codec.encode(e),
            envelope_headers(e.envelope),
            str(e.envelope.event_id),
        )
        for e in events
    ]


def backlog_events(count: int, seed: int, run_tag: str, now: datetime) -> list[Event]:
    """The first ``count`` events, in time order, of enough synthetic cases: a time prefix keeps every
    case's own events in order. The same seed with another tag gives the same stories under other case
    and event ids, so every backlog of a run has the same shape."""
    cases = max(1, count // 3)
    while True:
        stream = synthetic_stream(seed, cases, start=now - timedelta(days=540), until=now, run_tag=run_tag)
        events = list(itertools.islice(stream, count))
        if len(events) == count:
            return [_with_own_ids(event, run_tag) for event in events]
        cases *= 2


#: The version and variant bits of a UUID, which a remapped id keeps.
_UUID_FIXED = (0xF << 76) | (0x3 << 62)


def _with_own_ids(event: Event, run_tag: str) -> Event:
    """The event under ids of the tag's own: the seed draws the same ids for every tag, and an event id
    is unique the world over (the hub may remember it across cases). Every id of the envelope is XORed
    with one mask, so causation and correlation still link the same events."""
    mask = Random(run_tag).getrandbits(128) & ~_UUID_FIXED

    def own(value: uuid.UUID | None) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(int=value.int ^ mask)

    envelope = event.envelope
    update: dict[str, Any] = {
        "envelope": envelope.model_copy(
            update={
                "event_id": own(envelope.event_id),
                "correlation_id": own(envelope.correlation_id),
                "causation_id": own(envelope.causation_id),
            }
        )
    }
    target = getattr(event, "target_event_id", None)
    if target is not None:  # a correction or retraction names its target by id
        update["target_event_id"] = own(target)
    return event.model_copy(update=update)


def new_cases(rate: int, seconds: float, run_tag: str, now: datetime) -> list[Event]:
    """One VictimIdentified per new case, spread over the corridors (each has an agreement)."""
    rng = Random(run_tag)
    start = now - timedelta(days=1)
    return [
        synthetic_case(rng, CORRIDORS[i % len(CORRIDORS)], i, start, complete=0.0, run_tag=run_tag)[0]
        for i in range(math.ceil(rate * seconds))
    ]


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


# -- Kafka plumbing ---------------------------------------------------------------------------------


def kafka_config(settings: Settings, bootstrap: str) -> dict[str, Any]:
    """librdkafka settings shared by every client of the benchmark; SASL only when configured."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "security.protocol": settings.security_protocol,
        "log.connection.close": False,
    }
    if settings.sasl_mechanism:
        config["sasl.mechanism"] = settings.sasl_mechanism
        config["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            config["sasl.password"] = settings.sasl_password.get_secret_value()
    return config


def _raise_on_error(message: Message) -> None:
    error = message.error()
    if error is not None:
        raise BenchmarkError(f"consuming {message.topic()}[{message.partition()}]: {error}")


class Cluster:
    """Metadata, offsets and topic creation, through one admin client and one unsubscribed consumer."""

    def __init__(self, config: dict[str, Any], replication_factor: int = 1) -> None:
        self.config = config
        self.replication_factor = replication_factor
        self.admin = AdminClient(config)
        self.meta = Consumer(
            {**config, "group.id": f"bench-meta-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
        )

    def close(self) -> None:
        self.meta.close()

    def partitions(self, topics: Sequence[str] | None = None, pattern: str | None = None) -> list[Partition]:
        metadata = self.admin.list_topics(timeout=30)
        names = sorted(
            name
            for name in metadata.topics
            if (topics is not None and name in topics) or (pattern is not None and re.match(pattern, name))
        )
        if topics is not None and (missing := set(topics) - set(names)):
            raise BenchmarkError(f"topics {', '.join(sorted(missing))} do not exist")
        return [(name, p) for name in names for p in sorted(metadata.topics[name].partitions)]

    def end_offsets(self, partitions: Sequence[Partition], within: float = 30.0) -> dict[Partition, int]:
        return {tp: self._end_offset(tp, time.monotonic() + within) for tp in partitions}

    def _end_offset(self, tp: Partition, deadline: float) -> int:
        while True:
            try:
                return int(self.meta.get_watermark_offsets(TopicPartition(*tp), timeout=30, cached=False)[1])
            except KafkaException as exc:  # a new topic's leader not yet known to this client
                error = exc.args[0]
                if not (error.retriable() or error.code() in _METADATA_LAG) or time.monotonic() > deadline:
                    raise BenchmarkError(f"end offset of {tp[0]}[{tp[1]}]: {exc}") from exc
                time.sleep(0.2)

    def create(self, names: Sequence[str], partitions: int, *, compacted: Sequence[str] = ()) -> None:
        """Create the topics that are missing and wait until every partition has a leader."""
        present = set(self.admin.list_topics(timeout=30).topics)
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=self.replication_factor,
                config={"cleanup.policy": "compact"} if name in compacted else {},
            )
            for name in names
            if name not in present
        ]
        if new:
            for name, future in self.admin.create_topics(new, request_timeout=30).items():
                try:
                    future.result(60)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise BenchmarkError(f"creating topic {name}: {exc}") from exc
        self.await_leaders(names)

    def await_leaders(self, names: Sequence[str], within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while True:
            topics = self.admin.list_topics(timeout=30).topics
            leaderless = [
                name
                for name in names
                if name not in topics
                or topics[name].error is not None
                or not topics[name].partitions
                or any(p.leader < 0 for p in topics[name].partitions.values())
            ]
            if not leaderless:
                return
            if time.monotonic() > deadline:
                raise BenchmarkError(f"topics {', '.join(leaderless)} have no leaders after {within:.0f} s")
            time.sleep(0.1)

    def group(self, group_id: str) -> Any:
        """The group's description (state, members, assignments)."""
        return self.admin.describe_consumer_groups([group_id], request_timeout=10)[group_id].result(30)


def seed_group(config: dict[str, Any], group_id: str, offsets: dict[Partition, int]) -> None:
    """Commit ``offsets`` for a new, empty group, so that it starts there: a contender reads this round's
    backlog and nothing before it."""
    consumer = Consumer({**config, "group.id": group_id, "enable.auto.commit": False})
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, offset) for (t, p), offset in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


class OpenBacklog:
    """A backlog written in one transaction, left open until :meth:`commit`: read_committed readers
    see none of it before and all of it at once after."""

    def __init__(self, config: dict[str, Any], messages: Sequence[Outbound], transactional_id: str) -> None:
        self.messages = messages
        self.producer = Producer(
            {
                **config,
                "transactional.id": transactional_id,
                "transaction.timeout.ms": 600_000,  # the workers' start-up happens inside it
                "linger.ms": 5,
                # librdkafka batches up to 1 MB; a national topic takes at most INPUT_MAX_BYTES a batch.
                "batch.size": INPUT_MAX_BYTES // 2,
                "partitioner": "murmur2_random",  # the Java client's, as national systems' would be
            }
        )
        self.placed: list[Placed | None] = [None] * len(messages)
        self.failed: list[str] = []
        self.open = False
        self.seconds = 0.0

    def write(self, within: float = 120.0) -> OpenBacklog:
        started = time.perf_counter()
        self.producer.init_transactions(TXN_TIMEOUT_S)
        self.producer.begin_transaction()
        self.open = True
        for index, m in enumerate(self.messages):
            while True:
                try:
                    self.producer.produce(
                        m.topic,
                        m.value,
                        m.key,
                        headers=m.headers,
                        on_delivery=lambda err, msg, i=index: self._delivered(i, err, msg),
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)
            self.producer.poll(0)
        if self.producer.flush(within):
            raise BenchmarkError(f"publishing the backlog: not delivered within {within:.0f} s")
        if self.failed:
            raise BenchmarkError(f"publishing the backlog: {len(self.failed)} failed, first {self.failed[0]}")
        self.seconds = time.perf_counter() - started
        return self

    def _delivered(self, index: int, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            self.placed[index] = Placed(msg.topic(), msg.partition(), msg.offset())

    def commit(self) -> float:
        """Make the backlog readable; returns when it became so (``time.perf_counter``)."""
        self.producer.commit_transaction(TXN_TIMEOUT_S)
        self.open = False
        return time.perf_counter()

    def close(self) -> None:
        """Abort the transaction if it is still open, and let the producer go."""
        with contextlib.suppress(KafkaException):
            if self.open:
                self.producer.abort_transaction(TXN_TIMEOUT_S)
            self.producer.close()
        self.open = False

    def where(self) -> list[Placed]:
        return [p for p in self.placed if p is not None]

    def offsets(self) -> dict[Partition, list[int]]:
        """Each partition's record offsets, ascending."""
        found: dict[Partition, list[int]] = {}
        for p in self.where():
            found.setdefault((p.topic, p.partition), []).append(p.offset)
        return {tp: sorted(offsets) for tp, offsets in found.items()}


# -- the dry run: what the hub writes for each message ---------------------------------------------


@dataclass(frozen=True)
class Planned:
    """The hub's writes for one input, as the fan-out repeats them."""

    outputs: tuple[tuple[str, bytes | None, bytes, Headers | None], ...]
    state: tuple[bytes, bytes] | None  # case id, encoded case state; None when the case is unchanged


@dataclass
class Plan:
    events: int
    by_offset: dict[tuple[str, int, int], Planned]
    outcomes: Counter[str]
    reasons: Counter[str]
    outputs: int
    kinds: Counter[str]  # the router's outputs by topic kind
    states_changed: int
    seconds: float
    topics: set[str] = field(default_factory=set)

    @property
    def k(self) -> float:
        return self.outputs / self.events


def dry_run(settings: Settings, codec: Codec, messages: Sequence[Outbound], placed: Sequence[Placed]) -> Plan:
    """``Router.route`` over the backlog in the order a consumer meets it: partition by partition, each
    national topic's records in offset order (a case's events share a partition number across topics),
    the case states carried from one decision to the next."""
    router = make_router(settings, codec)
    states: dict[str, Any] = {}
    plan: dict[tuple[str, int, int], Planned] = {}
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    topics: set[str] = set()
    outputs = changed = 0
    order = sorted(
        range(len(messages)), key=lambda i: (placed[i].partition, placed[i].topic, placed[i].offset)
    )
    started = time.perf_counter()
    for i in order:
        m, where = messages[i], placed[i]
        incoming = Incoming(
            country_of_topic(where.topic),
            where.topic,
            where.partition,
            where.offset,
            m.key,
            m.value,
            tuple(m.headers),
        )
        try:
            decision = router.route(incoming, states)
        except Exception as exc:  # the router must decide on any input; this one it could not
            raise BenchmarkError(
                f"dry run: Router.route raised on {where.topic}[{where.partition}]@{where.offset}: {exc!r}"
            ) from exc
        outcomes[decision.status.value] += 1
        if decision.reason is not None:
            reasons[decision.reason.value] += 1
        state = None
        if decision.state is not None and decision.case_id is not None:
            states[decision.case_id] = decision.state
            state = (decision.case_id.encode(), encode_route(decision.state))
            changed += 1
        writes = tuple(
            (FANOUT_PREFIX + o.topic, o.key, o.value, list(o.headers) or None) for o in decision.outputs
        )
        topics.update(o.topic for o in decision.outputs)
        kinds.update(topic_kind(o.topic) for o in decision.outputs)
        outputs += len(writes)
        plan[(where.topic, where.partition, where.offset)] = Planned(writes, state)
    return Plan(
        len(messages), plan, outcomes, reasons, outputs, kinds, changed, time.perf_counter() - started, topics
    )


# -- (a) and (b): the confluent-kafka baselines ------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """A contender's pass over one backlog, timed two ways.

    ``events`` / ``seconds``: the events committed after the first commit seen, over the time from it to
    the last (start-up, group join and the first batch are outside the clock). ``total`` /
    ``from_visible``: every event, from the moment the backlog's transaction was committed (readable) to
    the last commit, so the first fetch and batch are inside it. A backlog small enough to be committed
    between two polls has no first-commit clock: then the second way stands in (``fallback``)."""

    events: int
    seconds: float
    total: int
    from_visible: float
    transactions: int = 0
    writes: int = 0
    state_writes: int = 0

    @property
    def fallback(self) -> bool:
        return self.seconds <= 0 or self.events <= 0

    @property
    def per_s(self) -> float:
        return self.per_s_from_visible if self.fallback else self.events / self.seconds

    @property
    def per_s_from_visible(self) -> float:
        return self.total / self.from_visible


class TransactionalCopy:
    """Consume the backlog and write it back exactly once, one transaction per batch: each message
    unchanged to ``bench.passthrough.out`` (no plan), else the hub's writes for it from the plan and one
    state write per changed case per batch. :meth:`join` before the backlog is readable, :meth:`run`
    after."""

    def __init__(self, config: dict[str, Any], group_id: str, state_topic: str = "") -> None:
        self.group_id = group_id
        self.state_topic = state_topic
        self.consumer = Consumer(
            {
                **config,
                "group.id": group_id,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            }
        )
        self.producer = Producer(
            {
                **config,
                "transactional.id": f"{group_id}-0",
                "linger.ms": 5,
                "batch.size": 1_000_000,
                "partitioner": "murmur2_random",
            }
        )

    def join(self, inputs: Sequence[Partition]) -> TransactionalCopy:
        """Subscribe and wait until every input partition is assigned (nothing is readable yet)."""
        self.producer.init_transactions(TXN_TIMEOUT_S)
        self.consumer.subscribe([NRM_EVENTS_PATTERN])
        deadline = time.monotonic() + READY_TIMEOUT_S
        wanted = set(inputs)
        while wanted - {(tp.topic, tp.partition) for tp in self.consumer.assignment()}:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"{self.group_id}: not assigned every input within {READY_TIMEOUT_S:.0f} s"
                )
            for m in self.consumer.consume(num_messages=MAX_BATCH, timeout=0.1):
                _raise_on_error(m)
                raise BenchmarkError(f"{self.group_id}: read {m.topic()}[{m.partition()}] before the backlog")
        return self

    def close(self) -> None:
        self.consumer.close()
        with contextlib.suppress(KafkaException):
            self.producer.close()

    def run(self, expected: int, visible: float, plan: Plan | None) -> Timed:
        consumer, producer = self.consumer, self.producer
        produce = producer.produce
        state_topic = self.state_topic
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        handled = writes = state_writes = transactions = 0
        first: tuple[float, int] | None = None
        last = 0.0
        while handled < expected:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"{self.group_id}: {handled} of {expected} after {PHASE_TIMEOUT_S:.0f} s"
                )
            batch = consumer.consume(num_messages=MAX_BATCH, timeout=0.2)
            if not batch:
                continue
            producer.begin_transaction()
            offsets: dict[Partition, int] = {}
            try:
                if plan is None:
                    for m in batch:
                        _raise_on_error(m)
                        produce(PASSTHROUGH_OUT, m.value(), m.key(), headers=m.headers())
                        offsets[(m.topic(), m.partition())] = m.offset() + 1
                    writes += len(batch)
                else:
                    changed: dict[bytes, tuple[bytes, int]] = {}
                    by_offset = plan.by_offset
                    for m in batch:
                        _raise_on_error(m)
                        topic, partition, offset = m.topic(), m.partition(), m.offset()
                        planned = by_offset[(topic, partition, offset)]
                        for out_topic, key, value, headers in planned.outputs:
                            produce(out_topic, value, key, headers=headers)
                        writes += len(planned.outputs)
                        if planned.state is not None:
                            changed[planned.state[0]] = (planned.state[1], partition)
                        offsets[(topic, partition)] = offset + 1
                    for key, (value, partition) in changed.items():
                        produce(state_topic, value, key, partition=partition)
                    writes += len(changed)
                    state_writes += len(changed)
            except BufferError as exc:
                raise BenchmarkError(f"{self.group_id}: the producer's queue is full; {exc}") from exc
            except KeyError as exc:
                raise BenchmarkError(f"{self.group_id}: read {exc}, which the dry run did not see") from exc
            producer.send_offsets_to_transaction(
                [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                consumer.consumer_group_metadata(),
                TXN_TIMEOUT_S,
            )
            producer.commit_transaction(TXN_TIMEOUT_S)
            last = time.perf_counter()
            transactions += 1
            handled += len(batch)
            if first is None:
                first = (last, handled)
        assert first is not None
        return Timed(
            handled - first[1], last - first[0], handled, last - visible, transactions, writes, state_writes
        )


# -- (c) and (d): the hub's workers -----------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text[-lines:])


class Workers:
    """``lintas worker`` processes of one group, each logging to its own file."""

    def __init__(self, bootstrap: str, group_id: str, count: int, log_dir: Path, partitions: int) -> None:
        self.bootstrap = bootstrap
        self.group_id = group_id
        self.count = count
        self.logs = [log_dir / f"{group_id}-w{i}.log" for i in range(count)]
        # Where a worker that keeps a health file writes it (``lintas health``): <group>-<instance>.json
        self.health_dir = log_dir / "health"
        self.partitions = partitions
        self.procs: list[subprocess.Popen[bytes]] = []
        self.exit_codes: list[int | None] = []

    def start(self) -> Workers:
        env = {
            **os.environ,
            "LINTAS_LOG_FORMAT": "json",
            "LINTAS_TOPICS__PARTITIONS": str(self.partitions),
            "LINTAS_PROCESSOR__STATUS_DIR": str(self.health_dir),
            "PYTHONUNBUFFERED": "1",
        }
        for i, log in enumerate(self.logs):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "hub.cli",
                            "worker",
                            "-b",
                            self.bootstrap,
                            "--instance",
                            f"w{i}",
                            "--group",
                            self.group_id,
                        ],
                        cwd=REPO,
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        return self

    def health(self) -> list[str | None]:
        """Each worker's state from its health file (None: it keeps none, or not yet)."""
        states: list[str | None] = []
        for i in range(self.count):
            try:
                body = json.loads((self.health_dir / f"{self.group_id}-w{i}.json").read_text())
                states.append(str(body.get("state")) if body.get("ready") is not True else "ready")
            except (OSError, ValueError, AttributeError):
                states.append(None)
        return states

    def check(self) -> None:
        """Raise if a worker has exited: a worker runs until it is told to stop."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise BenchmarkError(
                    f"worker w{i} of {self.group_id} exited with code {proc.returncode}; "
                    f"the end of {self.logs[i]}:\n{_tail(self.logs[i])}"
                )

    def tails(self) -> str:
        return "\n".join(f"--- {log}:\n{_tail(log, 10)}" for log in self.logs)

    def cpu(self) -> list[float]:
        return [_cpu_seconds(proc.pid) for proc in self.procs]

    def stop(self) -> list[int | None]:
        """SIGTERM every worker and wait; SIGKILL one that does not end within STOP_TIMEOUT_S."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(STOP_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes.append(None)  # did not stop on SIGTERM
        self.exit_codes = codes
        return codes

    def log_findings(self) -> Counter[str]:
        """Warnings and errors the workers logged, by event; librdkafka's own lines (``%<level>|...``)
        at warning or worse by facility; any other line that is not JSON as ``other``."""
        found: Counter[str] = Counter()
        for log in self.logs:
            for line in log.read_text(errors="replace").splitlines():
                if rdkafka := re.match(r"^%(\d)\|[\d.]+\|(\w+)\|", line):
                    if int(rdkafka[1]) <= 4:  # syslog levels: 4 warning, 3 error, ...
                        found[f"rdkafka:{rdkafka[2]}"] += 1
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    if line.strip():
                        found["other"] += 1
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
                    found[f"{entry['level']}:{entry.get('event')}"] += 1
        return found


def await_ready(cluster: Cluster, workers: Workers, inputs: Sequence[Partition]) -> float:
    """Wait until the group is stable with every worker a member, every input partition assigned, every
    worker that keeps a health file says it is ready, and every worker is idle (its state restored);
    returns the seconds it took."""
    started = time.monotonic()
    deadline = started + READY_TIMEOUT_S
    wanted = set(inputs)
    quiet, seen = 0, "no description yet"
    while quiet < 2:
        workers.check()
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"group {workers.group_id} not stable with {workers.count} idle workers within "
                f"{READY_TIMEOUT_S:.0f} s (last seen: {seen})\n{workers.tails()}"
            )
        try:
            group = cluster.group(workers.group_id)
        except KafkaException as exc:
            seen = str(exc)
            time.sleep(0.2)
            continue
        assigned = {(tp.topic, tp.partition) for m in group.members for tp in m.assignment.topic_partitions}
        health = workers.health()
        seen = (
            f"{group.state.name}, {len(group.members)} members, {len(assigned & wanted)} of {len(wanted)} "
            f"partitions assigned, health {health}"
        )
        if (
            group.state != ConsumerGroupState.STABLE
            or len(group.members) != workers.count
            or wanted - assigned
            or any(state not in (None, "ready") for state in health)
        ):
            quiet = 0
            time.sleep(0.2)
            continue
        before = workers.cpu()
        time.sleep(0.5)
        idle = all(after - b < 0.05 for b, after in zip(before, workers.cpu(), strict=True))
        quiet = quiet + 1 if idle else 0
    return time.monotonic() - started


@dataclass
class HubRun:
    workers: int
    timed: Timed
    ready_seconds: float
    written: Outputs
    exit_codes: list[int | None]
    log_findings: Counter[str]

    @property
    def outcomes(self) -> Counter[str]:
        return self.written.outcomes

    @property
    def reasons(self) -> Counter[str]:
        return self.written.reasons

    @property
    def writes(self) -> int:
        return sum(self.written.records.values())

    @property
    def per_s(self) -> float:
        return self.timed.per_s

    @property
    def fallback(self) -> bool:
        return self.timed.fallback

    @property
    def per_s_from_visible(self) -> float:
        return self.timed.per_s_from_visible


class CommitWatcher:
    """Polls a group's committed offsets over the partitions of a backlog."""

    def __init__(
        self, config: dict[str, Any], workers: Workers, backlog: OpenBacklog, start: dict[Partition, int]
    ) -> None:
        self.workers = workers
        self.offsets = backlog.offsets()
        self.total = sum(len(o) for o in self.offsets.values())
        self.start = start
        self.watched = [TopicPartition(t, p) for t, p in self.offsets]
        self.poller = Consumer({**config, "group.id": workers.group_id, "enable.auto.commit": False})
        # The first request finds the group's coordinator and connects to it: not on the clock.
        if self.read()[2]:
            raise BenchmarkError(
                f"group {workers.group_id} is past the backlog's start before it is readable"
            )

    def close(self) -> None:
        self.poller.close()

    def read(self) -> tuple[float, int, bool]:
        """When (the middle of the request), how many of the backlog's events are committed, and
        whether any offset is past the start."""
        asked = time.perf_counter()
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in self.poller.committed(self.watched, timeout=30)
        }
        at = (asked + time.perf_counter()) / 2
        handled = sum(
            bisect_left(self.offsets[tp], committed[tp]) for tp in self.offsets if committed[tp] >= 0
        )
        return at, handled, any(committed[tp] > self.start[tp] for tp in self.offsets)

    def watch(self, visible: float, poll: float) -> Timed:
        """Poll until every partition is committed past the backlog's last record; the clock starts at
        the first poll that sees any offset past the start."""
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        first: tuple[float, int] | None = None
        progress = (time.monotonic(), -1)
        while True:
            at, handled, advanced = self.read()
            if first is None and advanced:
                first = (at, handled)
            if handled >= self.total:
                assert first is not None
                return Timed(self.total - first[1], at - first[0], self.total, at - visible)
            now = time.monotonic()
            if handled > progress[1]:
                progress = (now, handled)
            self.workers.check()
            if now > deadline or now - progress[0] > STALL_TIMEOUT_S:
                raise BenchmarkError(
                    f"hub ({self.workers.count} workers): {handled} of {self.total} committed, "
                    f"{now - progress[0]:.0f} s without progress\n{self.workers.tails()}"
                )
            time.sleep(max(0.0, poll - (time.perf_counter() - at)))


#: Every topic the hub may write to: all of ``lintas.*`` but the national events topics it reads.
HUB_OUTPUTS_PATTERN = r"^lintas\.(?!nrm\.[a-z]{2}\.events$)."


def topic_kind(topic: str) -> str:
    """``lintas.nrm.th.receipts`` -> ``lintas.nrm.<cc>.receipts``: writes counted by what they are."""
    return re.sub(r"^((?:bench\.fanout\.)?lintas\.(?:nrm|focal|alerts))\.[a-z]{2}\.", r"\1.<cc>.", topic)


@dataclass
class Outputs:
    """What the hub wrote for one backlog, read back."""

    outcomes: Counter[str]
    reasons: Counter[str]  # of the rejected
    records: Counter[str]  # committed records by topic kind, receipts included
    receipts: int
    missing: int  # inputs without a receipt
    extra: int  # receipts beyond one per input


def read_outputs(
    config: dict[str, Any],
    cluster: Cluster,
    since: dict[Partition, int],
    receipt_topics: set[str],
    backlog: OpenBacklog,
) -> Outputs:
    """Read every committed record written to the hub's output topics since ``since``: count them by
    topic kind, and decode the receipts of this backlog's inputs."""
    ends = cluster.end_offsets(list(since))
    pending = {tp for tp in since if ends[tp] > since[tp]}
    consumer = Consumer(
        {
            **config,
            "group.id": f"bench-outputs-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    codec = Codec()
    ours = {(p.topic, p.partition, p.offset) for p in backlog.where()}
    seen: Counter[tuple[str, int, int]] = Counter()
    outcomes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    records: Counter[str] = Counter()
    deadline = time.monotonic() + 120
    try:
        consumer.assign([TopicPartition(t, p, since[(t, p)]) for t, p in pending])
        while pending:
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"reading the hub's outputs: {len(pending)} partitions not read to the end"
                )
            for m in consumer.consume(num_messages=5000, timeout=0.5):
                error = m.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    pending.discard((m.topic(), m.partition()))
                    continue
                _raise_on_error(m)
                topic = m.topic()
                records[topic_kind(topic)] += 1
                if topic not in receipt_topics:
                    continue
                receipt = codec.decode_receipt(m.value())
                source = (receipt.source_topic, receipt.source_partition, receipt.source_offset)
                if source not in ours:
                    continue
                seen[source] += 1
                outcomes[ReceiptStatus(receipt.status).value] += 1
                if receipt.reason_code is not None:
                    reasons[str(getattr(receipt.reason_code, "value", receipt.reason_code))] += 1
    finally:
        consumer.close()
    return Outputs(
        outcomes,
        reasons,
        records,
        sum(seen.values()),
        len(ours - set(seen)),
        sum(n - 1 for n in seen.values()),
    )


# -- (d) latency --------------------------------------------------------------------------------------


class InboxReader(threading.Thread):
    """Reads the focal-point inboxes from their current ends, noting when each expected event arrives."""

    def __init__(self, config: dict[str, Any], partitions: dict[Partition, int], expected: set[str]) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                **config,
                "group.id": f"bench-inbox-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,  # the reader should not add its own wait to the figure
            }
        )
        self.consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in partitions.items()])
        self.expected = expected
        self.received: dict[str, float] = {}
        self.all_in = threading.Event()
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                m = self.consumer.poll(0.05)  # one at a time: each is timed as soon as it is here
                if m is None:
                    continue
                now = time.perf_counter()
                _raise_on_error(m)
                for name, value in m.headers() or ():
                    if name == "ce_id":
                        event_id = value.decode()
                        if event_id in self.expected and event_id not in self.received:
                            self.received[event_id] = now
                            if len(self.received) == len(self.expected):
                                self.all_in.set()
                        break
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.consumer.close()


def paced_publish(
    config: dict[str, Any], messages: Sequence[Outbound], rate: int
) -> tuple[list[float], float, float]:
    """Publish at ``rate`` per second; returns each message's send time, the first and the last."""
    producer = Producer(
        {**config, "enable.idempotence": True, "acks": "all", "linger.ms": 0, "partitioner": "murmur2_random"}
    )
    for topic in {m.topic for m in messages}:  # metadata now, not on the first timed send
        producer.list_topics(topic, timeout=30)
    sent = [0.0] * len(messages)
    failed: list[str] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            failed.append(str(err))

    started = time.perf_counter()
    for i, m in enumerate(messages):
        due = started + i / rate
        while (now := time.perf_counter()) < due:
            time.sleep(min(due - now, 0.002))
        sent[i] = time.perf_counter()
        producer.produce(m.topic, m.value, m.key, headers=m.headers, on_delivery=delivered)
        producer.poll(0)
    last = time.perf_counter()
    if producer.flush(60):
        raise BenchmarkError(f"publishing at {rate}/s: not delivered within 60 s")
    if failed:
        raise BenchmarkError(f"publishing at {rate}/s: {len(failed)} failed, first {failed[0]}")
    return sent, started, last


# -- the run --------------------------------------------------------------------------------------------


@dataclass
class Context:
    args: argparse.Namespace
    settings: Settings
    config: dict[str, Any]
    bootstrap: str
    cluster: Cluster
    #: the national systems: contract v2 events, sectioned, sealed and signed as each country writes them
    codec: NationalSystems
    inputs: list[Partition]
    receipts: list[Partition]
    inboxes: list[Partition]
    log_dir: Path
    tag: str
    now: datetime


def hub_run(ctx: Context, count: int, label: str) -> HubRun:
    """A fresh backlog of the run's shape, read by ``count`` worker processes of a fresh group."""
    messages = encoded(
        ctx.codec, backlog_events(ctx.args.events, ctx.args.seed, f"{ctx.tag}{label}-", ctx.now)
    )
    group_id = f"bench-hub{count}-{ctx.tag}{label}"
    start = ctx.cluster.end_offsets(ctx.inputs)
    seed_group(ctx.config, group_id, start)
    backlog = OpenBacklog(ctx.config, messages, f"bench-backlog-{ctx.tag}{label}-{count}")
    workers = Workers(ctx.bootstrap, group_id, count, ctx.log_dir, ctx.args.partitions)
    watcher: CommitWatcher | None = None
    try:
        backlog.write()
        workers.start()
        watcher = CommitWatcher(ctx.config, workers, backlog, start)
        ready = await_ready(ctx.cluster, workers, ctx.inputs)
        # the hub's outputs from here on are this backlog's (the workers may have made new topics)
        outputs_from = ctx.cluster.end_offsets(ctx.cluster.partitions(pattern=HUB_OUTPUTS_PATTERN))
        visible = backlog.commit()
        timed = watcher.watch(visible, ctx.args.poll)
    finally:
        if watcher is not None:
            watcher.close()
        backlog.close()
        codes = workers.stop()
    outputs = read_outputs(ctx.config, ctx.cluster, outputs_from, {t for t, _ in ctx.receipts}, backlog)
    return HubRun(count, timed, ready, outputs, codes, workers.log_findings())


def latency_at(ctx: Context, rate: int, index: int) -> dict[str, Any]:
    args = ctx.args
    run_tag = f"{ctx.tag}L{index}-"
    messages = encoded(ctx.codec, new_cases(rate, args.seconds + args.warmup, run_tag, datetime.now(UTC)))
    group_id = f"bench-latency-{ctx.tag}-{rate}"
    seed_group(ctx.config, group_id, ctx.cluster.end_offsets(ctx.inputs))
    workers = Workers(ctx.bootstrap, group_id, 1, ctx.log_dir, args.partitions).start()
    reader: InboxReader | None = None
    try:
        await_ready(ctx.cluster, workers, ctx.inputs)
        reader = InboxReader(ctx.config, ctx.cluster.end_offsets(ctx.inboxes), {m.event_id for m in messages})
        reader.start()
        sent, first, last = paced_publish(ctx.config, messages, rate)
        arrival_deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
        while not reader.all_in.wait(0.2) and time.monotonic() < arrival_deadline:
            workers.check()
            if reader.error is not None:
                raise BenchmarkError(f"reading the inboxes at {rate}/s: {reader.error!r}")
    finally:
        if reader is not None:
            reader.halt.set()
            reader.join(10)
        codes = workers.stop()
    if reader.error is not None:
        raise BenchmarkError(f"reading the inboxes at {rate}/s: {reader.error!r}")
    skipped = math.ceil(rate * args.warmup)
    latency = {
        i: (reader.received[m.event_id] - sent[i]) * 1000
        for i, m in enumerate(messages)
        if i >= skipped and m.event_id in reader.received
    }
    ordered = sorted(latency.values())
    by_second: dict[int, list[float]] = {}
    for i, ms in latency.items():
        by_second.setdefault(int(sent[i] - first), []).append(ms)
    measured = len(messages) - skipped
    result: dict[str, Any] = {
        "offered_per_s": round((len(messages) - 1) / (last - first), 1),
        "sent": measured,
        "received": len(ordered),
        "lost": measured - len(ordered),
        "worker_exit_codes": codes,
        "worker_log": dict(workers.log_findings()),
    }
    if ordered:
        result |= {
            "p50": round(percentile(ordered, 50), 2),
            "p95": round(percentile(ordered, 95), 2),
            "p99": round(percentile(ordered, 99), 2),
            "max": round(ordered[-1], 2),
            "mean": round(statistics.fmean(ordered), 2),
            # the median of each second sent: flat when the hub keeps up, climbing when it falls behind
            "p50_each_second": [round(statistics.median(v), 1) for _, v in sorted(by_second.items())],
        }
    return result


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def _ensure(result: Any) -> None:
    """hub.kafka.ensure_topics is a coroutine function today; accept a plain function too."""
    if inspect.isawaitable(result):
        asyncio.run(result)  # type: ignore[arg-type]


def run(args: argparse.Namespace, bootstrap: str, broker: str, log_dir: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    # The national systems of the run (this process) and the hub's workers share one key store.
    os.environ["LINTAS_KEYS__STORE"] = str(log_dir / "keys.sqlite")
    settings = Settings()
    config = kafka_config(settings, bootstrap)
    parties = {
        c.value
        for corridor in load_agreements(settings.agreements_path).corridors
        for c in corridor.countries
    }
    countries = sorted(set(settings.topics.countries) | parties)  # the worker creates the same
    _ensure(
        ensure_topics(
            bootstrap,
            all_topics(countries),
            partitions=args.partitions,
            replication_factor=settings.topics.replication_factor,
            options=client_options(settings),
        )
    )
    cluster = Cluster(config, settings.topics.replication_factor or 1)
    try:
        cluster.await_leaders(all_topics(countries))
        # The fan-out writes under the hub's topic names, prefixed; the dry run may name more.
        state_topic = FANOUT_PREFIX + ROUTER_STATE
        hub_outputs = [t for cc in countries for t in (nrm_receipts(cc), focal_inbox(cc))]
        cluster.create(
            [
                PASSTHROUGH_OUT,
                state_topic,
                *(FANOUT_PREFIX + t for t in [*hub_outputs, DEADLETTER, ACCEPTED_EVENTS]),
            ],
            args.partitions,
            compacted=[state_topic],
        )
        ctx = Context(
            args,
            settings,
            config,
            bootstrap,
            cluster,
            national_systems(settings),
            cluster.partitions(pattern=NRM_EVENTS_PATTERN),
            cluster.partitions([nrm_receipts(cc) for cc in countries]),
            cluster.partitions([focal_inbox(cc) for cc in countries]),
            log_dir,
            uuid.uuid4().hex[:6].upper(),
            datetime.now(UTC),
        )
        return measure(ctx, broker, load_before)
    finally:
        cluster.close()


def baseline_run(
    ctx: Context, messages: Sequence[Outbound], label: str, *, fanout: bool
) -> tuple[Timed, Plan | None]:
    """(a) or (b) over a copy of the baselines' backlog, written while the contender joins its group."""
    group_id = f"bench-{'fanout' if fanout else 'pass'}-{ctx.tag}{label}"
    seed_group(ctx.config, group_id, ctx.cluster.end_offsets(ctx.inputs))
    backlog = OpenBacklog(ctx.config, messages, f"bench-backlog-{ctx.tag}{label}")
    copy = TransactionalCopy(ctx.config, group_id, FANOUT_PREFIX + ROUTER_STATE)
    try:
        backlog.write()
        plan = None
        if fanout:
            plan = dry_run(ctx.settings, ctx.codec.wire.codec, messages, backlog.where())
            ctx.cluster.create(sorted(FANOUT_PREFIX + t for t in plan.topics), ctx.args.partitions)
        copy.join(ctx.inputs)
        visible = backlog.commit()
        timed = copy.run(len(messages), visible, plan)
    finally:
        copy.close()
        backlog.close()
    if plan is not None:
        plan.by_offset = {}  # only its figures are kept
    return timed, plan


def measure(ctx: Context, broker: str, load_before: tuple[float, float, float]) -> dict[str, Any]:
    args = ctx.args
    # The baselines keep no state: each of their runs reads a new copy of the same bytes.
    started = time.perf_counter()
    messages = encoded(ctx.codec, backlog_events(args.events, args.seed, f"{ctx.tag}BASE-", ctx.now))
    print(
        f"{len(messages)} events generated and encoded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    rounds: dict[str, list[Any]] = {"passthrough": [], "fanout": [], "hub_1": [], "hub_2": [], "hub_3": []}
    plans: list[Plan] = []
    for number in range(args.rounds + 1):
        passthrough, _ = baseline_run(ctx, messages, f"R{number}P", fanout=False)
        fanout, plan = baseline_run(ctx, messages, f"R{number}F", fanout=True)
        assert plan is not None
        hubs = [hub_run(ctx, count, f"R{number}H{count}") for count in (1, 2, 3)]
        print(
            f"{'warm-up' if number == 0 else f'round {number}'}: passthrough {passthrough.per_s:,.0f}/s, "
            f"fan-out {fanout.per_s:,.0f}/s ({fanout.writes / len(messages):.2f} writes per event; "
            f"dry run {plan.events / plan.seconds:,.0f}/s in-process, {dict(plan.outcomes)}), hub "
            + ", ".join(f"{h.workers}w {h.per_s:,.0f}/s" for h in hubs)
            + f" (1w: {dict(hubs[0].outcomes)})",
            flush=True,
        )
        if number == 0:
            continue
        rounds["passthrough"].append(passthrough)
        rounds["fanout"].append(fanout)
        plans.append(plan)
        for hub in hubs:
            rounds[f"hub_{hub.workers}"].append(hub)

    latency: dict[str, dict[str, Any]] = {}
    for index, rate in enumerate(dict.fromkeys(args.rates)):  # each rate once, in the order given
        figures = latency_at(ctx, rate, index)
        latency[str(rate)] = figures
        print(
            f"latency at {rate}/s: p50 {figures.get('p50')} ms, p99 {figures.get('p99')} ms, "
            f"lost {figures['lost']}",
            flush=True,
        )
    return figures_of(ctx, broker, load_before, len(messages), plans, rounds, latency)


def figures_of(
    ctx: Context,
    broker: str,
    load_before: tuple[float, float, float],
    events: int,
    plans: Sequence[Plan],
    rounds: dict[str, list[Any]],
    latency: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    rates = {name: [r.per_s for r in runs] for name, runs in rounds.items()}
    visible = {name: [r.per_s_from_visible for r in runs] for name, runs in rounds.items()}
    median = {name: statistics.median(values) for name, values in rates.items()}
    seen = {name: statistics.median(values) for name, values in visible.items()}
    hubs: list[HubRun] = [h for name in ("hub_1", "hub_2", "hub_3") for h in rounds[name]]
    statuses = {status.value: 0 for status in ReceiptStatus}  # each status shown, 0 or not
    outcomes: Counter[str] = Counter(statuses)
    findings: Counter[str] = Counter()
    dry: Counter[str] = Counter(statuses)
    hub_reasons: Counter[str] = Counter()
    dry_reasons: Counter[str] = Counter()
    for h in hubs:
        outcomes.update(h.outcomes)
        hub_reasons.update(h.reasons)
        findings.update(h.log_findings)
    for plan in plans:
        dry.update(plan.outcomes)
        dry_reasons.update(plan.reasons)
    figures: dict[str, Any] = {
        "benchmark": "routing",
        "events": events,
        "rounds": ctx.args.rounds,
        "partitions": ctx.args.partitions,
        "max_batch": MAX_BATCH,
        "broker": broker,
    }
    names = {
        "passthrough": "passthrough",
        "fanout": "fanout",
        "hub_1": "hub_1_worker",
        "hub_2": "hub_2_workers",
        "hub_3": "hub_3_workers",
    }
    for name, key in names.items():
        figures[f"{key}_per_s"] = round(median[name], 1)
        figures[f"{key}_per_s_range"] = [round(min(rates[name]), 1), round(max(rates[name]), 1)]
        figures[f"{key}_per_s_from_visible"] = round(statistics.median(visible[name]), 1)
    figures |= {
        "fanout_k": round(statistics.median(p.k for p in plans), 3),
        "fanout_writes_per_event": round(statistics.median(r.writes / events for r in rounds["fanout"]), 3),
        "fanout_writes_by_kind": per_event(
            [
                p.kinds + Counter({ROUTER_STATE: r.state_writes})
                for p, r in zip(plans, rounds["fanout"], strict=True)
            ],
            events,
        ),
        "hub_writes_per_event": {
            c: round(statistics.median(h.writes / events for h in rounds[f"hub_{c}"]), 3) for c in "123"
        },
        "hub_writes_by_kind": per_event([h.written.records for h in rounds["hub_1"]], events),
        "ratio_vs_passthrough": round(median["hub_1"] / median["passthrough"], 3),
        "ratio_vs_fanout": round(median["hub_1"] / median["fanout"], 3),
        "scaling_2_workers": round(median["hub_2"] / median["hub_1"], 3),
        "scaling_3_workers": round(median["hub_3"] / median["hub_1"], 3),
        # the same ratios on the other clock (from the backlog becoming readable)
        "from_visible": {
            "ratio_vs_passthrough": round(seen["hub_1"] / seen["passthrough"], 3),
            "ratio_vs_fanout": round(seen["hub_1"] / seen["fanout"], 3),
            "scaling_2_workers": round(seen["hub_2"] / seen["hub_1"], 3),
            "scaling_3_workers": round(seen["hub_3"] / seen["hub_1"], 3),
        },
        "dry_run_outcomes": dict(dry),
        "dry_run_reject_reasons": dict(dry_reasons),
        "dry_run_route_per_s": round(statistics.median(p.events / p.seconds for p in plans), 1),
        "timed_from_visible_instead": sum(r.fallback for runs in rounds.values() for r in runs),
        "hub_outcomes": dict(outcomes),
        "hub_reject_reasons": dict(hub_reasons),
        "hub_receipts_missing": sum(h.written.missing for h in hubs),
        "hub_receipts_extra": sum(h.written.extra for h in hubs),
        "hub_ready_seconds_max": round(max(h.ready_seconds for h in hubs), 1),
        "hub_worker_exit_codes": sorted({str(c) for h in hubs for c in h.exit_codes}),
        "hub_worker_log": dict(findings),
        "latency_ms": latency,
        "per_round_per_s": {names[n]: [round(v, 1) for v in values] for n, values in rates.items()},
        "per_round_per_s_from_visible": {
            names[n]: [round(v, 1) for v in values] for n, values in visible.items()
        },
        "baseline_transactions": {
            "passthrough": [r.transactions for r in rounds["passthrough"]],
            "fanout": [r.transactions for r in rounds["fanout"]],
        },
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    figures["warnings"] = warnings_of(figures, hubs, plans)
    return figures


def per_event(counts: Sequence[Counter[str]], events: int) -> dict[str, float]:
    """Mean records per input event, by topic kind, over runs."""
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c)
    return {kind: round(n / (events * len(counts)), 3) for kind, n in sorted(total.items())}


def warnings_of(figures: dict[str, Any], hubs: Sequence[HubRun], plans: Sequence[Plan]) -> list[str]:
    """What makes the figures suspect: the hub doing other work than the dry run predicted (the code
    changed under the run, or the hub read in another order), lost or doubled receipts, bad exits."""
    found: list[str] = []
    accepted = ReceiptStatus.Accepted.value
    predicted = statistics.median(p.outcomes[accepted] / p.events for p in plans)
    for h in hubs:
        share = h.outcomes[accepted] / max(1, h.written.receipts)
        if abs(share - predicted) > 0.05:
            found.append(
                f"hub {h.workers}w accepted {share:.0%} of its backlog, the dry run {predicted:.0%}: "
                f"rejected for {dict(h.reasons)}"
            )
    hub, fanout = figures["hub_writes_per_event"]["1"], figures["fanout_writes_per_event"]
    if abs(hub - fanout) > 0.05 * fanout:
        differ = {
            kind: (figures["fanout_writes_by_kind"].get(kind, 0.0), per)
            for kind, per in figures["hub_writes_by_kind"].items()
            if abs(figures["fanout_writes_by_kind"].get(kind, 0.0) - per) > 0.01
        }
        found.append(
            f"the hub wrote {hub} records per event, the fan-out {fanout}; (fan-out, hub) by kind: {differ}"
        )
    if figures["hub_outcomes"][ReceiptStatus.Duplicate.value]:
        found.append(f"{figures['hub_outcomes'][ReceiptStatus.Duplicate.value]} duplicate receipts")
    if figures["hub_receipts_missing"] or figures["hub_receipts_extra"]:
        found.append(
            f"receipts: {figures['hub_receipts_missing']} inputs without one, "
            f"{figures['hub_receipts_extra']} beyond one per input"
        )
    if figures["hub_worker_exit_codes"] != ["0"]:
        found.append(f"worker exit codes after SIGTERM: {figures['hub_worker_exit_codes']} (None: killed)")
    for rate, lat in figures["latency_ms"].items():
        if lat["lost"]:
            found.append(f"latency at {rate}/s: {lat['lost']} events never reached an inbox")
        if lat["worker_exit_codes"] != [0]:
            found.append(f"latency at {rate}/s: worker exit code {lat['worker_exit_codes']} after SIGTERM")
    return found


def report(f: dict[str, Any]) -> None:
    print(
        f"\nrouting: {f['events']} events per backlog, {f['partitions']} partitions, read_committed, "
        f"transactions of <= {f['max_batch']}; median and range of {f['rounds']} rounds after a warm-up; "
        f"{f['broker']}"
    )
    print(f"{'throughput, exactly once':34}{'median/s':>10}{'min-max':>18}{'hub 1w/x':>10}{'visible/s':>11}")
    hub1 = f["hub_1_worker_per_s"]
    rows = [
        ("(a) passthrough 1->1", "passthrough"),
        (f"(b) fan-out 1->k, k={f['fanout_k']:.2f}", "fanout"),
        ("(c) hub, 1 worker process", "hub_1_worker"),
        ("    hub, 2 worker processes", "hub_2_workers"),
        ("    hub, 3 worker processes", "hub_3_workers"),
    ]
    for label, key in rows:
        low, high = f[f"{key}_per_s_range"]
        print(
            f"{label:34}{f[f'{key}_per_s']:>10,.0f}{f'{low:,.0f}-{high:,.0f}':>18}"
            f"{hub1 / f[f'{key}_per_s']:>10.3f}{f[f'{key}_per_s_from_visible']:>11,.0f}"
        )
    print(
        f"ratio_vs_passthrough {f['ratio_vs_passthrough']}, ratio_vs_fanout {f['ratio_vs_fanout']} "
        f"(target >= 0.5), scaling_2_workers {f['scaling_2_workers']}, "
        f"scaling_3_workers {f['scaling_3_workers']}\n"
        "the same from visible: " + ", ".join(f"{k} {v}" for k, v in f["from_visible"].items())
    )
    print(
        "(visible/s: every event over the time from the backlog becoming readable to the last commit; "
        f"runs too short for the first-commit clock, timed so instead: {f['timed_from_visible_instead']})\n"
        f"records written per event: fan-out {f['fanout_writes_per_event']} (router outputs k "
        f"{f['fanout_k']} + state); the hub, read back: "
        + ", ".join(f"{c}w {k}" for c, k in f["hub_writes_per_event"].items())
        + f"\n  by kind, fan-out {f['fanout_writes_by_kind']}\n  by kind, hub 1w {f['hub_writes_by_kind']}"
    )
    print(
        f"outcomes: dry runs {f['dry_run_outcomes']} (rejected: {f['dry_run_reject_reasons']}); "
        f"hub, all runs {f['hub_outcomes']} (rejected: {f['hub_reject_reasons']})\n"
        f"receipts missing {f['hub_receipts_missing']}, extra {f['hub_receipts_extra']}; worker exit codes "
        f"{f['hub_worker_exit_codes']}; worker log: {f['hub_worker_log'] or 'no warnings'}"
    )
    columns = "".join(f"{c:>8}" for c in ("p50", "p95", "p99", "max"))
    print(f"\n{'latency, ms (1 worker)':24}{'offered/s':>10}{columns}{'received':>10}{'lost':>6}")
    for rate, lat in f["latency_ms"].items():
        values = "".join(f"{lat.get(c, float('nan')):>8.1f}" for c in ("p50", "p95", "p99", "max"))
        print(f"{rate + '/s':24}{lat['offered_per_s']:>10,.0f}{values}{lat['received']:>10}{lat['lost']:>6}")
    for warning in f["warnings"]:
        print(f"WARNING: {warning}")
    print(
        f"\nload average (1, 5, 15 min) {f['load_average_before']} before, "
        f"{f['load_average_after']} after, on {f['cpus']} CPUs"
    )
    print(json.dumps(f))


@contextlib.contextmanager
def broker(given: str | None) -> Iterator[tuple[str, str]]:
    """The cluster to measure on, and how to name it: the one given, else a private local broker."""
    if given:
        yield given, given
        return
    with tempfile.TemporaryDirectory(prefix="lintas-bench-") as home:
        local = broker_local.LocalBroker(Path(home), broker_local.provision(), security="plaintext")
        try:
            yield local.start(), f"private local Kafka {local.version}"
        finally:
            local.stop()


def preflight() -> None:
    """``lintas worker --help`` must run: a worker that cannot even start fails the run before the broker."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", "worker", "--help"],
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError("`lintas worker --help` did not finish within 120 s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).decode(errors="replace").splitlines()[-15:])
        raise BenchmarkError(f"`lintas worker --help` exited with code {done.returncode}:\n{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", help="an existing cluster; default: a private local broker")
    parser.add_argument("--events", type=int, default=20_000, help="events per backlog")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds, after one warm-up round")
    parser.add_argument(
        "--rates",
        type=lambda s: [int(r) for r in s.split(",") if r],
        default=[200, 2000],
        help="offered rates for the latency runs, comma separated (empty: none)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds published first, not counted")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls of committed offsets")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the workers' logs (kept anyway on failure)"
    )
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    # SIGTERM ends the run like Ctrl-C: workers and the private broker are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        preflight()
    except BenchmarkError as exc:
        print(f"routing benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    log_dir = Path(tempfile.mkdtemp(prefix="lintas-bench-logs-"))
    failure: str | None = None
    with broker(args.bootstrap_servers) as (bootstrap, name):
        try:
            figures = run(args, bootstrap, name, log_dir)
        except (BenchmarkError, KafkaException) as exc:
            failure = str(exc)
        gc.collect()  # let go of the clients of a failed run before their broker stops
    if failure is not None:
        print(f"routing benchmark failed: {failure}\n(worker logs kept in {log_dir})", file=sys.stderr)
        sys.exit(1)
    if args.keep_logs:
        print(f"worker logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    report(figures)


if __name__ == "__main__":
    main()
