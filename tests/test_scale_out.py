"""Several router workers in one group, on a real broker, as an operator scales them: the second
joins mid-stream (a rebalance while transactions are open), one is killed with SIGKILL and restarted,
one is paused (SIGSTOP) past its session timeout so its partitions move, then resumed (SIGCONT); two
alert workers run beside them, one killed and restarted. With 2 workers on 5 partitions per topic, 3
on 6 and 4 on 5 (counts that do not divide each other), every input gets exactly one receipt
with the outcome a single sequential router gives, every accepted event reaches its inbox exactly once
and in order per case, and every alert is sent once.

The stream is published in causal rounds (round k holds the k-th event of every case, and goes out when
round k-1 is routed), so within a round the order of reading does not matter and the outcome of every
event is known beforehand.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition

from hub.contract import ReceiptStatus
from hub.events import Event
from hub.headers import header_map
from hub.kafka import ensure_topics, producer, publish_events, read_all
from hub.routing import CaseRoute, Incoming
from hub.synthetic import causal_rounds, synthetic_stream
from hub.topics import alerts, all_topics, focal_inbox, nrm_events
from hub.worker import GROUP_ID
from tests.workers import (
    Preencoded,
    Worker,
    assert_delivered_once,
    national_systems,
    receipts_so_far,
    stop_all,
    v2_router,
    wait_until_committed,
)

pytestmark = pytest.mark.kafka

COUNTRIES = ["TH", "MM", "LA", "KH", "VN", "CN", "MY", "ID", "PH", "JP", "SG"]
CASES = 5000  # about 20,000 events
SESSION_TIMEOUT_MS = 6000
WORKER_ENV = {
    "LINTAS_PROCESSOR__SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
    "LINTAS_PROCESSOR__TRANSACTION_TIMEOUT_MS": "30000",
}


def expected_outcomes(
    codec: Preencoded, rounds: list[list[Event]]
) -> dict[str, tuple[ReceiptStatus, str | None]]:
    """What one router reading the rounds in order decides for each event id."""
    router = v2_router(codec.systems)
    states: dict[str, CaseRoute] = {}
    outcomes = {}
    for events in rounds:
        for offset, event in enumerate(events):
            topic = nrm_events(event.envelope.source_country.value)
            decision = router.route(
                Incoming(
                    country=event.envelope.source_country.value,
                    topic=topic,
                    partition=0,
                    offset=offset,
                    key=event.envelope.case_id.encode(),
                    value=codec.encode(event),
                ),
                states,
            )
            if decision.state is not None and decision.case_id is not None:
                states[decision.case_id] = decision.state
            outcomes[str(event.envelope.event_id)] = (
                decision.status,
                decision.reason.value if decision.reason else None,
            )
    return outcomes


async def _publish(bootstrap: str, codec: Preencoded, events: list[Event]) -> None:
    kafka_producer = producer(bootstrap, linger_ms=5)
    await kafka_producer.start()
    try:
        await asyncio.wait_for(publish_events(kafka_producer, codec, events), 120)
    finally:
        await kafka_producer.stop()


@pytest.mark.parametrize(
    ("workers", "partitions"),
    # Each worker count once, and both partition counts: 4 workers on 5 partitions is the case
    # where counts divide neither way.
    [(2, 5), (3, 6), (4, 5)],
    ids=lambda value: str(value),
)
def test_workers_scale_out_pause_and_die_without_losing_or_duplicating(
    own_broker: str, tmp_path: Path, workers: int, partitions: int
) -> None:
    now = datetime.now(UTC)
    events = list(
        synthetic_stream(seed=23, cases=CASES, start=now - timedelta(days=700), until=now, run_tag="S-")
    )
    rounds = causal_rounds(events)
    encoded = Preencoded(national_systems(tmp_path), events)
    codec = encoded.systems.wire.codec
    expected = expected_outcomes(encoded, rounds)
    sources = sorted({e.envelope.source_country.value for e in events})
    asyncio.run(ensure_topics(own_broker, all_topics(COUNTRIES), partitions=partitions))
    inputs = [TopicPartition(nrm_events(c), p) for c in COUNTRIES for p in range(partitions)]

    def worker(instance: str, command: tuple[str, ...] = ("worker",)) -> Worker:
        return Worker(
            own_broker,
            tmp_path,
            instance=instance,
            command=command,
            countries=COUNTRIES,
            partitions=partitions,
            env=WORKER_ENV,
        )

    routers = [worker(f"r{i}") for i in range(workers)]
    alerters = [worker(f"a{i}", ("alerts", "--every", "0.5")) for i in range(2)]
    everyone = [*routers, *alerters]
    routers[0].start()
    for alerter in alerters:
        alerter.start()

    def wait(target: int) -> None:
        wait_until_committed(own_broker, GROUP_ID, inputs, target, everyone, within=300)
        dead = [w.instance for w in everyone if w.process is not None and not w.alive()]
        assert not dead, f"workers {dead} died\n" + "\n".join(w.logs() for w in everyone)

    published = 0
    try:
        for index, round_events in enumerate(rounds):
            # Published in the background: faults strike once the round's first batch is committed,
            # while the rest is still arriving and every worker is busy.
            publishing = threading.Thread(
                target=asyncio.run, args=(_publish(own_broker, encoded, round_events),)
            )
            publishing.start()
            busy = published + 1
            published += len(round_events)
            if index == 0:  # the others join while the first has transactions open
                wait(busy)
                for other in routers[1:]:
                    other.start()
            elif index == 1:  # one dies mid-transaction and comes back under the same id
                wait(busy)
                routers[0].signal(signal.SIGKILL)
                routers[0].start()
                alerters[0].signal(signal.SIGKILL)
                alerters[0].start()
            elif index == 2:  # one is paused past its session timeout; the others take over
                wait(busy)
                routers[-1].send(signal.SIGSTOP)
                time.sleep(SESSION_TIMEOUT_MS / 1000 + 6)
                routers[-1].send(signal.SIGCONT)
            publishing.join(timeout=120)
            wait(published)
        time.sleep(3.0)  # let the alert workers tick over the last rounds; anything sent twice shows now
    finally:
        stop_all(everyone)

    receipts = receipts_so_far(own_broker, codec, sources)
    coordinates = Counter((r.source_topic, r.source_partition, r.source_offset) for _, r in receipts)
    assert len(coordinates) == len(events), "every input has a receipt"
    assert max(coordinates.values()) == 1, "no input has two receipts"
    outcomes = {str(r.event_id): (r.status, r.reason_code) for _, r in receipts}
    differing = {i: (outcomes.get(i), want) for i, want in expected.items() if outcomes.get(i) != want}
    assert not differing, (
        f"{len(differing)} outcomes differ from one sequential router: {list(differing.items())[:5]}"
    )
    assert Counter(s for s, _ in outcomes.values())[ReceiptStatus.Accepted] > len(events) // 2

    inbox = asyncio.run(read_all(own_broker, [focal_inbox(c) for c in COUNTRIES], within=120))
    assert_delivered_once(inbox, [r for _, r in receipts])
    occurred = {str(e.envelope.event_id): e.envelope.occurred_at for e in events}
    per_case: dict[tuple[str, bytes, bytes], list[datetime]] = defaultdict(list)
    for record in inbox:  # per sender: a transit country's inbox holds both parties' events
        headers = header_map(record.headers)
        per_case[(record.topic, record.key, headers["ce_source"])].append(occurred[headers["ce_id"].decode()])
    assert all(times == sorted(times) for times in per_case.values()), "in order per case"

    sent = asyncio.run(read_all(own_broker, [alerts(c) for c in COUNTRIES], within=120))
    per_recipient = Counter((record.topic, codec.decode_alert(record.value).alert_id) for record in sent)
    assert per_recipient, "the alert workers sent alerts"
    assert max(per_recipient.values()) == 1, "each alert once to each focal point"
