"""The simulation against a real broker and the v2 router: small live plans published through the
Kafka door (each country's own producer), the import door (daily export files run through the
importer) and the HTTP API (each country's credential), every event answered with one receipt,
accepted."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.api.credentials import Role
from hub.codec import Codec
from hub.kafka import ensure_topics, read_all
from hub.simulation.logins import DemoLogins, Login
from hub.simulation.plan import DOORS, Door, Scheduled, live_plan
from hub.simulation.run import ApiDoor, Doors, ImportDoor, KafkaDoor, RegionWriter, run
from hub.topics import all_topics, nrm_receipts
from hub.worker import RouterWorker
from tests.apiserver import LiveApi
from tests.workers import national_systems, v2_router

pytestmark = pytest.mark.kafka

STEP = 60.0
CASES = 10


def _plan(tag: str, now: datetime) -> list[Scheduled]:
    """Cases whose countries all publish through Kafka or the importer, everything already due."""
    plan = live_plan(11, now, cases=80, run_tag=tag, horizon=timedelta(0))
    api = {item.event.envelope.case_id for item in plan if item.door is Door.API}
    files = {item.event.envelope.case_id for item in plan if item.door is Door.IMPORT} - api
    others = {item.event.envelope.case_id for item in plan} - api - files
    chosen = [*sorted(files)[: CASES // 2], *sorted(others)][:CASES]
    return [item for item in plan if item.event.envelope.case_id in chosen]


def test_a_live_plan_through_kafka_and_the_importer_is_accepted_once_each(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    tag = f"K{uuid.uuid4().hex[:6].upper()}-"
    now = datetime.now(UTC)
    plan = _plan(tag, now)
    assert len({item.event.envelope.case_id for item in plan}) == CASES
    assert {item.door for item in plan} == {Door.KAFKA, Door.IMPORT}
    codec = Codec()
    systems = national_systems(tmp_path, codec)
    countries = sorted(DOORS)

    async def scenario() -> int:
        await ensure_topics(kafka_bootstrap, all_topics(countries), partitions=6)
        stop, started = asyncio.Event(), asyncio.Event()
        worker = RouterWorker(
            kafka_bootstrap,
            v2_router(systems),
            group_id=f"test-simulation-{tag}",
            instance=tag,
            keys=systems.keys,
            auto_offset_reset="latest",
        )
        task = asyncio.create_task(worker.run(stop, started))
        writer = RegionWriter(systems)
        doors = Doors(
            {
                Door.KAFKA: KafkaDoor(kafka_bootstrap, writer, lambda _: {}),
                Door.IMPORT: ImportDoor(
                    kafka_bootstrap,
                    writer,
                    lambda _: {},
                    tmp_path / "exports",
                    clock=lambda: datetime.now(UTC),
                ),
            },
            settle=1.0,
        )
        try:
            await asyncio.wait_for(started.wait(), STEP)
            published = await asyncio.wait_for(
                run(plan, clock=lambda: datetime.now(UTC), doors=doors, stop=asyncio.Event()), STEP
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + STEP
            while sum(worker.stats.outcomes.values()) < len(plan):
                assert loop.time() < deadline, worker.stats
                await asyncio.sleep(0.05)
            return published
        finally:
            await doors.close()
            stop.set()
            await asyncio.wait_for(task, STEP)

    published = asyncio.run(scenario())
    gc.collect()  # frees the stopped worker's Kafka clients now, while the broker is up
    assert published == len(plan)
    assert list((tmp_path / "exports").glob("export-kh-*.jsonl")), "Cambodia's events came as files"

    records = asyncio.run(read_all(kafka_bootstrap, [nrm_receipts(c) for c in countries], within=STEP))
    receipts = [
        codec.decode_receipt(record.value)
        for record in records
        if record.key is not None and tag.encode() in record.key
    ]
    per_event = Counter(str(receipt.event_id) for receipt in receipts)
    wanted = {str(item.event.envelope.event_id) for item in plan}
    assert set(per_event) == wanted
    assert set(per_event.values()) == {1}, "one receipt per event"
    refused = [(r.event_type, r.reason_code, r.message) for r in receipts if r.status.value != "Accepted"]
    assert refused == []


def test_a_live_plan_through_the_api_is_accepted_once_each(kafka_bootstrap: str, tmp_path: Path) -> None:
    tag = f"A{uuid.uuid4().hex[:6].upper()}-"
    now = datetime.now(UTC)
    full = live_plan(12, now, cases=80, run_tag=tag, horizon=timedelta(0))
    others = {item.event.envelope.case_id for item in full if item.door is not Door.API}
    chosen = sorted({item.event.envelope.case_id for item in full} - others)[:CASES]
    plan = [item for item in full if item.event.envelope.case_id in chosen]
    assert plan
    codec = Codec()
    api = LiveApi(kafka_bootstrap, tmp_path).start()
    try:
        logins = DemoLogins(
            api_url=api.url,
            dashboard_url=f"{api.url}/",
            logins=[
                Login(country=c, role="national-system", token=api.token(c, Role.NATIONAL_SYSTEM), label=c)
                for c in ("TH", "MY", "PH", "ID")
            ],
        )

        async def scenario() -> int:
            doors = Doors({Door.API: ApiDoor(logins)}, settle=1.0)
            try:
                return await asyncio.wait_for(
                    run(plan, clock=lambda: datetime.now(UTC), doors=doors, stop=asyncio.Event()), STEP
                )
            finally:
                await doors.close()

        assert asyncio.run(scenario()) == len(plan)
        wanted = {str(item.event.envelope.event_id) for item in plan}

        def receipts() -> list[Any]:
            records = asyncio.run(
                read_all(kafka_bootstrap, [nrm_receipts(c) for c in ("MY", "PH", "ID", "TH")])
            )
            found = [
                codec.decode_receipt(r.value) for r in records if r.key is not None and tag.encode() in r.key
            ]
            return found if {str(r.event_id) for r in found} >= wanted else []

        found = api.wait_for(receipts, within=STEP)
        assert Counter(str(r.event_id) for r in found) == Counter(dict.fromkeys(wanted, 1))
        assert {r.status.value for r in found} == {"Accepted"}
    finally:
        api.stop()
