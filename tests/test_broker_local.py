"""The local Kafka broker: lifecycle, ownership checks, and that it behaves like real Kafka."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.broker.local import KAFKA_VERSION, LocalBroker, new_cluster_id

# Every await below is bounded: a hung broker must fail the test, not the CI job's clock.
STEP = 30.0


# -- helpers ---------------------------------------------------------------------------------


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await asyncio.wait_for(admin.start(), STEP)
    try:
        await asyncio.wait_for(
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]),
            STEP,
        )
    finally:
        await asyncio.wait_for(admin.close(), STEP)


async def produce(bootstrap: str, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await asyncio.wait_for(producer.start(), STEP)
    try:
        for value in values:
            await asyncio.wait_for(producer.send_and_wait(topic, value, key=b"k"), STEP)
    finally:
        await asyncio.wait_for(producer.stop(), STEP)


async def consume(
    bootstrap: str,
    topic: str,
    *,
    expect: int,
    isolation_level: str = "read_uncommitted",
    linger: float = 0.0,
) -> list[bytes]:
    """Read from the earliest offset until ``expect`` records arrived (plus ``linger`` seconds)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await asyncio.wait_for(consumer.start(), STEP)
    values: list[bytes] = []
    try:
        deadline = time.monotonic() + STEP
        while len(values) < expect and time.monotonic() < deadline:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), STEP)
            values += [r.value for recs in batches.values() for r in recs if r.value is not None]
        # Give records that should NOT be visible a chance to show up.
        end = time.monotonic() + linger
        while time.monotonic() < end:
            batches = await asyncio.wait_for(consumer.getmany(timeout_ms=200), STEP)
            values += [r.value for recs in batches.values() for r in recs if r.value is not None]
    finally:
        await asyncio.wait_for(consumer.stop(), STEP)
    return values


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


@pytest.fixture
def own_broker(tmp_path: Path, kafka_libs: Path) -> Iterator[LocalBroker]:
    """A broker of the test's own, separate from the session broker; always stopped afterwards."""
    broker = LocalBroker(tmp_path / "kafka", kafka_libs, security="plaintext")
    try:
        yield broker
    finally:
        broker.stop()


# -- no broker needed ------------------------------------------------------------------------


def test_cluster_id_looks_like_a_kafka_uuid() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22
        assert not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


@pytest.mark.parametrize("whose", ["pytest", "sleep"])
def test_stop_refuses_a_process_that_is_not_our_broker(tmp_path: Path, whose: str) -> None:
    proc = None
    if whose == "pytest":
        pid = os.getpid()
    else:
        proc = subprocess.Popen(["sleep", "60"])
        pid = proc.pid
    try:
        (tmp_path / "broker.json").write_text(
            json.dumps(
                {
                    "pid": pid,
                    "port": 9,
                    "controller_port": 10,
                    "cluster_id": new_cluster_id(),
                    "version": KAFKA_VERSION,
                }
            )
        )
        broker = LocalBroker(tmp_path)
        assert broker.stop(timeout=1) is False
        assert broker.kill() is False
        status = broker.status()
        assert status is not None
        assert status.pid == pid
        assert status.alive is False  # alive means "our broker is running", not "pid exists"
        os.kill(pid, 0)  # still there: raises if it was signalled to death
        if proc is not None:
            assert proc.poll() is None
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(timeout=10)


def test_status_without_state_is_none(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path)
    assert broker.status() is None
    assert broker.stop() is False


# -- a broker of our own ---------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_start_status_stop(own_broker: LocalBroker) -> None:
    assert own_broker.status() is None

    bootstrap = own_broker.start(timeout=60)
    host, port = bootstrap.split(":")
    assert host == "127.0.0.1"
    status = own_broker.status()
    assert status is not None
    assert status.alive
    assert status.bootstrap == bootstrap
    assert "kafka.Kafka" in cmdline(status.pid)
    state = json.loads(own_broker.state_file.read_text())
    assert state["port"] == int(port)
    assert state["version"] == KAFKA_VERSION
    assert (own_broker.data_dir / "meta.properties").is_file()

    # A second start, even from another object on the same home, reuses the running broker.
    assert own_broker.start() == bootstrap
    again = LocalBroker(own_broker.home, own_broker.libs, security="plaintext")
    assert again.start() == bootstrap
    assert again.status() == status

    assert own_broker.stop() is True
    stopped = own_broker.status()
    assert stopped is not None
    assert not stopped.alive
    assert not Path(f"/proc/{status.pid}").exists()
    assert own_broker.stop() is False

    # Started again it keeps its address, unless that port has been taken meanwhile.
    assert own_broker.start() == bootstrap
    assert own_broker.stop() is True
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(port)))
        squatter.listen()
        moved = own_broker.start()
        assert moved != bootstrap
    assert own_broker.stop() is True


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_restart_keeps_data(own_broker: LocalBroker, unique_topic: str) -> None:
    bootstrap = own_broker.start()
    before = own_broker.status()
    assert before is not None
    asyncio.run(create_topic(bootstrap, unique_topic))
    asyncio.run(produce(bootstrap, unique_topic, b"before-restart"))

    assert own_broker.restart() == bootstrap
    after = own_broker.status()
    assert after is not None
    assert after.alive
    assert after.pid != before.pid
    assert asyncio.run(consume(bootstrap, unique_topic, expect=1)) == [b"before-restart"]

    # A crash (SIGKILL) loses nothing that was acknowledged with acks=all either.
    asyncio.run(produce(bootstrap, unique_topic, b"before-crash"))
    assert own_broker.restart(hard=True) == bootstrap
    assert asyncio.run(consume(bootstrap, unique_topic, expect=2)) == [
        b"before-restart",
        b"before-crash",
    ]


# -- the shared session broker ---------------------------------------------------------------


@pytest.mark.kafka
def test_produce_consume_round_trip(kafka_bootstrap: str, unique_topic: str) -> None:
    async def scenario() -> list[bytes]:
        await create_topic(kafka_bootstrap, unique_topic)
        await produce(kafka_bootstrap, unique_topic, b"hello", b"selamat pagi")
        return await consume(kafka_bootstrap, unique_topic, expect=2)

    assert asyncio.run(scenario()) == [b"hello", b"selamat pagi"]


@pytest.mark.kafka
def test_transactions_commit_and_abort(kafka_bootstrap: str, unique_topic: str) -> None:
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        await create_topic(kafka_bootstrap, unique_topic)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{unique_topic}")
        await asyncio.wait_for(producer.start(), STEP)
        try:
            await asyncio.wait_for(producer.begin_transaction(), STEP)
            await asyncio.wait_for(producer.send_and_wait(unique_topic, b"aborted"), STEP)
            await asyncio.wait_for(producer.abort_transaction(), STEP)

            await asyncio.wait_for(producer.begin_transaction(), STEP)
            await asyncio.wait_for(producer.send_and_wait(unique_topic, b"committed"), STEP)
            await asyncio.wait_for(producer.commit_transaction(), STEP)
        finally:
            await asyncio.wait_for(producer.stop(), STEP)
        committed = await consume(
            kafka_bootstrap, unique_topic, expect=1, isolation_level="read_committed", linger=1.0
        )
        everything = await consume(kafka_bootstrap, unique_topic, expect=2)
        return committed, everything

    committed, everything = asyncio.run(scenario())
    assert committed == [b"committed"]
    assert everything == [b"aborted", b"committed"]


def test_pom_ships_inside_the_package() -> None:
    import hub.broker.local as lk

    pom = Path(lk.__file__).parent / "kafka_runtime" / "pom.xml"
    text = pom.read_text()
    assert "<artifactId>kafka_2.13</artifactId>" in text
    assert "kafka-tools" not in text.split("-->", 1)[1]  # only mentioned in the header comment
