"""Wiring the API: settings -> store, keys, Kafka clients, projector -> app; and serving it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from connectors.api.app import Outgoing, Services, create_app
from connectors.api.audit import AuditLog
from connectors.api.credentials import Credentials
from connectors.dashboard.routes import mount as mount_dashboard
from connectors.readstore.projector import Projector
from connectors.readstore.store import ReadStore
from hub.agreements import load_agreements
from hub.codec import Codec
from hub.crypto.keystore import KeyStore
from hub.crypto.signing import Signer, demo_signer
from hub.settings import Settings
from hub.topics import AUDIT
from hub.wire.codec import Wire
from hub.wire.national import NationalSystems, key_directory

log = structlog.get_logger("lintas.api")


class KafkaPublisher:
    """Publishes events: an idempotent producer for single events, a transactional one for batches,
    so that a batch is all or nothing on the log too."""

    def __init__(self, bootstrap: str, *, transactional_id: str, **options: Any) -> None:
        self.bootstrap = bootstrap
        self.transactional_id = transactional_id
        self.options = options
        self._single: AIOKafkaProducer | None = None
        self._batches: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # Made here, not in __init__: aiokafka binds its clients to the running event loop.
        common = {"bootstrap_servers": self.bootstrap, "enable_idempotence": True, "acks": "all"}
        self._single = AIOKafkaProducer(**common, **self.options)
        self._batches = AIOKafkaProducer(**common, transactional_id=self.transactional_id, **self.options)
        await self._single.start()
        await self._batches.start()

    async def stop(self) -> None:
        for client in (self._single, self._batches):
            if client is not None:
                await client.stop()

    @property
    def single(self) -> AIOKafkaProducer:
        if self._single is None:
            raise RuntimeError("the publisher is not started")
        return self._single

    @property
    def batches(self) -> AIOKafkaProducer:
        if self._batches is None:
            raise RuntimeError("the publisher is not started")
        return self._batches

    async def publish(self, messages: Sequence[Outgoing], *, atomic: bool) -> None:
        if not atomic:
            sent = [await self.single.send(m.topic, m.value, key=m.key, headers=m.headers) for m in messages]
            await asyncio.gather(*sent)
            return
        async with self._lock, self.batches.transaction():
            for m in messages:
                await self.batches.send(m.topic, m.value, key=m.key, headers=m.headers)

    async def write(self, key: bytes, value: bytes) -> None:
        """The audit sink: acknowledged by every in-sync replica before the read is answered."""
        await self.single.send_and_wait(AUDIT, value, key=key)


def signer_source(settings: Settings) -> Callable[[str], Signer]:
    """Each country's signing key for events posted over HTTP: ``<CC>.pem`` in the configured
    folder, else (only where demo keys are allowed) the country's published demo key."""
    folder: Path | None = settings.api.signing_keys

    def signer_of(country: str) -> Signer:
        if folder is not None:
            return Signer.load(folder / f"{country}.pem")
        if not settings.keys.allow_demo:
            raise ValueError(f"api.signing_keys: no signing key for {country} (LINTAS_API__SIGNING_KEYS)")
        return demo_signer(country)

    return signer_of


@dataclass
class Running:
    app: FastAPI
    services: Services
    store: ReadStore


def build(
    settings: Settings,
    bootstrap: str,
    keys: KeyStore,
    countries: Sequence[str],
    *,
    store: ReadStore | None = None,
    clock: Callable[[], datetime] | None = None,
    projector: bool | None = None,
    **options: Any,
) -> Running:
    """The app with its services; Kafka clients start (and the projector runs) in its lifespan."""
    store = store or ReadStore(settings.api.store).create()
    codec = Codec(clock=clock) if clock else Codec()
    wire = Wire(codec, directory=key_directory(settings), keys=keys)
    writer = NationalSystems(wire, keys, signer_of=signer_source(settings))
    run_projector = settings.api.projector if projector is None else projector
    publisher = KafkaPublisher(bootstrap, transactional_id=f"lintas-api-{uuid.uuid4().hex[:12]}", **options)
    services = Services(
        store=store,
        credentials=Credentials(store),
        wire=wire,
        writer=writer,
        agreements=load_agreements(settings.agreements_path),
        publisher=publisher,
        audit=AuditLog(publisher, timeout=settings.api.audit_timeout_seconds),
        clock=clock or (lambda: datetime.now(UTC)),
        max_batch_events=settings.api.max_batch_events,
        max_body_bytes=settings.api.max_body_bytes,
        max_wait_seconds=settings.api.max_wait_seconds,
        # With the projector here, waiting handlers are woken by it; else they poll the shared store.
        poll_seconds=0.5 if run_projector else 0.05,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        stop = asyncio.Event()
        task = None
        if run_projector:
            projecting = Projector(
                bootstrap, store, codec, countries, on_batch=services.changes.notify, **options
            )
            task = asyncio.create_task(projecting.run(stop))
            task.add_done_callback(_report)
        log.info("api_started", store=store.url.split("@")[-1], projector=run_projector)
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                # wait_for cancels a projector that does not stop in time (it resumes from its positions).
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, 10)
            await publisher.stop()
            log.info("api_stopped")

    app = create_app(services, lifespan=lifespan)
    mount_dashboard(app, services, status_dir=settings.processor.status_dir)
    return Running(app, services, store)


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("projector_failed", error=repr(task.exception()))


def serve(running: Running, host: str, port: int) -> None:
    config = uvicorn.Config(running.app, host=host, port=port, log_config=None, access_log=False)
    uvicorn.Server(config).run()
