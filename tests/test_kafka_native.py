"""A national system publishes to Lintas from the schemas alone: the examples in examples/kafka-native
(Apache Avro, cryptography, confluent-kafka; the hub cannot be imported) write what the hub's own codec
writes, and the hub's router accepts, routes and answers them on a real broker."""

from __future__ import annotations

import asyncio
import importlib
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from uuid import uuid4

import pytest
from confluent_kafka import Producer

from hub.cli import make_router
from hub.codec import Codec
from hub.contract import ReceiptStatus
from hub.crypto.signing import demo_signer, load_key_directory
from hub.events import parse_event
from hub.headers import header_map
from hub.kafka import ensure_topics, read_all
from hub.settings import Settings
from hub.topics import all_topics, focal_inbox, nrm_events, nrm_receipts
from hub.wire.codec import HUB_SIGNER, Wire
from hub.worker import RouterWorker

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "kafka-native"
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "integrating.md"
STEP = 60.0
#: Runs an example as ``python script args`` does, with every import of the hub refused.
WITHOUT_HUB = (
    "import runpy, sys; sys.modules['hub'] = None; sys.argv = sys.argv[1:]; "
    "sys.path.insert(0, sys.argv[0].rpartition('/')[0]); runpy.run_path(sys.argv[0], run_name='__main__')"
)
EVENT_ID = re.compile(r"published ([0-9a-f-]{36}) of ")


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the examples import their lintas_avro module
    return importlib.import_module("publish_v1"), importlib.import_module("publish_v2")


def _run(script: str, *args: str, cwd: Path) -> str:
    """The event id an example published."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_HUB, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = EVENT_ID.search(done.stdout)
    assert found is not None, done.stdout
    return found.group(1)


def _produce(bootstrap: str, topic: str, key: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in values:
        producer.produce(topic, key=key.encode(), value=value)
    assert producer.flush(STEP) == 0


# -- the bytes -------------------------------------------------------------------------------------


def test_the_v1_example_writes_what_the_hubs_codec_reads_as_the_same_event(
    examples: tuple[ModuleType, ModuleType],
) -> None:
    publish_v1, _ = examples
    record: dict[str, Any] = publish_v1.victim_identified("JP-2026-NATIVE1", "PH")
    codec = Codec()

    data = publish_v1.encode(record)

    assert data[:10] == b"\xc3\x01" + codec.contract.versions[0].events["VictimIdentified"].fingerprint
    assert codec.decode(data) == parse_event(record, now=datetime.now(UTC))
    assert data == Codec(reader_version=1).encode_record("VictimIdentified", record)  # fastavro's bytes


def test_the_v2_example_writes_byte_for_byte_what_the_hub_writes_and_verifies(
    examples: tuple[ModuleType, ModuleType],
) -> None:
    _, publish_v2 = examples
    record: dict[str, Any] = publish_v2.victim_identified("TH-2026-NATIVE2", "MM")
    key, key_id = publish_v2.demo_key("TH")
    wire = Wire(Codec(), directory=load_key_directory())
    event = parse_event(record, now=datetime.now(UTC))

    data = publish_v2.encode(record, key, key_id)

    # Ed25519 is deterministic: the same event signed with the same key is the same bytes.
    assert data == wire.seal(event, demo_signer("TH"))
    opened = wire.open(data)  # the signature and every digest verified
    assert opened.event == event
    assert (opened.signer, opened.key_id) == ("TH", "th-demo-1")
    assert opened.read == ("CaseCore", "AssistanceNeeds", "Legal")


def test_the_guides_fingerprints_are_the_hubs_and_need_avros_canonical_form_repaired(
    examples: tuple[ModuleType, ModuleType],
) -> None:
    lintas_avro = importlib.import_module("lintas_avro")
    codec = Codec()
    v1_schema = lintas_avro.load(lintas_avro.SCHEMAS / "v1")["lintas.events.VictimIdentified"]
    expected = codec.contract.versions[0].events["VictimIdentified"].fingerprint
    guide = GUIDE.read_text(encoding="utf-8")

    assert lintas_avro.fingerprint(v1_schema) == expected
    assert f"`{expected.hex()}`" in guide
    assert f"`{Wire(codec).event_fingerprint.hex()}`" in guide
    # What the guide warns of: when avro's own fingerprint agrees, the caution can go.
    assert v1_schema.fingerprint() != expected


# -- on the broker ---------------------------------------------------------------------------------


def test_events_published_from_the_schemas_alone_are_routed_once_with_receipts(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    examples: tuple[ModuleType, ModuleType],
) -> None:
    _, publish_v2 = examples
    tag = uuid4().hex[:8].upper()
    v1_case, v2_case, forged_case = f"JP-{tag}-1", f"TH-{tag}-2", f"TH-{tag}-3"
    # The router `lintas worker` runs: the shipped directories, its key store in this test's folder.
    monkeypatch.setenv("LINTAS_KEYS__STORE", str(tmp_path / "keys.sqlite"))
    router = make_router(Settings())
    assert router.wire is not None
    assert "JP" in router.hub_signs_for
    key_file = tmp_path / "th.pem"
    demo_signer("TH").save(key_file)
    key, key_id = publish_v2.demo_key("TH")
    honest = publish_v2.encode(publish_v2.victim_identified(forged_case, "MM"), key, key_id)
    forged = honest[:-1] + bytes([honest[-1] ^ 0x01])  # the last byte is the signature's

    async def scenario() -> tuple[str, str]:
        await ensure_topics(kafka_bootstrap, all_topics(["JP", "PH", "TH", "MM"]), partitions=6)
        stop, started = asyncio.Event(), asyncio.Event()
        worker = RouterWorker(
            kafka_bootstrap,
            router,
            group_id=f"test-kafka-native-{tag}",
            instance=tag,
            auto_offset_reset="latest",
            keys=router.wire.keys if router.wire is not None else None,
        )
        task = asyncio.create_task(worker.run(stop, started))
        try:
            await asyncio.wait_for(started.wait(), STEP)
            v1_id = await asyncio.to_thread(_run, "publish_v1.py", kafka_bootstrap, v1_case, cwd=tmp_path)
            v2_id = await asyncio.to_thread(
                _run,
                "publish_v2.py",
                kafka_bootstrap,
                v2_case,
                "--key",
                str(key_file),
                "--key-id",
                "th-demo-1",
                cwd=tmp_path,
            )
            # tampered, then the honest event, then the honest event again
            await asyncio.to_thread(
                _produce, kafka_bootstrap, nrm_events("TH"), forged_case, [forged, honest, honest]
            )
            deadline = asyncio.get_running_loop().time() + STEP
            while sum(worker.stats.outcomes.values()) < 5:
                assert asyncio.get_running_loop().time() < deadline, worker.stats
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await asyncio.wait_for(task, STEP)
        return v1_id, v2_id

    v1_id, v2_id = asyncio.run(scenario())

    codec = router.codec
    receipts = asyncio.run(read_all(kafka_bootstrap, [nrm_receipts("JP"), nrm_receipts("TH")]))
    by_case: dict[str, list[Any]] = {}
    for record in receipts:
        if tag.encode() in (record.key or b""):
            receipt = codec.decode_receipt(record.value)
            by_case.setdefault(record.key.decode(), []).append(receipt)
    [v1_receipt] = by_case[v1_case]
    assert (v1_receipt.status, str(v1_receipt.event_id)) == (ReceiptStatus.Accepted, v1_id)
    assert [c.value for c in v1_receipt.routed_to] == ["PH"]
    [v2_receipt] = by_case[v2_case]
    assert (v2_receipt.status, str(v2_receipt.event_id)) == (ReceiptStatus.Accepted, v2_id)
    assert [c.value for c in v2_receipt.routed_to] == ["MM"]
    assert v2_receipt.withheld == ()
    rejected, accepted, duplicate = by_case[forged_case]
    assert (rejected.status, rejected.reason_code) == (ReceiptStatus.Rejected, "bad_signature")
    assert accepted.status == ReceiptStatus.Accepted
    assert duplicate.status == ReceiptStatus.Duplicate

    inbox = asyncio.run(read_all(kafka_bootstrap, [focal_inbox("PH"), focal_inbox("MM")]))
    ours = [record for record in inbox if tag.encode() in record.key]
    delivered = sorted((r.topic, r.key.decode(), header_map(r.headers)["ce_id"].decode()) for r in ours)
    assert delivered == sorted(
        [
            ("lintas.focal.ph.inbox", v1_case, v1_id),
            ("lintas.focal.mm.inbox", v2_case, v2_id),
            ("lintas.focal.mm.inbox", forged_case, str(accepted.event_id)),
        ]
    ), "each accepted event is in its addressee's inbox exactly once; the tampered one in none"
    wire = router.wire
    signers = {r.key.decode(): wire.open(r.value, reader=r.topic.split(".")[2].upper()).signer for r in ours}
    assert signers == {v1_case: HUB_SIGNER, v2_case: "TH", forged_case: "TH"}, (
        "the hub signs the v1 event it converted; the v2 events keep their origin's signature"
    )
