"""Publishing a plan: the thin adapter between :mod:`hub.simulation.plan` and the hub's three doors.

Each scheduled event is published once the clock reaches its time, through its country's door: the
HTTP API with the country's national-system credential, a batch file run through the importer, or a
Kafka producer of the country's own principal. Events already due are published at once, in batches.

A case's events go out in their order. Two events of one case from the same country are on the same
topic and partition, so Kafka keeps their order; an event that follows one of the *other* country is
held until that one has been out for ``settle`` seconds, so that the router has read it first (the
router reads the countries' topics side by side and would otherwise see an answer before its
question).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

import httpx
import structlog
from rich.console import Console

from connectors.importer.run import run_import
from hub.codec import Codec
from hub.errors import LintasError
from hub.events import Event
from hub.kafka import EventWriter, producer, publish_events
from hub.security.principals import national_system
from hub.simulation.exports import export_mapping, export_row
from hub.simulation.logins import DemoLogins, Login
from hub.simulation.plan import Door, Scheduled
from hub.wire.national import NationalSystems

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from hub.settings import Settings

__all__ = [
    "API_BATCH",
    "ApiDoor",
    "ApiRequest",
    "Doors",
    "EventDoor",
    "ImportDoor",
    "KafkaDoor",
    "PublishRefused",
    "RegionWriter",
    "api_requests",
    "events_url",
    "run",
]

log = structlog.get_logger("lintas.simulation")

#: Events per POST /v1/events.
API_BATCH: Final = 200
NATIONAL_SYSTEM_ROLE: Final = "national-system"
#: The longest sleep between looks at the clock: ``stop`` is honoured within it.
_TICK: Final = 0.5


class PublishRefused(LintasError):
    """A door refused a batch (the API answered with an error); the message names the batch."""


class EventDoor(Protocol):
    async def publish(self, events: Sequence[Event]) -> int: ...

    async def close(self) -> None: ...


class ApiRequest(NamedTuple):
    country: str
    token: str
    body: dict[str, Any]


def events_url(api_url: str) -> str:
    """``POST /v1/events`` under the API's address, given with or without its ``/v1``."""
    base = api_url.rstrip("/")
    return f"{base}/events" if base.endswith("/v1") else f"{base}/v1/events"


def _as_login(event: Event, login: Login) -> Event:
    """The event as the credential's agency sends it: a credential of one agency publishes only its own."""
    if login.agency is None or login.agency == event.envelope.source_agency:
        return event
    return event.model_copy(
        update={"envelope": event.envelope.model_copy(update={"source_agency": login.agency})}
    )


def api_requests(events: Iterable[Event], logins: DemoLogins, *, batch: int = API_BATCH) -> list[ApiRequest]:
    """The requests that publish ``events``: per source country, in their order, ``{"events": [...]}``
    of up to ``batch`` with the country's national-system token."""
    by_country: dict[str, list[Event]] = {}
    for event in events:
        by_country.setdefault(event.envelope.source_country.value, []).append(event)
    requests = []
    for country, country_events in by_country.items():
        login = logins.login_of(country, NATIONAL_SYSTEM_ROLE)
        for start in range(0, len(country_events), batch):
            documents = [
                json.loads(_as_login(event, login).model_dump_json())
                for event in country_events[start : start + batch]
            ]
            requests.append(ApiRequest(country, login.token, {"events": documents}))
    return requests


class ApiDoor:
    """``POST /v1/events`` as each country's national system, with its token."""

    def __init__(self, logins: DemoLogins, client: httpx.AsyncClient | None = None) -> None:
        self.logins = logins
        self.url = events_url(logins.api_url)
        self.client = client or httpx.AsyncClient(timeout=60.0)

    async def publish(self, events: Sequence[Event]) -> int:
        published = 0
        for request in api_requests(events, self.logins):
            try:
                response = await self.client.post(
                    self.url, json=request.body, headers={"Authorization": f"Bearer {request.token}"}
                )
            except httpx.HTTPError as exc:
                raise PublishRefused(f"{self.url}: {request.country}'s batch not sent: {exc}") from exc
            if response.status_code >= 400:
                raise PublishRefused(
                    f"{self.url}: {request.country}'s batch of {len(request.body['events'])} refused: "
                    f"{response.status_code} {response.text[:500]}"
                )
            published += len(request.body["events"])
        return published

    async def close(self) -> None:
        await self.client.aclose()


OptionsOf = Callable[[str], Mapping[str, Any]]


class KafkaDoor:
    """Each country's own producer, connecting as its principal ``nrm-<cc>``."""

    def __init__(self, bootstrap: str, writer: EventWriter, options_of: OptionsOf) -> None:
        self.bootstrap = bootstrap
        self.writer = writer
        self.options_of = options_of
        self._producers: dict[str, AIOKafkaProducer] = {}

    async def _producer(self, country: str) -> AIOKafkaProducer:
        found = self._producers.get(country)
        if found is None:
            found = producer(self.bootstrap, **self.options_of(national_system(country)))
            await found.start()
            self._producers[country] = found
        return found

    async def publish(self, events: Sequence[Event]) -> int:
        published = 0
        for country, country_events in _by_country(events).items():
            published += await publish_events(await self._producer(country), self.writer, country_events)
        return published

    async def close(self) -> None:
        producers, self._producers = list(self._producers.values()), {}
        for kafka_producer in producers:
            await kafka_producer.stop()


class ImportDoor:
    """A file per batch and country, imported as ``lintas import`` imports it."""

    def __init__(
        self,
        bootstrap: str,
        writer: EventWriter,
        options_of: OptionsOf,
        folder: Path,
        *,
        clock: Callable[[], datetime],
        partitions: int = 6,
        replication_factor: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.writer = writer
        self.options_of = options_of
        self.folder = folder
        self.clock = clock
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._files = 0

    async def publish(self, events: Sequence[Event]) -> int:
        published = 0
        for country, country_events in _by_country(events).items():
            self._files += 1
            source = self.folder / f"export-{country.lower()}-{self._files:05d}.jsonl"
            rows = "".join(
                json.dumps(export_row(event), ensure_ascii=False) + "\n" for event in country_events
            )
            await asyncio.to_thread(_write, source, rows)
            result = await run_import(
                source,
                export_mapping(),
                country=country,
                now=self.clock(),
                report_path=source.with_suffix(".report.csv"),
                bootstrap=self.bootstrap,
                writer=self.writer,
                client_options=self.options_of(national_system(country)),
                partitions=self.partitions,
                replication_factor=self.replication_factor,
                console=Console(quiet=True),
            )
            if result.counts.rejected:
                shown = "; ".join(f"line {e.line} {e.field}: {e.reason}" for e in result.shown[:3])
                raise PublishRefused(f"{source}: {result.counts.rejected} rows rejected: {shown}")
            published += result.counts.published
        return published

    async def close(self) -> None:
        return None


class RegionWriter:
    """Writes each event as its country's system does: contract v2 where the key directory has the
    country's key (``systems``), else contract v1 (``codec``), which the hub converts and signs on
    the country's behalf where the directory lets it."""

    def __init__(self, systems: NationalSystems, codec: Codec | None = None) -> None:
        self.systems = systems
        self.codec = codec or systems.wire.codec
        self._v2: dict[str, bool] = {}

    def encode(self, event: Event) -> bytes:
        country = event.envelope.source_country.value
        keyed = self._v2.get(country)
        if keyed is None:
            signer = self.systems.signer(country)
            directory = self.systems.wire.directory
            keyed = self._v2[country] = (
                directory is not None and directory.key(signer.signer, signer.key_id) is not None
            )
        return self.systems.encode(event) if keyed else self.codec.encode(event)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _by_country(events: Iterable[Event]) -> dict[str, list[Event]]:
    found: dict[str, list[Event]] = {}
    for event in events:
        found.setdefault(event.envelope.source_country.value, []).append(event)
    return found


@dataclass
class Doors:
    """The doors of a run; ``settle`` is how long a case's event is out before the other country's
    next one follows (see the module's docstring)."""

    doors: Mapping[Door, EventDoor]
    settle: float = 1.0
    _folder: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    async def publish(self, door: Door, events: Sequence[Event]) -> int:
        return await self.doors[door].publish(events)

    async def close(self) -> None:
        for door in self.doors.values():
            await door.close()
        if self._folder is not None:
            self._folder.cleanup()

    @classmethod
    def of(
        cls,
        settings: Settings,
        bootstrap: str,
        logins: DemoLogins | None,
        *,
        options_of: OptionsOf,
        writer: EventWriter,
        clock: Callable[[], datetime],
        import_folder: Path | None = None,
        settle: float = 1.0,
    ) -> Doors:
        """The three doors: the API of ``logins`` (none without them), Kafka and the importer on
        ``bootstrap``, each principal connecting with ``options_of(principal)``."""
        folder = None
        if import_folder is None:
            folder = tempfile.TemporaryDirectory(prefix="lintas-exports-")
            import_folder = Path(folder.name)
        doors: dict[Door, EventDoor] = {
            Door.KAFKA: KafkaDoor(bootstrap, writer, options_of),
            Door.IMPORT: ImportDoor(
                bootstrap,
                writer,
                options_of,
                import_folder,
                clock=clock,
                partitions=settings.topics.partitions,
                replication_factor=settings.topics.replication_factor,
            ),
        }
        if logins is not None:
            doors[Door.API] = ApiDoor(logins)
        return cls(doors, settle=settle, _folder=folder)


def _ready(
    waiting: list[Scheduled], last: Mapping[str, tuple[str, float | None]], now: float, settle: float
) -> tuple[list[Scheduled], list[Scheduled]]:
    """(what may go now, what must wait): a case's event waits behind its case's earlier waiting
    events, and behind the other country's event published less than ``settle`` seconds ago."""
    ready: list[Scheduled] = []
    held: list[Scheduled] = []
    blocked: set[str] = set()
    taken: dict[str, str] = {}
    for item in waiting:
        envelope = item.event.envelope
        case, source = envelope.case_id, envelope.source_country.value
        if case in blocked:
            held.append(item)
            continue
        before = taken.get(case)
        if before is None and case in last:
            country, when = last[case]
            if country != source and (when is None or now - when < settle):
                before = country
        if before is not None and before != source:
            blocked.add(case)
            held.append(item)
            continue
        taken[case] = source
        ready.append(item)
    return ready, held


async def run(
    plan: Sequence[Scheduled],
    *,
    clock: Callable[[], datetime],
    doors: Doors,
    stop: asyncio.Event,
    on_published: Callable[[int], None] | None = None,
) -> int:
    """Publish each event of ``plan`` (sorted by time) once ``clock`` reaches its time; returns how
    many were published when the plan is done or ``stop`` is set."""
    loop = asyncio.get_running_loop()
    position, published = 0, 0
    waiting: list[Scheduled] = []
    last: dict[str, tuple[str, float | None]] = {}
    while not stop.is_set():
        now = clock()
        while position < len(plan) and plan[position].at <= now:
            waiting.append(plan[position])
            position += 1
        ready, waiting = _ready(waiting, last, loop.time(), doors.settle)
        for door in Door:
            batch = [item.event for item in ready if item.door is door]
            if not batch:
                continue
            count = await doors.publish(door, batch)
            published += count
            log.info("simulation_published", door=door.value, events=count)
            if on_published is not None:
                on_published(count)
        sent = loop.time()
        for item in ready:
            envelope = item.event.envelope
            last[envelope.case_id] = (envelope.source_country.value, sent)
        if position >= len(plan) and not waiting:
            break
        pause = _TICK
        if not waiting and position < len(plan):
            # Simulated seconds ahead: at least as many real ones on a clock that runs faster.
            ahead = (plan[position].at - clock()).total_seconds()
            pause = min(_TICK, max(ahead, 0.01))
        elif waiting:
            pause = min(_TICK, doors.settle / 4)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
    return published
