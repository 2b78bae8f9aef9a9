"""The import: read a file row by row, convert each row on its own, publish the valid ones.

A bad row never holds back a good one: each is converted by itself (:mod:`connectors.importer.convert`),
rejected rows go to the report, valid events are encoded by the country's national system (contract v2:
sectioned, sealed, signed) and published in batches to the country's ``nrm`` topic with an idempotent
producer, at most one batch in flight, so memory stays flat however long the file is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from connectors.importer.convert import Converter, RowError, SourceRow
from connectors.importer.mapping import ImportMapping, MappingError
from connectors.importer.readers import estimate_rows, read_header, read_rows
from connectors.importer.report import ImportCounts, ReportFile
from hub.errors import LintasError
from hub.events import Event
from hub.kafka import EventWriter, ensure_topics, producer, publish_events
from hub.topics import nrm_events

__all__ = [
    "BATCH_SIZE",
    "ImportResult",
    "KafkaSink",
    "PublishFailed",
    "Sink",
    "check_columns",
    "import_rows",
    "run_import",
]

log = structlog.get_logger("lintas.importer")

#: Events per batch: sent together, then awaited until the broker acknowledged all of them.
BATCH_SIZE: Final = 500


class Sink(Protocol):
    """Where valid events go: ``add`` encodes (a :class:`LintasError` rejects that row only), ``flush``
    publishes what was added and returns how many the broker acknowledged."""

    @property
    def full(self) -> bool: ...

    def add(self, event: Event) -> None: ...

    async def flush(self) -> int: ...


class KafkaSink:
    """Batches of encoded events for :func:`hub.kafka.publish_events` (topic, key and headers as the
    hub expects them)."""

    def __init__(self, kafka_producer: AIOKafkaProducer, writer: EventWriter, batch_size: int = BATCH_SIZE):
        self.producer = kafka_producer
        self.writer = writer
        self.batch_size = batch_size
        self._events: list[Event] = []
        self._encoded: dict[str, bytes] = {}

    @property
    def full(self) -> bool:
        return len(self._events) >= self.batch_size

    def add(self, event: Event) -> None:
        # Encoded before anything is sent, so that a row that cannot be encoded is rejected alone.
        self._encoded[str(event.envelope.event_id)] = self.writer.encode(event)
        self._events.append(event)

    def encode(self, event: Event) -> bytes:
        return self._encoded[str(event.envelope.event_id)]

    async def flush(self) -> int:
        if not self._events:
            return 0
        try:
            return await publish_events(self.producer, self, self._events)
        finally:
            self._events, self._encoded = [], {}


def check_columns(mapping: ImportMapping, header: Iterable[str] | None, source: Path) -> None:
    """Every column the mapping names is in the file's header (a JSONL file has none to check)."""
    if header is None:
        return
    present = set(header)
    for key, column in _column_keys(mapping):
        if column not in present:
            names = ", ".join(repr(name) for name in header if name)
            raise MappingError(f"{key}: {column!r} is not a column of {source} (its columns: {names})")


def _column_keys(mapping: ImportMapping) -> list[tuple[str, str]]:
    keys = [(f"row_key[{index}]", column) for index, column in enumerate(mapping.row_key)]
    if mapping.event_type.column is not None:
        keys.append(("event_type.column", mapping.event_type.column))
    keys += [(f"fields.{path}.column", rule.column) for path, rule in mapping.fields.items() if rule.column]
    return keys


async def import_rows(
    rows: Iterable[SourceRow | RowError],
    mapping: ImportMapping,
    *,
    country: str,
    now: datetime,
    sink: Sink | None,
    report: ReportFile,
    counts: ImportCounts,
    on_row: Callable[[], None] | None = None,
) -> ImportCounts:
    """Convert every row; valid events to ``sink`` (``None``: a dry run), rejected rows to ``report``.
    ``counts`` is updated as it goes, so that it says how far an import that failed got."""
    converter = Converter(mapping, country=country, now=now)
    for item in rows:
        counts.read += 1
        result = converter.convert(item)
        if isinstance(result, Event) and sink is not None:
            try:
                sink.add(result)
            except LintasError as error:
                if error.retriable:
                    raise
                result = RowError(item.line, None, None, str(error))
        if isinstance(result, RowError):
            counts.rejected += 1
            report.add(result)
        else:
            counts.valid += 1
            if sink is not None and sink.full:
                counts.published += await sink.flush()
        if on_row is not None:
            on_row()
    if sink is not None:
        counts.published += await sink.flush()
    return counts


@dataclass
class ImportResult:
    counts: ImportCounts
    #: The first rejected rows, for the terminal.
    shown: list[RowError] = field(default_factory=list)
    #: Where the events went; ``None`` for a dry run.
    topic: str | None = None


class PublishFailed(LintasError):
    """The broker stopped taking events part way; ``result`` says how far the import got. Importing the
    file again is safe: the events already published keep their ids, and the hub absorbs them."""

    retriable = True

    def __init__(self, message: str, result: ImportResult) -> None:
        self.result = result
        super().__init__(message)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # a log file or a pipe gets the summary only
        transient=True,
    )


async def run_import(
    source: Path,
    mapping: ImportMapping,
    *,
    country: str,
    now: datetime,
    report_path: Path,
    bootstrap: str | None,
    writer: EventWriter | None,
    client_options: Mapping[str, Any] | None = None,
    partitions: int = 6,
    replication_factor: int | None = None,
    console: Console | None = None,
) -> ImportResult:
    """Import ``source`` for ``country``: with ``bootstrap`` and ``writer``, valid events are published;
    without (a dry run), rows are validated only. Raises :class:`MappingError` when the file lacks a
    column the mapping names, :class:`~connectors.importer.readers.SourceError` when it is no table."""
    check_columns(mapping, read_header(source, sheet=mapping.sheet), source)
    topic = nrm_events(country)
    counts = ImportCounts()
    console = console or Console()
    options = dict(client_options or {})
    log.info("import_started", source=str(source), country=country, topic=topic, dry_run=writer is None)
    async with AsyncExitStack() as stack:
        report = stack.enter_context(ReportFile(report_path))
        sink: KafkaSink | None = None
        if bootstrap is not None and writer is not None:
            await ensure_topics(
                bootstrap,
                [topic],
                partitions=partitions,
                replication_factor=replication_factor,
                options=options,
            )
            kafka_producer = producer(bootstrap, **options)
            await kafka_producer.start()
            stack.push_async_callback(kafka_producer.stop)
            sink = KafkaSink(kafka_producer, writer)
        progress = stack.enter_context(_progress(console))
        task = None
        if not progress.disable:
            total = estimate_rows(source, sheet=mapping.sheet)
            task = progress.add_task("dry run" if sink is None else f"importing to {topic}", total=total)
        try:
            await import_rows(
                read_rows(source, sheet=mapping.sheet),
                mapping,
                country=country,
                now=now,
                sink=sink,
                report=report,
                counts=counts,
                on_row=None if task is None else lambda: progress.advance(task),
            )
        except KafkaError as exc:
            raise PublishFailed(
                f"{topic}: publishing stopped after {counts.published} events were acknowledged: {exc}",
                ImportResult(counts, report.shown, topic),
            ) from exc
    log.info(
        "import_finished",
        source=str(source),
        read=counts.read,
        valid=counts.valid,
        published=counts.published,
        rejected=counts.rejected,
    )
    return ImportResult(counts, report.shown, None if sink is None else topic)
