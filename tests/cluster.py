"""What the chaos tests need to know about a running three-node cluster, and a publisher that keeps
writing through its faults: partition leaders and ISRs, the coordinators of a group and of a
transactional id, the active KRaft controller, and waits until the cluster has healed."""

from __future__ import annotations

import asyncio
import functools
import json
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError as AIOKafkaError
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from hub.broker.local import LocalCluster
from tests.workers import Worker, stop_all

#: ``transaction.state.log.num.partitions`` and ``offsets.topic.num.partitions`` of the local tuning.
INTERNAL_PARTITIONS = 5
TRANSACTION_STATE = "__transaction_state"
CONSUMER_OFFSETS = "__consumer_offsets"

Coordinates = tuple[str, int, int]


def java_hash(text: str) -> int:
    """Java's ``String.hashCode`` (UTF-16 code units, 32-bit overflow)."""
    value = 0
    units = text.encode("utf-16-be")
    for index in range(0, len(units), 2):
        value = (31 * value + int.from_bytes(units[index : index + 2], "big")) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def coordinator_partition(key: str, partitions: int = INTERNAL_PARTITIONS) -> int:
    """The partition of ``__transaction_state`` (or ``__consumer_offsets``) that holds ``key``:
    Kafka's ``Utils.abs(key.hashCode()) % partitions``."""
    value = java_hash(key)
    return (0 if value == -(1 << 31) else abs(value)) % partitions


def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def partition_states(bootstrap: str, topics: Sequence[str] | None = None) -> dict[tuple[str, int], Any]:
    """``(topic, partition) -> PartitionMetadata`` (leader, replicas, isrs) from fresh metadata."""
    client = admin(bootstrap)
    metadata = client.list_topics(timeout=10)
    names = topics if topics is not None else list(metadata.topics)
    return {
        (name, number): partition
        for name in names
        for number, partition in metadata.topics[name].partitions.items()
    }


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    return int(partition_states(bootstrap, [topic])[(topic, partition)].leader)


def transaction_coordinator(bootstrap: str, transactional_id: str, within: float = 30) -> int:
    """The broker coordinating ``transactional_id``, as the cluster itself answers FindCoordinator
    (key type 1: confluent-kafka has no DescribeTransactions); checked against the leader of the
    ``__transaction_state`` partition the id hashes to."""
    asked = _find_coordinator(bootstrap, transactional_id, 1, within)
    partition = coordinator_partition(transactional_id)
    led = leader_of(bootstrap, TRANSACTION_STATE, partition)
    assert asked == led, f"FindCoordinator says {asked}, {TRANSACTION_STATE}[{partition}] is led by {led}"
    return asked


def group_coordinator(bootstrap: str, group: str) -> int:
    client = admin(bootstrap)  # kept until the answer is in: a destroyed client fails its futures
    (future,) = client.describe_consumer_groups([group]).values()
    return int(future.result(timeout=30).coordinator.id)


def _find_coordinator(bootstrap: str, key: str, key_type: int, within: float) -> int:
    async def ask() -> int:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await client.start()
        try:
            return await client.find_coordinator(key, key_type)
        finally:
            await client.close()

    deadline = time.monotonic() + within
    while True:
        try:
            return asyncio.run(ask())
        except AIOKafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def active_controller(cluster: LocalCluster) -> int:
    """The leader of the KRaft quorum, as the running nodes record it (``quorum-state`` of the
    metadata log). ``describe_cluster().controller`` is no help with KRaft: brokers answer it with
    a random live broker. All running nodes must agree on the latest epoch's leader."""
    views: dict[int, tuple[int, int]] = {}
    for member in cluster.members:
        if member.pid is None:
            continue
        state = json.loads((member.data_dir / "__cluster_metadata-0" / "quorum-state").read_text())
        views[member.node_id] = (int(state["leaderEpoch"]), int(state["leaderId"]))
    _, leader = max(views.values())
    assert leader > 0, f"no quorum leader: {views}"
    return leader


def wait_until(condition: Callable[[], bool], within: float, what: str, every: float = 0.25) -> float:
    """Wait until ``condition()`` holds; returns the seconds waited, or raises AssertionError."""
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except Exception as exc:  # a cluster in the middle of a fault answers with errors
            last = repr(exc)
        else:
            last = "not yet"
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within} s ({last})")
        time.sleep(every)


def in_every_isr(bootstrap: str, node_id: int) -> bool:
    states = partition_states(bootstrap)
    return bool(states) and all(node_id in state.isrs for state in states.values())


def fully_replicated(bootstrap: str, nodes: int = 3) -> bool:
    """Every partition of every topic has all its replicas in sync and a leader."""
    states = partition_states(bootstrap)
    return bool(states) and all(
        state.leader >= 0 and len(state.isrs) == nodes and state.error is None for state in states.values()
    )


#: A message as national systems publish it: topic, key, value, headers.
Outgoing = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


class Publisher:
    """National systems publishing on a steady clock from a thread while the faults happen: an
    idempotent ``acks=all`` producer with Java's murmur2 partitioner (as the hub's own clients), which
    remembers where each message landed."""

    def __init__(self, bootstrap: str, messages: Sequence[Outgoing], *, rate: float, offset: int = 0) -> None:
        self.messages = messages
        self.rate = rate
        #: The position of ``messages[0]`` in the stream they are part of.
        self.offset = offset
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "partitioner": "murmur2_random",
                # Long enough to ride out every fault of these tests: nothing is given up.
                "message.timeout.ms": 240_000,
            }
        )
        #: Message index -> where it landed.
        self.landed: dict[int, Coordinates] = {}
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _delivered(self, index: int, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors[error.name()] += 1
            return
        self.landed[index] = (message.topic(), message.partition(), message.offset())  # type: ignore[assignment]

    def _run(self) -> None:
        started = time.monotonic()
        for index, (topic, key, value, headers) in enumerate(self.messages):
            due = started + index / self.rate
            while time.monotonic() < due:
                self.producer.poll(min(0.05, max(0.0, due - time.monotonic())))
            while True:
                try:
                    self.producer.produce(
                        topic,
                        value,
                        key,
                        headers=headers,
                        on_delivery=functools.partial(self._delivered, index),
                    )
                    break
                except BufferError:
                    self.producer.poll(0.1)
            self.sent = index + 1
        self.producer.flush(240)

    def hurry(self) -> None:
        """Send what is left as fast as the producer takes it (the fault is over)."""
        self.rate = float("inf")

    def join(self, within: float) -> dict[int, Coordinates]:
        """Wait until every message is acknowledged; returns where each landed."""
        self._thread.join(within)
        assert not self._thread.is_alive(), f"publishing not done in {within} s ({self.sent} sent)"
        assert not self.errors, f"messages not acknowledged: {dict(self.errors)}"
        assert len(self.landed) == len(self.messages), (len(self.landed), len(self.messages))
        return self.landed


def backlog(bootstrap: str, group: str, topics: Sequence[str], partitions: int) -> int:
    """Messages of ``topics`` (written without transactions: an offset per message) that ``group``
    has not committed yet."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = [TopicPartition(topic, p) for topic in topics for p in range(partitions)]
        committed = _committed(consumer, parts)
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
    finally:
        consumer.close()
    return sum(end - max(0, tp.offset) for tp, end in zip(committed, ends, strict=True))


def _committed(consumer: Consumer, parts: list[TopicPartition], within: float = 60.0) -> Any:
    """The group's committed offsets; a cluster just started may still be loading its coordinators
    (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): asked again until ``within``."""
    deadline = time.monotonic() + within
    while True:
        try:
            return consumer.committed(parts, timeout=30)
        except KafkaException as error:
            retriable = error.args[0].code() in (
                KafkaError.NOT_COORDINATOR,
                KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                KafkaError.COORDINATOR_NOT_AVAILABLE,
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def probe_writes(bootstrap: str, topic: str, partitions: int, within_ms: int = 5000) -> dict[int, str]:
    """Write one message with ``acks=all`` to each partition of ``topic``: partition -> the offset
    it got, or the name of the error its delivery report gave."""
    probe = Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "message.timeout.ms": within_ms,
            "request.timeout.ms": within_ms,
        }
    )
    answers: dict[int, str] = {}

    def delivered(error: KafkaError | None, message: Message) -> None:
        answers[message.partition()] = error.name() if error is not None else str(message.offset())  # type: ignore[index]

    for partition in range(partitions):
        probe.produce(topic, b"probe", partition=partition, on_delivery=delivered)
    probe.flush(within_ms / 1000 + 10)
    return answers


class Hub:
    """The router (``lintas worker``) and the alert feed (``lintas alerts``) as child processes, with
    their health files, which say what each has committed since it started."""

    def __init__(
        self,
        bootstrap: str,
        directory: Path,
        *,
        countries: Sequence[str],
        partitions: int,
        env: dict[str, str] | None = None,
    ) -> None:
        self.status = directory / "status"
        env = {
            **(env or {}),
            "LINTAS_PROCESSOR__STATUS_DIR": str(self.status),
            # SIGABRT dumps every thread's stack into the log: where a stuck worker waits.
            "PYTHONFAULTHANDLER": "1",
        }
        options: dict[str, Any] = {"countries": countries, "partitions": partitions, "env": env}
        self.backlog = 0
        self.router = Worker(bootstrap, directory, **options)
        self.alerts = Worker(bootstrap, directory, command=("alerts", "--every", "0.5"), **options)

    def start(self, backlog: int = 0) -> Hub:
        """Start both; ``backlog`` inputs left unrouted before are not counted as routed."""
        self.backlog = backlog
        self.router.start()
        self.alerts.start()
        return self

    def stop(self) -> None:
        stop_all([self.router, self.alerts])

    def health(self, group: str) -> dict[str, Any]:
        try:
            body: dict[str, Any] = json.loads((self.status / f"{group}-t.json").read_text())
        except (OSError, ValueError):
            return {}
        return body

    def outcomes(self) -> Counter[str]:
        """What the router has committed: receipts by status."""
        return Counter(self.health("lintas-router").get("outcomes", {}))

    def routed(self) -> int:
        """Inputs the router has committed a receipt for since it started, beyond the backlog."""
        return sum(self.outcomes().values()) - self.backlog

    def folded(self) -> int:
        return int(self.health("lintas-alerts").get("outcomes", {}).get("folded", 0))

    def wait_routed(self, target: int, within: float) -> float:
        """Wait until the router has committed ``target`` receipts; returns the seconds waited."""
        return self._wait(lambda: self.routed() >= target, within, f"{target} inputs routed")

    def wait_folded(self, within: float) -> float:
        """Wait until the alert feed has folded every event the router accepted."""
        return self._wait(
            lambda: self.folded() >= self.outcomes()["Accepted"], within, "accepted events folded"
        )

    def _wait(self, condition: Callable[[], bool], within: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            for worker in (self.router, self.alerts):
                if not worker.alive():
                    pytest.fail(f"{worker.command[0]} died waiting for {what}\n{self.logs()}")
            if time.monotonic() - started > within:
                pytest.fail(
                    f"{what}: not within {within} s; routed {self.routed()} ({dict(self.outcomes())}), "
                    f"folded {self.folded()}\n{self.dump()}"
                )
            time.sleep(0.2)
        return time.monotonic() - started

    def dump(self) -> str:
        """The workers' logs, with the stack of each that is still running (it is ended for that)."""
        for worker in (self.router, self.alerts):
            if worker.alive():
                worker.send(signal.SIGABRT)
        for worker in (self.router, self.alerts):
            if worker.process is not None:
                worker.process.wait(timeout=30)
        return self.logs()

    def logs(self) -> str:
        return self.router.logs() + "\n" + self.alerts.logs()
