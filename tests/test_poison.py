"""No poison pill, on a real broker: in the middle of a stream, a rejected message whose dead letter
would exceed the hub's message size limit, events too large for a partner's inbox (a topic that takes
less than the hub's limit), and a receipt that Kafka refuses for good (keyless, on a compacted topic).
The events behind them are routed; the bad ones get their receipt (when one can be written) and a dead
letter that fits; the worker stays healthy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hub.codec import Codec
from hub.contract import ReceiptStatus, VictimIdentified
from hub.headers import envelope_headers, header_map
from hub.kafka import ensure_topics, producer, read_all
from hub.limits import OUTPUT_MAX_BYTES
from hub.routing import Reason
from hub.synthetic import synthetic_stream
from hub.topics import DEADLETTER, all_topics, focal_inbox, nrm_events, nrm_receipts
from hub.worker import GROUP_ID
from tests.workers import Worker, national_systems, receipts_so_far, stop_all

pytestmark = pytest.mark.kafka

COUNTRIES = ["TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP"]


async def _create(bootstrap: str, topics: dict[str, dict[str, str]]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 6, 1, topic_configs=cfg) for name, cfg in topics.items()])
    finally:
        await admin.close()


async def _publish(
    bootstrap: str, messages: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]]
) -> None:
    kafka_producer = producer(bootstrap, max_request_size=2_000_000)
    await kafka_producer.start()
    try:
        for topic, key, value, headers in messages:  # in order: the giant sits between the others
            await kafka_producer.send(topic, value, key=key, headers=headers)
        await asyncio.wait_for(kafka_producer.flush(), 120)
    finally:
        await kafka_producer.stop()


def test_an_oversized_dead_letter_and_a_refused_output_block_nothing(own_broker: str, tmp_path: Path) -> None:
    codec = Codec()
    systems = national_systems(tmp_path, codec)
    now = datetime.now(UTC)
    openings = [
        e
        for e in synthetic_stream(seed=5, cases=400, start=now - timedelta(days=300), until=now, run_tag="P-")
        if isinstance(e, VictimIdentified) and e.envelope.destination_country is not None
    ]
    # An existing cluster's national topic may take Kafka's default 1 MiB; the MM inbox takes almost nothing.
    asyncio.run(
        _create(
            own_broker,
            {
                nrm_events("TH"): {"max.message.bytes": "1048588"},
                focal_inbox("MM"): {"max.message.bytes": "300"},
                # Misconfigured: a compacted topic refuses messages without a key (INVALID_RECORD).
                nrm_receipts("TH"): {"cleanup.policy": "compact"},
            },
        )
    )
    asyncio.run(ensure_topics(own_broker, all_topics(COUNTRIES), partitions=6))
    giant = os.urandom(1_000_000)
    giant_key = b"TH-GIANT"
    messages = []
    for index, event in enumerate(openings):
        envelope = event.envelope
        messages.append(
            (
                nrm_events(envelope.source_country.value),
                envelope.case_id.encode(),
                systems.encode(event),
                envelope_headers(envelope),
            )
        )
        if index == len(openings) // 2:
            messages.append((nrm_events("TH"), giant_key, giant, [("origin", b"x" * 20_000)]))
        if index == len(openings) // 3:
            messages.append((nrm_events("TH"), None, b"no key, no event", []))
    to_mm = {str(e.envelope.event_id) for e in openings if e.envelope.destination_country.value == "MM"}
    assert to_mm
    assert len(to_mm) < len(openings)

    status_dir = tmp_path / "status"
    worker = Worker(
        own_broker,
        tmp_path,
        countries=COUNTRIES,
        env={"LINTAS_PROCESSOR__STATUS_DIR": str(status_dir)},
    )
    worker.start()
    sources = sorted({topic.split(".")[2].upper() for topic, *_ in messages})
    try:
        asyncio.run(_publish(own_broker, messages))
        deadline = time.monotonic() + 180
        # Every input but the keyless one gets a receipt; that one a dead letter only.
        while (
            len(receipts_so_far(own_broker, codec, sources)) < len(messages) - 1
            or len(asyncio.run(read_all(own_broker, [DEADLETTER], within=60))) < len(to_mm) + 2
        ):
            assert worker.alive(), worker.logs()
            assert time.monotonic() < deadline, worker.logs()
            time.sleep(0.5)
        health = json.loads((status_dir / f"{GROUP_ID}-t.json").read_text())
        assert health["state"] == "running", health
        assert health["ready"] is True
    finally:
        stop_all([worker])
    assert worker.process is not None
    assert worker.process.returncode == 0, worker.logs()

    receipts = [r for _, r in receipts_so_far(own_broker, codec, sources)]
    coordinates = Counter((r.source_topic, r.source_partition, r.source_offset) for r in receipts)
    assert len(coordinates) == len(messages) - 1, "every input has a receipt but the one Kafka refuses"
    assert max(coordinates.values()) == 1, "and only one"

    by_event = {str(r.event_id): r for r in receipts if r.event_id is not None}
    for event_id in to_mm:
        assert by_event[event_id].status == ReceiptStatus.Rejected
        assert by_event[event_id].reason_code == Reason.TOO_LARGE
        assert "lintas.focal.mm.inbox" in by_event[event_id].message
    routed = {i for i, r in by_event.items() if r.status == ReceiptStatus.Accepted}
    assert routed == {str(e.envelope.event_id) for e in openings} - to_mm, "every other event is routed"

    inbox = asyncio.run(read_all(own_broker, [focal_inbox(c) for c in COUNTRIES], within=120))
    delivered = Counter(header_map(record.headers)["ce_id"].decode() for record in inbox)
    assert set(delivered) == routed
    assert max(delivered.values()) == 1

    (giant_receipt,) = [r for r in receipts if r.event_id is None]
    assert giant_receipt.status == ReceiptStatus.Rejected
    assert giant_receipt.reason_code == Reason.UNDECODABLE
    dead = asyncio.run(read_all(own_broker, [DEADLETTER], within=120))
    assert len(dead) == len(to_mm) + 2
    (keyless,) = [d for d in dead if header_map(d.headers)["lintas_error_code"] == b"output_failed"]
    assert keyless.key is not None
    assert keyless.key.startswith(b"lintas.nrm.th.events/"), "a reference to the refused input"
    assert b"INVALID" in header_map(keyless.headers)["lintas_error"]
    (giant_dead,) = [d for d in dead if d.key == giant_key]
    headers = header_map(giant_dead.headers)
    assert headers["lintas_truncated"] == b"1"
    assert headers["lintas_original_size"] == str(len(giant)).encode()
    assert headers["lintas_original_sha256"] == hashlib.sha256(giant).hexdigest().encode()
    assert headers["lintas_error_code"] == b"undecodable"
    assert giant.startswith(giant_dead.value)
    assert 0 < len(giant_dead.value) < len(giant)
    assert len(giant_dead.value) + sum(len(k) + len(v) for k, v in giant_dead.headers) <= OUTPUT_MAX_BYTES
    assert all(
        header_map(d.headers)["lintas_error_code"] == b"too_large"
        for d in dead
        if d.key not in (giant_key, keyless.key)
    )
