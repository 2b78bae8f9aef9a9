"""End to end on the real broker: topics are created idempotently, and an event published with the
codec to its identifying country's topic is read back and decoded equal."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from hub.agreements import load_agreements
from hub.cli import app
from hub.codec import Codec
from hub.events import parse_event
from hub.headers import header_map
from hub.kafka import ensure_topics, producer, publish_events, read_all, topic_partitions
from hub.topics import all_topics, nrm_events
from tests.conftest import new_topic_name
from tests.strategies import NOW
from tests.test_codec import fisherman

pytestmark = pytest.mark.kafka
STEP = 30.0


async def _partitions(bootstrap: str, topic: str) -> int:
    return (await asyncio.wait_for(topic_partitions(bootstrap, [topic]), STEP))[topic]


def test_ensure_topics_creates_missing_topics_once(kafka_bootstrap: str) -> None:
    names = [new_topic_name("lintas.e2e.a"), new_topic_name("lintas.e2e.b")]

    first = asyncio.run(ensure_topics(kafka_bootstrap, names, partitions=3))
    second = asyncio.run(ensure_topics(kafka_bootstrap, names, partitions=3))

    assert sorted(first.created) == sorted(names)
    assert first.existing == ()
    assert second.created == ()
    assert sorted(second.existing) == sorted(names)
    assert asyncio.run(_partitions(kafka_bootstrap, names[0])) == 3


def test_topics_init_command_is_idempotent(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINTAS_TOPICS__COUNTRIES", '["TH", "MM"]')
    runner = CliRunner()

    first = runner.invoke(app, ["topics", "init", "-b", kafka_bootstrap, "--partitions", "2"])
    second = runner.invoke(app, ["topics", "init", "-b", kafka_bootstrap, "--partitions", "2"])

    # every party to an agreement gets its topics too, whatever the configured list says
    parties = {c.value for corridor in load_agreements().corridors for c in corridor.countries}
    expected = all_topics(sorted(parties | {"TH", "MM"}))
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert f"created 0, already present {len(expected)}" in second.output
    assert asyncio.run(_partitions(kafka_bootstrap, "lintas.focal.mm.inbox")) >= 1
    assert asyncio.run(_partitions(kafka_bootstrap, "lintas.alerts.jp")) >= 1


def test_published_event_is_read_back_from_its_country_topic_and_decodes_equal(
    kafka_bootstrap: str,
) -> None:
    codec = Codec(clock=lambda: NOW)
    case_id = f"TH-E2E-{new_topic_name('c')[-12:]}"
    event = parse_event(
        fisherman(envelope__case_id=case_id, envelope__recorded_at=NOW - timedelta(hours=3)),
        now=NOW,
    )
    topic = nrm_events("TH")

    async def scenario() -> list:  # type: ignore[type-arg]
        await ensure_topics(kafka_bootstrap, [topic], partitions=3)
        kafka_producer = producer(kafka_bootstrap)
        await asyncio.wait_for(kafka_producer.start(), STEP)
        try:
            assert await asyncio.wait_for(publish_events(kafka_producer, codec, [event]), STEP) == 1
        finally:
            await asyncio.wait_for(kafka_producer.stop(), STEP)
        return await read_all(kafka_bootstrap, [topic], within=STEP)

    records = [r for r in asyncio.run(scenario()) if r.key == case_id.encode()]

    assert len(records) == 1
    record = records[0]
    assert codec.decode(record.value) == event
    headers = header_map(record.headers)
    assert headers["ce_id"] == str(event.envelope.event_id).encode()
    assert headers["ce_type"] == b"org.lintas.VictimIdentified"
    assert headers["ce_lintasdestination"] == b"MM"
