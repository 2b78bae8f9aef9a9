"""``lintas import`` against a real broker and the v2 router: the valid rows of the example file are
published to lintas.nrm.th.events as Thailand's national system writes them (signed, sealed), a second
import publishes the very same events (the router answers Duplicate, nothing is routed twice), and a dry
run publishes nothing."""

from __future__ import annotations

import asyncio
import csv
import gc
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer
from typer.testing import CliRunner, Result

from connectors.importer import RowError, convert_rows, event_id_for, load_mapping, read_rows
from connectors.importer.cli import EXIT_REJECTED, import_command
from hub.codec import Codec
from hub.contract import ReceiptStatus
from hub.crypto.signing import KeyDirectory, Signer, load_key_directory
from hub.events import event_to_record
from hub.headers import header_map
from hub.kafka import ensure_topics, read_all
from hub.topics import all_topics, nrm_events, nrm_receipts
from hub.wire.codec import Wire
from hub.worker import RouterWorker
from tests.workers import key_store_path, national_systems, v2_router

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "config" / "mappings" / "htcds.yaml"
EXAMPLE = ROOT / "examples" / "import" / "htcds-th.csv"
VALID_ROWS = 12
STEP = 60.0


@pytest.fixture
def key_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The key store of this test's national system and router (the CLI reads it from the settings)."""
    path = key_store_path(tmp_path)
    monkeypatch.setenv("LINTAS_KEYS__STORE", str(path))
    yield path
    structlog.reset_defaults()  # the command configured logging to the runner's captured stream


def _unique_copy(directory: Path, tag: str) -> Path:
    """The example with case numbers no other test or earlier run on this broker has used."""
    with EXAMPLE.open(encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    target = directory / "htcds-th.csv"
    with target.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "Case ID": f"T{tag}-{row['Case ID']}"} for row in rows)
    return target


def _import(bootstrap: str, source: Path, *options: str) -> Result:
    app = typer.Typer()

    @app.callback()
    def lintas() -> None:
        """As the lintas command."""

    app.command("import")(import_command)
    arguments = ["import", str(source), "--country", "TH", "--mapping", str(MAPPING), "-b", bootstrap]
    return CliRunner().invoke(app, [*arguments, *options])


def _ours(records: list[Any], tag: str) -> list[Any]:
    return [record for record in records if record.key is not None and f"-T{tag}-".encode() in record.key]


def test_an_import_publishes_the_valid_rows_once_and_again_the_same_events(
    kafka_bootstrap: str, tmp_path: Path, key_store: Path
) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    source = _unique_copy(tmp_path, tag)
    codec = Codec()
    systems = national_systems(tmp_path, codec)

    async def scenario() -> list[Result]:
        await ensure_topics(kafka_bootstrap, all_topics(["TH", "MM", "KH", "LA"]), partitions=6)
        stop, started = asyncio.Event(), asyncio.Event()
        worker = RouterWorker(
            kafka_bootstrap,
            v2_router(systems),
            group_id=f"test-import-{tag}",
            instance=tag,
            keys=systems.keys,
            auto_offset_reset="latest",
        )
        task = asyncio.create_task(worker.run(stop, started))
        try:
            await asyncio.wait_for(started.wait(), STEP)
            results: list[Result] = []
            for options in ((), (), ("--dry-run",)):
                report = tmp_path / f"report-{len(results)}.csv"
                runs = asyncio.to_thread(_import, kafka_bootstrap, source, "--report", str(report), *options)
                results.append(await asyncio.wait_for(runs, STEP))
            deadline = asyncio.get_running_loop().time() + STEP
            while sum(worker.stats.outcomes.values()) < 2 * VALID_ROWS:
                assert asyncio.get_running_loop().time() < deadline, worker.stats
                await asyncio.sleep(0.05)
            return results
        finally:
            stop.set()
            await asyncio.wait_for(task, STEP)

    first, second, dry = asyncio.run(scenario())
    gc.collect()  # frees the stopped worker's Kafka clients now, while the broker is up, not at exit

    for result in (first, second):
        assert result.exit_code == EXIT_REJECTED, result.output  # three rows of the example are wrong
        assert f"published {VALID_ROWS} to lintas.nrm.th.events" in result.output
    assert dry.exit_code == EXIT_REJECTED, dry.output
    assert "published 0 (dry run" in dry.output

    published = _ours(asyncio.run(read_all(kafka_bootstrap, [nrm_events("TH")])), tag)
    assert len(published) == 2 * VALID_ROWS, "each import published the valid rows; the dry run nothing"
    copies: dict[str, list[Any]] = defaultdict(list)
    for record in published:
        copies[header_map(record.headers)["ce_id"].decode()].append(record)
    mapping = load_mapping(MAPPING)
    expected = [
        result
        for result in convert_rows(read_rows(source), mapping, country="TH", now=datetime.now(UTC))
        if not isinstance(result, RowError)
    ]
    assert set(copies) == {str(event.envelope.event_id) for event in expected}
    wire = Wire(codec, directory=load_key_directory(), keys=systems.keys)
    for event in expected:
        envelope = event.envelope
        assert envelope.event_id == event_id_for("TH", [envelope.case_id.removeprefix("TH-"), "V-01"])
        one, again = copies[str(envelope.event_id)]
        assert (again.value, again.key, again.headers) == (one.value, one.key, one.headers)
        assert one.key == envelope.case_id.encode()
        opened = wire.open(one.value, reader="TH")  # verified against Thailand's key in the directory
        assert (opened.signer, opened.key_id) == ("TH", "th-demo-1")
        assert "PersonalIdentity" in opened.read
        assert event_to_record(opened.event) == event_to_record(event)

    # The router commits its receipts a moment after counting them routed.
    deadline = time.monotonic() + STEP
    receipts: list[Any] = []
    while len(receipts) < 2 * VALID_ROWS and time.monotonic() < deadline:
        receipts = _ours(asyncio.run(read_all(kafka_bootstrap, [nrm_receipts("TH")])), tag)
    statuses: dict[str, list[ReceiptStatus]] = defaultdict(list)
    for record in receipts:
        receipt = codec.decode_receipt(record.value)
        statuses[str(receipt.event_id)].append(receipt.status)
    assert statuses == {event_id: [ReceiptStatus.Accepted, ReceiptStatus.Duplicate] for event_id in copies}, (
        "one accepted receipt per valid row; the second import is a resubmission"
    )


def test_events_are_signed_with_the_key_given(kafka_bootstrap: str, tmp_path: Path, key_store: Path) -> None:
    tag = uuid.uuid4().hex[:8].upper()
    source = _unique_copy(tmp_path, tag)
    signer = Signer.generate("TH", f"th-import-{tag.lower()}")
    signer.save(tmp_path / "th.pem")

    result = _import(kafka_bootstrap, source, "--signing-key", str(tmp_path / "th.pem"))

    assert result.exit_code == EXIT_REJECTED, result.output
    assert "not in this machine's key directory" in result.output  # the hub would refuse them
    published = _ours(asyncio.run(read_all(kafka_bootstrap, [nrm_events("TH")])), tag)
    assert len(published) == VALID_ROWS
    wire = Wire(Codec(), directory=KeyDirectory([signer.public()]))
    for record in published:
        opened = wire.open(record.value)
        assert (opened.signer, opened.key_id) == ("TH", signer.key_id)
        assert opened.erased == ("PersonalIdentity",)  # sealed: a reader without the key sees none
