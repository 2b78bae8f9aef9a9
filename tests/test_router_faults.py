"""The router against a real broker, as a subprocess: killed with SIGKILL or SIGTERM at 20 %, 40 % and
60 % of a 20,000-event stream and restarted, it still delivers every accepted event exactly once, in
order per case, with exactly one receipt per input; garbage never stops it.

Each test gets a broker of its own, so that its input is exactly what it published.
"""

from __future__ import annotations

import asyncio
import io
import signal
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import pytest

from hub.codec import HEADER_SIZE, MARKER, Codec
from hub.contract import ReceiptStatus
from hub.events import Event
from hub.headers import envelope_headers, header_map
from hub.kafka import ensure_topics, producer, read_all
from hub.routing import Reason
from hub.synthetic import synthetic_stream
from hub.topics import DEADLETTER, all_topics, focal_inbox, nrm_events
from tests.workers import Worker, assert_delivered_once, national_systems, receipts_so_far

pytestmark = pytest.mark.kafka

COUNTRIES = ["TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP", "SG"]
PARTITIONS = 6
STREAM = 20_000


def make_stream(count: int) -> list[Event]:
    now = datetime.now(UTC)
    stream = synthetic_stream(
        seed=11, cases=count // 3, start=now - timedelta(days=700), until=now, run_tag="F-"
    )
    return [event for _, event in zip(range(count), stream, strict=False)]


async def publish(bootstrap: str, messages: list[tuple[str, bytes | None, bytes, list]]) -> None:  # type: ignore[type-arg]
    kafka_producer = producer(bootstrap)
    await kafka_producer.start()
    try:
        sends = [
            await kafka_producer.send(topic, value, key=key, headers=headers)
            for topic, key, value, headers in messages
        ]
        await asyncio.wait_for(asyncio.gather(*sends), 120)
    finally:
        await kafka_producer.stop()


def wait_for_receipts(
    bootstrap: str, codec: Codec, countries: list[str], target: int, worker: Worker, within: float
) -> int:
    deadline = time.monotonic() + within
    while True:
        seen = len(
            {
                (r.source_topic, r.source_partition, r.source_offset)
                for _, r in receipts_so_far(bootstrap, codec, countries)
            }
        )
        if seen >= target:
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"only {seen} of {target} receipts after {within} s\n{worker.logs()}")
        if not worker.alive():
            pytest.fail(f"worker died\n{worker.logs()}")
        time.sleep(0.25)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_restarts_lose_nothing_and_duplicate_nothing(
    own_broker: str, tmp_path: Path, sig: signal.Signals
) -> None:
    codec = Codec()
    events = make_stream(STREAM)
    systems = national_systems(tmp_path, codec)
    sources = sorted({e.envelope.source_country.value for e in events})
    asyncio.run(ensure_topics(own_broker, all_topics(COUNTRIES), partitions=PARTITIONS))
    asyncio.run(
        publish(
            own_broker,
            [
                (
                    nrm_events(e.envelope.source_country.value),
                    e.envelope.case_id.encode(),
                    systems.encode(e),
                    envelope_headers(e.envelope),
                )
                for e in events
            ],
        )
    )
    # A killed worker's restart rejoins its group once the broker has given up on the dead member:
    # a short session timeout keeps that wait to seconds.
    worker = Worker(
        own_broker,
        tmp_path,
        countries=COUNTRIES,
        partitions=PARTITIONS,
        env={"LINTAS_PROCESSOR__SESSION_TIMEOUT_MS": "10000"},
    )
    worker.start()
    try:
        for share in (0.2, 0.4, 0.6):
            wait_for_receipts(own_broker, codec, sources, int(STREAM * share), worker, within=240)
            worker.signal(sig)
            worker.start()
        wait_for_receipts(own_broker, codec, sources, STREAM, worker, within=300)
        time.sleep(1.0)  # anything written twice would show up now
    finally:
        if worker.alive():
            worker.signal(signal.SIGTERM)

    receipts = receipts_so_far(own_broker, codec, sources)
    coordinates = Counter((r.source_topic, r.source_partition, r.source_offset) for _, r in receipts)
    assert len(coordinates) == STREAM, "every input has a receipt"
    assert max(coordinates.values()) == 1, "no input has two receipts"
    by_status = Counter(r.status for _, r in receipts)
    assert by_status[ReceiptStatus.Duplicate] == 0
    assert by_status[ReceiptStatus.Accepted] + by_status[ReceiptStatus.Rejected] == STREAM
    assert by_status[ReceiptStatus.Accepted] > STREAM // 2, by_status

    inbox = asyncio.run(read_all(own_broker, [focal_inbox(c) for c in COUNTRIES], within=120))
    assert_delivered_once(inbox, [r for _, r in receipts])

    occurred = {str(e.envelope.event_id): e.envelope.occurred_at for e in events}
    # In order per case and sender: a transit country's inbox holds the events of both parties, each
    # party's in the order it published them.
    per_case: dict[tuple[str, bytes, bytes], list[datetime]] = defaultdict(list)
    for record in inbox:
        headers = header_map(record.headers)
        per_case[(record.topic, record.key, headers["ce_source"])].append(occurred[headers["ce_id"].decode()])
    assert all(times == sorted(times) for times in per_case.values()), "in order per case"

    dead = asyncio.run(read_all(own_broker, [DEADLETTER], within=120))
    assert len(dead) == by_status[ReceiptStatus.Rejected]
    assert worker.starts == 4


def _raw(event: Event, **envelope_changes: Any) -> bytes:
    """Bytes our own codec would refuse to write: the contract's types, but the rules broken."""
    schema = Codec().contract.latest.events[type(event).__name__]
    record = event.model_dump()
    record["envelope"].update(envelope_changes)
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema.parsed, record)
    return MARKER + schema.fingerprint + body.getvalue()


def test_garbage_never_stops_the_worker_and_lands_in_the_dead_letters(
    own_broker: str, tmp_path: Path
) -> None:
    codec = Codec()
    systems = national_systems(tmp_path, codec)
    good = make_stream(600)
    opening = [
        e for e in good if type(e).__name__ == "VictimIdentified" and e.envelope.source_country.value == "TH"
    ]
    asyncio.run(ensure_topics(own_broker, all_topics(COUNTRIES), partitions=PARTITIONS))
    bad: list[tuple[bytes, Reason]] = [
        (b"", Reason.UNDECODABLE),
        (b"\x00garbage\xff" * 5, Reason.UNDECODABLE),
        (MARKER + b"\x01\x02\x03\x04\x05\x06\x07\x08" + b"\x00" * 40, Reason.UNKNOWN_SCHEMA),
        (codec.encode(opening[0])[: HEADER_SIZE + 7], Reason.UNDECODABLE),
        (systems.encode(opening[0])[:-70], Reason.UNDECODABLE),
        (_raw(opening[1], destination_country="ZZ", event_id=uuid.uuid4()), Reason.INVALID_EVENT),
        (
            codec.encode(
                opening[3].model_copy(
                    update={"envelope": opening[3].envelope.model_copy(update={"event_id": uuid.uuid4()})}
                )
            ),
            Reason.UNSIGNED,
        ),
        (
            systems.encode(
                opening[2].model_copy(
                    update={
                        "envelope": opening[2].envelope.model_copy(
                            update={
                                "destination_country": "SG",
                                "event_id": uuid.uuid4(),
                                "case_id": opening[2].envelope.case_id + "X",
                            }
                        )
                    }
                )
            ),
            Reason.NO_AGREEMENT,
        ),
    ]
    messages = []
    for index, event in enumerate(good):
        topic = nrm_events(event.envelope.source_country.value)
        messages.append(
            (topic, event.envelope.case_id.encode(), systems.encode(event), envelope_headers(event.envelope))
        )
        if index % 100 == 50:
            for value, _ in bad:
                messages.append((nrm_events("TH"), b"TH-BAD", value, [("origin", b"fuzz")]))
    sources = sorted({topic.split(".")[2].upper() for topic, *_ in messages})
    worker = Worker(own_broker, tmp_path, countries=COUNTRIES, partitions=PARTITIONS)
    worker.start()
    try:
        asyncio.run(publish(own_broker, messages))
        wait_for_receipts(own_broker, codec, sources, len(messages), worker, within=180)
        assert worker.alive(), worker.logs()
    finally:
        worker.signal(signal.SIGTERM)

    receipts = [r for _, r in receipts_so_far(own_broker, codec, sources)]
    dead = asyncio.run(read_all(own_broker, [DEADLETTER], within=60))
    rounds = len([i for i in range(len(good)) if i % 100 == 50])
    reasons = Counter(header_map(d.headers)["lintas_error_code"].decode() for d in dead)
    for _, reason in bad:
        expected = rounds * sum(1 for _, r in bad if r == reason)
        assert reasons[reason.value] >= expected, reasons
    for record in dead:
        headers = header_map(record.headers)
        assert headers["lintas_error"], "every dead letter says why"
        assert headers["lintas_source_topic"].startswith(b"lintas.nrm.")
    assert sum(1 for d in dead if header_map(d.headers).get("origin") == b"fuzz") == rounds * len(bad)
    accepted_ids = {str(r.event_id) for r in receipts if r.status == ReceiptStatus.Accepted}
    rejected_good = [
        r
        for r in receipts
        if r.status == ReceiptStatus.Rejected
        and r.event_id
        and r.reason_code not in (Reason.INVALID_EVENT, Reason.NO_AGREEMENT, Reason.UNSIGNED)
    ]
    assert all(r.reason_code == Reason.OUT_OF_SEQUENCE for r in rejected_good), rejected_good[:3]
    assert len(accepted_ids) + len(rejected_good) == len(good)
