"""The live alert feed on a real broker: alerts reach both focal points concerned, and a restarted
worker never sends the same alert twice; a changed level (due soon -> overdue) is a new alert."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest

from hub.agreements import load_agreements
from hub.codec import Codec
from hub.contract import AlertLevel, ObligationKind
from hub.events import parse_event
from hub.headers import envelope_headers
from hub.kafka import ensure_topics, producer, read_all
from hub.topics import ACCEPTED_EVENTS, alerts, all_topics
from projections.alerts.worker import AlertWorker
from tests.test_codec import fisherman

pytestmark = pytest.mark.kafka
STEP = 60.0


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def case_events(case_id: str) -> list[Any]:
    identified = fisherman(
        envelope__event_id=str(uuid.uuid4()),
        envelope__case_id=case_id,
        envelope__occurred_at=datetime(2026, 11, 1, 8, tzinfo=UTC),
        envelope__recorded_at=datetime(2026, 11, 1, 9, tzinfo=UTC),
        identified_on="2026-11-01",
        reflection_period_start="2026-11-01",
    )
    referral = {
        "envelope": {
            **identified["envelope"],
            "event_id": str(uuid.uuid4()),
            "event_type": "ReferralRequested",
            "occurred_at": datetime(2026, 11, 5, 8, tzinfo=UTC),
            "recorded_at": datetime(2026, 11, 5, 9, tzinfo=UTC),
        },
        "purposes": ["VerifyNationalityIdentity", "TraceFamily"],
        "urgency": "Routine",
        "respond_by": "2026-12-05",
    }
    now = datetime(2026, 11, 23, tzinfo=UTC)
    return [parse_event(identified, now=now), parse_event(referral, now=now)]


async def run_until(worker: AlertWorker, condition: Any, within: float = STEP) -> None:
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(worker.run(stop, started, tick_every=0.1))
    try:
        await asyncio.wait_for(started.wait(), within)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not condition():
            assert loop.time() < deadline, worker.stats
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # several more ticks: nothing more may be sent
    finally:
        stop.set()
        await asyncio.wait_for(task, within)


def test_alerts_are_sent_once_per_obligation_and_level_across_restarts(own_broker: str) -> None:
    codec = Codec()
    agreements = load_agreements()
    case_id = f"TH-ALERT-{uuid.uuid4().hex[:6]}"
    events = case_events(case_id)
    clock = Clock(datetime(2026, 11, 13, 12, tzinfo=UTC))  # acknowledgement 1 day overdue

    async def scenario() -> list[Any]:
        await ensure_topics(own_broker, all_topics(["TH", "MM"]), partitions=3)
        kafka_producer = producer(own_broker)
        await kafka_producer.start()
        try:
            for event in events:
                await kafka_producer.send_and_wait(
                    ACCEPTED_EVENTS,
                    codec.encode(event),
                    key=case_id.encode(),
                    headers=envelope_headers(event.envelope),
                )
        finally:
            await kafka_producer.stop()

        def worker() -> AlertWorker:
            return AlertWorker(own_broker, codec, agreements, clock=clock, instance="a")

        first = worker()
        await run_until(first, lambda: first.stats.outcomes["alert_Overdue"] >= 1)
        assert first.stats.outcomes["folded"] == 2

        second = worker()  # a restart: state and the alerts already sent come from the changelog
        await run_until(second, lambda: second.stats.batches >= 0)
        assert not any(key.startswith("alert_") for key in second.stats.outcomes)

        clock.now = datetime(2026, 12, 4, 12, tzinfo=UTC)  # the answer falls due within two days
        third = worker()
        await run_until(third, lambda: third.stats.outcomes["alert_DueSoon"] >= 1)
        return await read_all(own_broker, [alerts("TH"), alerts("MM")], within=STEP)

    records = asyncio.run(scenario())
    received = [(record.topic, codec.decode_alert(record.value)) for record in records]
    per_topic_and_id = Counter((topic, alert.alert_id) for topic, alert in received)
    assert max(per_topic_and_id.values()) == 1, per_topic_and_id
    kinds = {(alert.kind, alert.level) for _, alert in received}
    assert kinds == {
        (ObligationKind.AcknowledgeReferral, AlertLevel.Overdue),
        (ObligationKind.AnswerReferral, AlertLevel.DueSoon),
    }
    for _, alert in received:
        assert alert.case_id == case_id
        assert (alert.owner.value, alert.waiting.value) == ("MM", "TH")
    assert {topic for topic, _ in received} == {alerts("TH"), alerts("MM")}
