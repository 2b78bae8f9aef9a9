"""The API as it runs: a real uvicorn server on a free loopback port, with the router (and the
read-store projector) on the real broker, in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from connectors.api.credentials import Credentials, Role
from connectors.api.server import Running, build
from hub.cli import _countries
from hub.crypto.keystore import EmbeddedKeyStore
from hub.events import Event, parse_event
from hub.kafka import ensure_topics
from hub.settings import ApiSettings, KeySettings, Settings
from hub.topics import all_topics
from hub.worker import RouterWorker
from tests.test_codec import fisherman
from tests.workers import key_store_path, national_systems, v2_router

#: The countries `lintas api` and `lintas replay --into` project: the configured ones and every party to an
#: agreement.
COUNTRIES = tuple(_countries(Settings()))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def identified(source: str, destination: str, case_id: str | None = None, **changes: Any) -> Event:
    """A presumed victim identified in ``source`` whose home is ``destination``, recorded just now."""
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "envelope__event_id": str(uuid.uuid4()),
        "envelope__case_id": case_id or f"{source}-{uuid.uuid4().hex[:10].upper()}",
        "envelope__source_country": source,
        "envelope__source_agency": f"{source}-DSDW" if source == "TH" else f"{source}-NRM",
        "envelope__destination_country": destination,
        "envelope__occurred_at": now - timedelta(days=2),
        "envelope__recorded_at": now - timedelta(days=1),
        "nationality": destination,
        "consent_scope": ["CaseCore", "AssistanceNeeds", "PersonalIdentity"],
    }
    return parse_event(fisherman(**{**fields, **changes}), now=now)


def as_json(event: Event) -> dict[str, Any]:
    import json

    value: dict[str, Any] = json.loads(event.model_dump_json())
    return value


@dataclass
class LiveApi:
    bootstrap: str
    directory: Path
    url: str = ""
    running: Running | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: uvicorn.Server | None = None
    _stop: asyncio.Event | None = None
    _error: BaseException | None = None

    @property
    def credentials(self) -> Credentials:
        assert self.running is not None
        return self.running.services.credentials

    def token(self, country: str, role: Role, agency: str | None = None) -> str:
        name = f"{country}/{role.value}/{agency}"
        if name not in self.tokens:
            self.tokens[name] = self.credentials.issue(country, role, agency=agency).token
        return self.tokens[name]

    def client(self, country: str, role: Role, agency: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token(country, role, agency)}"},
            timeout=60,
        )

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def start(self) -> LiveApi:
        settings = Settings(
            api=ApiSettings(store=str(self.directory / "read.sqlite")),
            keys=KeySettings(store=str(key_store_path(self.directory))),
        )
        keys = EmbeddedKeyStore(key_store_path(self.directory))
        self.running = build(settings, self.bootstrap, keys, COUNTRIES)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            self.running.app, host="127.0.0.1", port=port, log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(90) or self._error is not None:
            raise RuntimeError(f"the API did not start: {self._error!r}")
        deadline = time.monotonic() + 60
        while not self._server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            await ensure_topics(self.bootstrap, all_topics(COUNTRIES), partitions=6)
            stop, started = asyncio.Event(), asyncio.Event()
            self._stop = stop
            systems = national_systems(self.directory)
            worker = RouterWorker(
                self.bootstrap,
                v2_router(systems),
                group_id=f"test-api-{uuid.uuid4().hex[:8]}",
                keys=systems.keys,
                instance="api",
                auto_offset_reset="latest",
            )
            router = asyncio.create_task(worker.run(stop, started))
            await asyncio.wait_for(started.wait(), 60)
            ready.set()
            assert self._server is not None
            await self._server.serve()
            stop.set()
            await asyncio.wait_for(router, 60)

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            ready.set()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(90)
        if self.running is not None:
            self.running.store.dispose()
        # The stopped router's librdkafka clients go now, not after the broker (they would log refusals).
        gc.collect()

    def wait_for(self, predicate: Any, within: float = 30.0) -> Any:
        deadline = time.monotonic() + within
        while True:
            value = predicate()
            if value:
                return value
            assert time.monotonic() < deadline, "condition not met in time"
            time.sleep(0.1)


def live_api(bootstrap: str, directory: Path) -> Iterator[LiveApi]:
    api = LiveApi(bootstrap, directory).start()
    try:
        yield api
    finally:
        api.stop()
