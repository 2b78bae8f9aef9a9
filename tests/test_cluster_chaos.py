"""The router and the alert feed on a real three-node KRaft cluster (RF 3, min.insync.replicas 2) while
brokers fail under them: the leader of the busiest input partition killed with SIGKILL, the broker
coordinating the router's transactions killed, the active controller killed, a rolling restart of all
three, and two of three brokers down at once. After each, the same check as the router's fault tests:
every input has exactly one receipt, every accepted event is in each inbox it was routed to exactly
once and in order per case, the hub's log holds each accepted event once, and the alert feed's
committed case states equal a replay of that log from offset 0.

One cluster serves the whole module (starting one takes a while); each scenario publishes a stream
of its own (its own case tag and event ids) while the faults happen, and the checks read only what
that scenario published.

A sixth scenario kills the broker coordinating the router's consumer group, which librdkafka alone
does not survive (see hub.processor's producer settings).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from hub.broker.local import LocalCluster
from hub.codec import Codec
from hub.contract import ReceiptStatus
from hub.events import Event
from hub.headers import envelope_headers, header_map
from hub.kafka import ensure_topics, read_all
from hub.synthetic import synthetic_stream
from hub.topics import ACCEPTED_EVENTS, DEADLETTER, PROJECTION_STATE, all_topics, focal_inbox, nrm_events
from hub.worker import GROUP_ID as ROUTER_GROUP
from projections.cases.fold import CaseState
from projections.replay import replay_cases
from tests.cluster import (
    Hub,
    Outgoing,
    Publisher,
    active_controller,
    backlog,
    fully_replicated,
    group_coordinator,
    in_every_isr,
    leader_of,
    probe_writes,
    transaction_coordinator,
    wait_until,
)
from tests.workers import assert_delivered_once, national_systems, receipts_so_far

pytestmark = [pytest.mark.kafka, pytest.mark.cluster]

COUNTRIES = ["TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP", "SG"]
PARTITIONS = 6
NODES = 3
#: The router's transactional id: its group and the instance name tests.workers.Worker gives it.
ROUTER_TRANSACTIONAL_ID = f"{ROUTER_GROUP}-t"
#: A topic for probing writes, so that a probe never becomes anyone's input.
PROBE = f"chaos.probe.{uuid.uuid4().hex}"
EVENTS = 2000
#: Events routed before a scenario's fault, published at once: the workers are up and caught up.
WARM = 400
#: Events per second the national systems publish after that: the rest lasts about 11 s.
RATE = 150.0
#: Receipts that show the router going on with a broker down.
PROGRESS = 100
#: How long any one wait may take before the scenario fails.
STEP = 60.0


@pytest.fixture(scope="module")
def cluster(kafka_libs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """Three combined broker+controller nodes, with the hub's topics (three replicas each)."""
    nodes = LocalCluster(tmp_path_factory.mktemp("cluster"), kafka_libs, nodes=NODES, security="plaintext")
    try:
        bootstrap = nodes.start()
        asyncio.run(ensure_topics(bootstrap, [*all_topics(COUNTRIES), PROBE], partitions=PARTITIONS))
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture
def bootstrap(cluster: LocalCluster) -> str:
    """The cluster, every node running and every partition fully in sync: whatever an earlier
    scenario did, this one starts from a healthy cluster."""
    for member in cluster.members:
        if member.pid is None:
            cluster.restart(member.node_id, hard=True)
    wait_until(lambda: fully_replicated(cluster.bootstrap, NODES), STEP, "every replica in sync")
    return cluster.bootstrap


@pytest.fixture
def hub(bootstrap: str, tmp_path: Path) -> Iterator[Hub]:
    workers = Hub(bootstrap, tmp_path, countries=COUNTRIES, partitions=PARTITIONS)
    try:
        yield workers
    finally:
        workers.stop()


@dataclass
class Stream:
    """One scenario's events as their national systems wrote them, and where they landed."""

    events: list[Event]
    messages: list[Outgoing]
    landed: dict[int, tuple[str, int, int]] = field(default_factory=dict)

    @classmethod
    def make(cls, directory: Path, seed: int, tag: str, count: int = EVENTS) -> Stream:
        now = datetime.now(UTC)
        stream = synthetic_stream(
            seed, cases=count // 3, start=now - timedelta(days=700), until=now, run_tag=tag
        )
        events = [event for _, event in zip(range(count), stream, strict=False)]
        systems = national_systems(directory)
        messages = [
            (
                nrm_events(e.envelope.source_country.value),
                e.envelope.case_id.encode(),
                systems.encode(e),
                envelope_headers(e.envelope),
            )
            for e in events
        ]
        return cls(events, messages)

    def partition_of(self, index: int) -> int:
        """Where a message lands: Java's murmur2 of its key, as the publisher and the hub compute it."""
        return (murmur2(self.messages[index][1]) & 0x7FFFFFFF) % PARTITIONS

    def busiest(self) -> tuple[str, int]:
        """The partition with the most input, of the national topic with the most input."""
        topic = Counter(topic for topic, *_ in self.messages).most_common(1)[0][0]
        partitions = Counter(
            self.partition_of(index) for index, message in enumerate(self.messages) if message[0] == topic
        )
        return topic, partitions.most_common(1)[0][0]

    def publish(
        self, bootstrap: str, start: int = 0, end: int | None = None, rate: float = RATE
    ) -> Publisher:
        return Publisher(bootstrap, self.messages[start:end], rate=rate, offset=start).start()

    def collect(self, publisher: Publisher) -> None:
        """Wait until everything ``publisher`` sends is acknowledged, and note where it landed."""
        for index, coordinates in publisher.join(STEP).items():
            position = publisher.offset + index
            self.landed[position] = coordinates
            assert coordinates[1] == self.partition_of(position), "a key lands where the hub expects it"

    @property
    def sources(self) -> list[str]:
        return sorted({e.envelope.source_country.value for e in self.events})

    @property
    def case_ids(self) -> set[str]:
        return {e.envelope.case_id for e in self.events}

    @property
    def event_ids(self) -> set[str]:
        return {str(e.envelope.event_id) for e in self.events}


def warm_up(hub: Hub, stream: Stream, bootstrap: str, rate: float = RATE) -> Publisher:
    """Start the workers, have them route the first events, then stream the rest at ``rate``: the
    faults of a scenario happen while events flow."""
    hub.start(backlog(bootstrap, ROUTER_GROUP, [nrm_events(c) for c in COUNTRIES], PARTITIONS))
    first = stream.publish(bootstrap, end=WARM, rate=10_000)
    stream.collect(first)
    hub.wait_routed(WARM, STEP)
    hub.wait_folded(STEP)
    return stream.publish(bootstrap, start=WARM, rate=rate)


def finish(hub: Hub, stream: Stream, publisher: Publisher) -> None:
    """Wait until everything is published, routed and folded, then stop the workers (anything
    written twice is in by then)."""
    stream.collect(publisher)
    hub.wait_routed(len(stream.events), STEP)
    hub.wait_folded(STEP)
    assert (hub.router.starts, hub.alerts.starts) == (1, 1), "no worker was restarted"
    hub.stop()


def wait_back_in_sync(cluster: LocalCluster, node_id: int) -> float:
    return wait_until(lambda: in_every_isr(cluster.bootstrap, node_id), STEP, f"node {node_id} in every ISR")


def assert_routed_exactly_once(bootstrap: str, stream: Stream) -> Counter[ReceiptStatus]:
    """The router fault tests' check, on what this scenario published; and the alert feed's live
    case states equal to a replay of the hub's log from offset 0. Returns the receipts by status."""
    codec = Codec()
    assert len(stream.landed) == len(stream.events), "every input was published"
    inputs = set(stream.landed.values())
    receipts = [
        receipt
        for _, receipt in receipts_so_far(bootstrap, codec, stream.sources)
        if (receipt.source_topic, receipt.source_partition, receipt.source_offset) in inputs
    ]
    coordinates = Counter((r.source_topic, r.source_partition, r.source_offset) for r in receipts)
    assert len(coordinates) == len(inputs), "every input has a receipt"
    assert max(coordinates.values()) == 1, "no input has two receipts"
    by_status = Counter(r.status for r in receipts)
    assert by_status[ReceiptStatus.Duplicate] == 0
    assert by_status[ReceiptStatus.Accepted] + by_status[ReceiptStatus.Rejected] == len(inputs)
    assert by_status[ReceiptStatus.Accepted] > len(inputs) // 2, by_status

    ids = stream.event_ids
    inboxes = asyncio.run(read_all(bootstrap, [focal_inbox(c) for c in COUNTRIES], within=STEP))
    inbox = [record for record in inboxes if header_map(record.headers)["ce_id"].decode() in ids]
    assert_delivered_once(inbox, receipts)
    occurred = {str(e.envelope.event_id): e.envelope.occurred_at for e in stream.events}
    # In order per case and sender (a transit country's inbox holds both parties' events).
    per_case: dict[tuple[str, bytes, bytes], list[datetime]] = defaultdict(list)
    for record in inbox:
        headers = header_map(record.headers)
        per_case[(record.topic, record.key, headers["ce_source"])].append(occurred[headers["ce_id"].decode()])
    assert all(times == sorted(times) for times in per_case.values()), "in order per case"

    accepted = {str(r.event_id) for r in receipts if r.status == ReceiptStatus.Accepted}
    log = asyncio.run(read_all(bootstrap, [ACCEPTED_EVENTS], within=STEP))
    logged = Counter(
        event_id for event_id in (header_map(r.headers)["ce_id"].decode() for r in log) if event_id in ids
    )
    assert set(logged) == accepted, "the hub's log holds exactly the accepted events"
    assert max(logged.values()) == 1, "each once"

    dead = asyncio.run(read_all(bootstrap, [DEADLETTER], within=STEP))
    dead_inputs = [
        headers
        for headers in (header_map(d.headers) for d in dead)
        if (
            headers["lintas_source_topic"].decode(),
            int(headers["lintas_source_partition"]),
            int(headers["lintas_source_offset"]),
        )
        in inputs
    ]
    assert len(dead_inputs) == by_status[ReceiptStatus.Rejected], "a dead letter for each rejection"

    cases = stream.case_ids
    live: dict[str, CaseState] = {}
    for record in asyncio.run(read_all(bootstrap, [PROJECTION_STATE], within=STEP)):
        key = record.key.decode()
        case_id = key.removeprefix("case/")
        if key.startswith("case/") and case_id in cases:  # the latest committed value per key
            if record.value is None:
                live.pop(case_id, None)
            else:
                live[case_id] = CaseState.from_json(record.value)
    replayed = {
        case_id: state
        for case_id, state in asyncio.run(replay_cases(bootstrap, codec)).items()
        if case_id in cases
    }
    opened = {r.case_id for r in receipts if r.status == ReceiptStatus.Accepted}
    assert set(replayed) == opened, "a case state for every case with an accepted event"
    assert live == replayed, "the alert feed's committed states equal a clean rebuild"
    return by_status


def routing_goes_on(hub: Hub) -> None:
    """With one broker of three down, the router goes on."""
    hub.wait_routed(hub.routed() + PROGRESS, STEP)


@pytest.mark.timeout(180)
def test_the_leader_of_the_busiest_partition_killed(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=101, tag="K1-")
    topic, partition = stream.busiest()
    rest = warm_up(hub, stream, bootstrap)

    leader = leader_of(bootstrap, topic, partition)
    assert cluster.node(leader).kill()
    wait_until(
        lambda: leader_of(bootstrap, topic, partition) not in (leader, -1), STEP, "a new leader elected"
    )
    routing_goes_on(hub)
    cluster.restart(leader, hard=True)
    wait_back_in_sync(cluster, leader)

    finish(hub, stream, rest)
    assert_routed_exactly_once(bootstrap, stream)


@pytest.mark.timeout(180)
def test_the_transaction_coordinator_of_the_router_killed(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=102, tag="K2-")
    rest = warm_up(hub, stream, bootstrap)

    coordinator = transaction_coordinator(bootstrap, ROUTER_TRANSACTIONAL_ID)
    assert cluster.node(coordinator).kill()
    wait_until(
        lambda: transaction_coordinator(bootstrap, ROUTER_TRANSACTIONAL_ID) != coordinator,
        STEP,
        "another transaction coordinator",
    )
    routing_goes_on(hub)
    cluster.restart(coordinator, hard=True)
    wait_back_in_sync(cluster, coordinator)

    finish(hub, stream, rest)
    assert_routed_exactly_once(bootstrap, stream)


@pytest.mark.timeout(180)
def test_the_active_controller_killed(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=103, tag="K3-")
    rest = warm_up(hub, stream, bootstrap)

    controller = active_controller(cluster)
    assert cluster.node(controller).kill()
    wait_until(lambda: active_controller(cluster) not in (controller, -1), STEP, "a new quorum leader")
    routing_goes_on(hub)
    cluster.restart(controller, hard=True)
    wait_back_in_sync(cluster, controller)

    finish(hub, stream, rest)
    assert_routed_exactly_once(bootstrap, stream)


@pytest.mark.timeout(240)
def test_a_rolling_restart_under_load(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=104, tag="K4-", count=2400)
    rest = warm_up(hub, stream, bootstrap, rate=25.0)  # the rest would last 80 s

    for member in cluster.members:
        assert rest.sent < len(rest.messages), "under load: the national systems are still publishing"
        # SIGTERM: a controlled shutdown; then the same ports and data.
        cluster.restart(member.node_id)
        wait_back_in_sync(cluster, member.node_id)
    rest.hurry()

    finish(hub, stream, rest)
    assert_routed_exactly_once(bootstrap, stream)


#: What a write with acks=all gets while two of three nodes are down. Every node is also a KRaft
#: controller, so the quorum is gone with them: no ISR can shrink to the survivor, and its writes
#: wait for replicas that never answer (REQUEST_TIMED_OUT, reported as the message timing out)
#: rather than being refused with NOT_ENOUGH_REPLICAS.
WRITES_STOPPED = {
    "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
    "REQUEST_TIMED_OUT",
    "_MSG_TIMED_OUT",
}


@pytest.mark.timeout(240)
def test_two_of_three_brokers_down_stop_writes_and_routing_resumes_when_one_returns(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=105, tag="K5-")
    rest = warm_up(hub, stream, bootstrap)

    returns, stays_down = 2, 3
    for node_id in (returns, stays_down):
        assert cluster.node(node_id).kill()
    answers = probe_writes(bootstrap, PROBE, PARTITIONS)
    assert set(answers.values()) <= WRITES_STOPPED, f"writes go on with two of three down: {answers}"
    routed, sent = hub.routed(), rest.sent
    watched = min(len(rest.messages), sent + int(2 * RATE))
    wait_until(lambda: rest.sent >= watched, STEP, "more events submitted meanwhile")
    assert hub.routed() == routed, "no receipt is committed while two of three brokers are down"
    assert hub.router.alive(), "the router waits"
    assert hub.alerts.alive(), "the alert feed waits"

    cluster.restart(returns, hard=True)
    finish(hub, stream, rest)  # and the node that stayed down is still down
    assert cluster.node(stays_down).pid is None
    assert_routed_exactly_once(bootstrap, stream)


# librdkafka does not time out a request to a coordinator that left the cluster (librdkafka#5456,
# #5511): before the processor's producer closed idle connections, this one hung for ten minutes in
# send_offsets_to_transaction.
@pytest.mark.timeout(180)
def test_routing_goes_on_while_the_routers_group_coordinator_is_down(
    cluster: LocalCluster, bootstrap: str, hub: Hub, tmp_path: Path
) -> None:
    stream = Stream.make(tmp_path, seed=106, tag="K6-", count=1200)
    rest = warm_up(hub, stream, bootstrap)

    coordinator = group_coordinator(bootstrap, ROUTER_GROUP)
    assert cluster.node(coordinator).kill()
    hub.wait_routed(hub.routed() + PROGRESS, 30)
    cluster.restart(coordinator, hard=True)
    finish(hub, stream, rest)
    assert_routed_exactly_once(bootstrap, stream)
