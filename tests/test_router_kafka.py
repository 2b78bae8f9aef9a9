"""Routing on the real broker: events published by three countries reach exactly the right inboxes,
minimised per agreement and consent, and every sender gets its receipts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hub.agreements import load_agreements
from hub.codec import Codec
from hub.contract import ReceiptStatus, VictimIdentified
from hub.events import parse_event
from hub.headers import header_map
from hub.kafka import ensure_topics, producer, publish_events, read_all
from hub.processor import partition_lags
from hub.routing import Router
from hub.topics import all_topics, focal_inbox, nrm_receipts
from hub.worker import RouterWorker
from tests.strategies import NOW
from tests.test_codec import fisherman

pytestmark = pytest.mark.kafka
STEP = 60.0


def identified(source: str, destination: str, case_id: str, **changes: Any) -> VictimIdentified:
    fields: dict[str, Any] = {
        "envelope__event_id": str(uuid.uuid4()),
        "envelope__case_id": case_id,
        "envelope__source_country": source,
        "envelope__source_agency": f"{source}-NRM",
        "envelope__destination_country": destination,
        "nationality": destination,
        "methods_of_control": ["DebtBondage", "WithholdsDocuments"],
        "consent_scope": ["CaseCore", "AssistanceNeeds", "PersonalIdentity", "Legal"],
    }
    record = fisherman(**{**fields, **changes})
    event = parse_event(record, now=NOW)
    assert isinstance(event, VictimIdentified)
    return event


@contextlib.asynccontextmanager
async def running_router(
    bootstrap: str, codec: Codec, group: str, instance: str, **options: Any
) -> AsyncIterator[RouterWorker]:
    """A router worker of its own group, started (partitions assigned, state restored) and
    reading from the end; stopped on leaving."""
    stop, started = asyncio.Event(), asyncio.Event()
    worker = RouterWorker(
        bootstrap,
        Router(codec=codec, agreements=load_agreements()),
        group_id=group,
        instance=instance,
        auto_offset_reset="latest",
        **options,
    )
    task = asyncio.create_task(worker.run(stop, started))
    try:
        await asyncio.wait_for(started.wait(), STEP)
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, STEP)


async def routed(worker: RouterWorker, count: int, what: object) -> None:
    """Wait until ``worker`` has committed ``count`` receipts; ``what`` explains a timeout."""
    deadline = asyncio.get_running_loop().time() + STEP
    while sum(worker.stats.outcomes.values()) < count:
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.05)


def test_three_countries_reach_the_right_inboxes_minimised_with_receipts(
    kafka_bootstrap: str,
) -> None:
    codec = Codec(clock=lambda: NOW)
    tag = uuid.uuid4().hex[:8].upper()
    thai = identified("TH", "MM", f"TH-{tag}-1")  # TH->MM grants Legal and PersonalIdentity
    malaysian = identified("MY", "PH", f"MY-{tag}-2")  # MY->PH grants no Legal
    chinese = identified(
        "CN",
        "VN",
        f"CN-{tag}-3",
        consent_scope=["CaseCore"],  # consent narrower than the MoU
    )
    events = [thai, malaysian, chinese]

    async def scenario() -> tuple[list[Any], list[Any]]:
        await ensure_topics(kafka_bootstrap, all_topics(["TH", "MM", "MY", "PH", "CN", "VN"]), partitions=6)
        async with running_router(kafka_bootstrap, codec, f"test-router-{tag}", tag) as worker:
            kafka_producer = producer(kafka_bootstrap)
            await kafka_producer.start()
            try:
                await asyncio.wait_for(publish_events(kafka_producer, codec, events), STEP)
            finally:
                await kafka_producer.stop()
            await routed(worker, len(events), worker.stats)
        inbox = await read_all(kafka_bootstrap, [focal_inbox(c) for c in ("MM", "PH", "VN", "TH")])
        receipts = await read_all(kafka_bootstrap, [nrm_receipts(c) for c in ("TH", "MY", "CN")])
        return inbox, receipts

    inbox, receipts = asyncio.run(scenario())

    ours = [record for record in inbox if tag.encode() in record.key]
    delivered = {record.key.decode(): (record.topic, codec.decode(record.value)) for record in ours}
    assert len(ours) == 3
    assert delivered[thai.envelope.case_id] == ("lintas.focal.mm.inbox", thai)
    topic, to_ph = delivered[malaysian.envelope.case_id]
    assert topic == "lintas.focal.ph.inbox"
    assert to_ph.methods_of_control == ()  # Legal is not granted MY -> PH
    assert to_ph.personal == malaysian.personal
    topic, to_vn = delivered[chinese.envelope.case_id]
    assert topic == "lintas.focal.vn.inbox"
    assert to_vn.personal is None  # the person consented to share the case core only
    assert to_vn.needs == ()
    assert header_map(ours[0].headers)["ce_subject"] == ours[0].key

    mine = [codec.decode_receipt(r.value) for r in receipts if tag.encode() in (r.key or b"")]
    by_case = {receipt.case_id: receipt for receipt in mine}
    assert len(mine) == 3
    assert {r.status for r in mine} == {ReceiptStatus.Accepted}
    assert [c.value for c in by_case[thai.envelope.case_id].routed_to] == ["MM"]
    assert by_case[thai.envelope.case_id].withheld == ()
    assert by_case[malaysian.envelope.case_id].withheld == ("methods_of_control", "recruitment_methods")[
        :1
    ] or ("methods_of_control" in by_case[malaysian.envelope.case_id].withheld)
    assert set(by_case[chinese.envelope.case_id].withheld) >= {"personal", "needs"}


def test_an_event_id_belongs_to_the_first_case_that_used_it_across_partitions_and_restarts(
    kafka_bootstrap: str,
) -> None:
    codec = Codec(clock=lambda: NOW)
    tag = uuid.uuid4().hex[:8].upper()
    first = identified("TH", "MM", f"TH-{tag}-A")
    event_id = str(first.envelope.event_id)
    # Cases whose keys land in other partitions than the first: the check is not per partition.
    others = [
        identified("TH", "MM", f"TH-{tag}-{n}", envelope__event_id=event_id) for n in ("B", "C", "D", "E")
    ]
    resubmitted = first
    group = f"test-router-ids-{tag}"

    async def route(events: list[VictimIdentified], instance: str) -> None:
        await ensure_topics(kafka_bootstrap, all_topics(["TH", "MM"]), partitions=6)
        async with running_router(kafka_bootstrap, codec, group, instance) as worker:
            kafka_producer = producer(kafka_bootstrap)
            await kafka_producer.start()
            try:
                for event in events:  # one at a time: each is routed before the next is sent
                    before = sum(worker.stats.outcomes.values())
                    await publish_events(kafka_producer, codec, [event])
                    await routed(worker, before + 1, worker.stats)
            finally:
                await kafka_producer.stop()

    asyncio.run(route([first, others[0], resubmitted, others[1]], "a"))
    asyncio.run(route([others[2], resubmitted, others[3]], "b"))  # a new worker knows the ids too

    receipts = asyncio.run(read_all(kafka_bootstrap, [nrm_receipts("TH")]))
    mine = [codec.decode_receipt(r.value) for r in receipts if tag.encode() in (r.key or b"")]
    by_case: dict[str, list[Any]] = {}
    for receipt in mine:
        by_case.setdefault(receipt.case_id, []).append(receipt)
    assert [r.status for r in by_case[first.envelope.case_id]] == [
        ReceiptStatus.Accepted,
        ReceiptStatus.Duplicate,
        ReceiptStatus.Duplicate,
    ]
    for other in others:
        (receipt,) = by_case[other.envelope.case_id]
        assert receipt.status == ReceiptStatus.Rejected
        assert receipt.reason_code == "conflict"
        assert "envelope.event_id" in receipt.message
    inbox = asyncio.run(read_all(kafka_bootstrap, [focal_inbox("MM")]))
    delivered = [r for r in inbox if tag.encode() in r.key]
    assert [r.key.decode() for r in delivered] == [first.envelope.case_id], "only the first is routed"


def test_a_claim_that_does_not_come_back_is_read_again_and_its_event_routed(kafka_bootstrap: str) -> None:
    """The router holds a new event id's event until its claim is read back from lintas.router.ids;
    should that reader stall (here: paused, as a fetch stuck after a leader change would leave it),
    the claims are read again from the start instead of holding the event for good."""
    codec = Codec(clock=lambda: NOW)
    tag = uuid.uuid4().hex[:8].upper()
    event = identified("TH", "MM", f"TH-{tag}-S")

    async def scenario() -> tuple[int, int]:
        await ensure_topics(kafka_bootstrap, all_topics(["TH", "MM"]), partitions=6)
        group = f"test-router-stall-{tag}"
        async with running_router(kafka_bootstrap, codec, group, tag, claim_readback_s=1.0) as worker:
            reader = worker._ids
            assert reader is not None
            reader.pause(reader.assignment())
            kafka_producer = producer(kafka_bootstrap)
            await kafka_producer.start()
            try:
                await asyncio.wait_for(publish_events(kafka_producer, codec, [event]), STEP)
            finally:
                await kafka_producer.stop()
            await routed(worker, 1, "the event is still held")
        return worker.claims_reread, worker.stats.outcomes[ReceiptStatus.Accepted.value]

    reread, accepted = asyncio.run(scenario())
    assert reread >= 1
    assert accepted == 1


def test_the_health_lag_comes_from_librdkafka_s_statistics_for_every_assigned_partition(
    kafka_bootstrap: str,
) -> None:
    async def scenario() -> dict[str, int]:
        await ensure_topics(kafka_bootstrap, all_topics(["TH", "MM"]), partitions=6)
        group = f"test-lag-{uuid.uuid4().hex[:8]}"
        codec = Codec(clock=lambda: NOW)
        async with running_router(kafka_bootstrap, codec, group, "0") as worker:
            kafka_producer = producer(kafka_bootstrap)
            await kafka_producer.start()
            try:
                await publish_events(kafka_producer, codec, [identified("TH", "MM", f"TH-{group}")])
            finally:
                await kafka_producer.stop()
            await routed(worker, 1, "the event was not routed")
            deadline = asyncio.get_running_loop().time() + STEP
            while not worker.lag():
                assert asyncio.get_running_loop().time() < deadline, "no statistics reached the worker"
                await asyncio.sleep(0.2)
            assigned = {f"{tp.topic}[{tp.partition}]" for tp in worker._assigned}
            lag = worker.lag()
            assert set(lag) <= assigned
            return lag

    lag = asyncio.run(scenario())
    assert all(value >= 0 for value in lag.values())
    assert any(name.startswith("lintas.nrm.th.events[") for name in lag)


def test_partition_lags_reads_librdkafka_s_statistics_and_skips_the_unknown() -> None:
    partitions = {
        "0": {"hi_offset": 10, "app_offset": 7, "consumer_lag": 9},
        "1": {"hi_offset": 5, "app_offset": -1, "consumer_lag": 2},
        "2": {"hi_offset": 5, "app_offset": -1, "consumer_lag": -1},
        "-1": {"consumer_lag": 0},
    }
    document = {"topics": {"lintas.nrm.th.events": {"partitions": partitions}}}
    assert partition_lags(json.dumps(document)) == {
        ("lintas.nrm.th.events", 0): 3,
        ("lintas.nrm.th.events", 1): 2,
    }
    assert partition_lags("not json") == {}
