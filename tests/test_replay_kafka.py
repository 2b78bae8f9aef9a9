"""Replay equals live: the alert worker, killed twice while folding the hub's log and restarted,
commits exactly the case states that a replay from offset 0 rebuilds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from hub.codec import Codec
from hub.kafka import ensure_topics, producer, read_all
from hub.synthetic import synthetic_stream
from hub.topics import ACCEPTED_EVENTS, PROJECTION_STATE, all_topics
from projections.alerts.worker import GROUP_ID
from projections.cases.fold import CaseState
from projections.replay import replay_cases
from tests.workers import national_systems

pytestmark = pytest.mark.kafka
PARTITIONS = 4


async def committed(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(GROUP_ID)
    except GroupCoordinatorNotAvailableError:
        return 0  # the group has not committed yet
    finally:
        await admin.close()
    return sum(
        meta.offset
        for tp, meta in offsets.items()
        if isinstance(tp, TopicPartition) and tp.topic == ACCEPTED_EVENTS and meta.offset > 0
    )


def start_worker(bootstrap: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "alerts", "-b", bootstrap, "--instance", "r", "--every", "0.5"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        # A short session: a killed worker's restart waits that long for its group to drop the dead one.
        env={**os.environ, "LINTAS_LOG_FORMAT": "json", "LINTAS_PROCESSOR__SESSION_TIMEOUT_MS": "10000"},
    )


def test_replay_equals_the_live_state_after_kills_and_restarts(own_broker: str, tmp_path: Path) -> None:
    codec = Codec()
    systems = national_systems(tmp_path, codec)  # the hub's log holds contract v2 events
    now = datetime.now(UTC)
    events = list(synthetic_stream(5, 2500, start=now - timedelta(days=600), until=now, run_tag="R-"))
    total = len(events)

    async def publish() -> None:
        countries = sorted(
            {e.envelope.source_country.value for e in events}
            | {e.envelope.destination_country.value for e in events if e.envelope.destination_country}
        )
        await ensure_topics(own_broker, all_topics(countries), partitions=PARTITIONS)
        kafka_producer = producer(own_broker)
        await kafka_producer.start()
        try:
            sends = [
                await kafka_producer.send(ACCEPTED_EVENTS, systems.encode(e), key=e.envelope.case_id.encode())
                for e in events
            ]
            await asyncio.wait_for(asyncio.gather(*sends), 120)
        finally:
            await kafka_producer.stop()

    asyncio.run(publish())
    log = tmp_path / "alerts.log"
    worker = start_worker(own_broker, log)
    try:
        for share in (0.3, 0.6, 1.0):
            deadline = time.monotonic() + 180
            while asyncio.run(committed(own_broker)) < total * share:
                assert worker.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
            if share < 1.0:
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=30)
                worker = start_worker(own_broker, log)
        time.sleep(1.0)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)

    changelog = asyncio.run(read_all(own_broker, [PROJECTION_STATE], within=120))
    live: dict[str, CaseState] = {}
    alerts_sent = set()
    for record in changelog:  # the latest committed value per key is the live state
        key = record.key.decode()
        if key.startswith("case/"):
            live[key.removeprefix("case/")] = CaseState.from_json(record.value)
        else:
            alerts_sent.add(key)
    replayed = asyncio.run(replay_cases(own_broker, codec))

    assert len(replayed) == 2500
    assert live == replayed
    assert alerts_sent, "the live worker also sent alerts while it ran"
    assert log.read_text().count('"processor_started"') == 3
