"""Signed webhooks on a real broker to real HTTP receivers on 127.0.0.1: alerts and inbox records arrive
signed and verifiable; failures are retried with the same webhook id as the injected clock moves; a
redirect is never followed; a restart neither loses nor re-creates outbox rows; every attempt is on the
delivery log; a replay sends again with the same ids."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from typer.testing import CliRunner

from connectors.webhooks import DELIVERIES
from connectors.webhooks.cli import app
from connectors.webhooks.outbox import Outbox
from connectors.webhooks.settings import WebhookSettings
from connectors.webhooks.signing import new_secret, webhook_id
from connectors.webhooks.subscriptions import Subscription, subscriptions
from connectors.webhooks.worker import serve
from hub.agreements import Directory
from hub.codec import Codec
from hub.contract import Alert, AlertLevel, CountryCode, ObligationKind
from hub.events import parse_event
from hub.kafka import producer, read_all
from hub.topics import alerts, focal_inbox
from tests.test_codec import fisherman
from tests.workers import national_systems

pytestmark = pytest.mark.kafka
COUNTRY = "KR"  # no other test publishes alerts or inbox records to Korea
WITHIN = 30.0


class Clock:
    """Wall time until a test moves it on (signatures stay within the receivers' 5-minute tolerance)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Half:
    """Jitter at the middle of each window: delays of 2.5 s, 2.5 min..."""

    def random(self) -> float:
        return 0.5


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP receiver: each path answers with its queue of behaviours (the last one repeats):
    a status code, ``"sleep"`` (longer than the worker's timeout) or ``"redirect:<url>"``."""

    behaviours: dict[str, list[Any]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
                queue = state.behaviours.get(self.path, [200])
                behaviour = queue.pop(0) if len(queue) > 1 else queue[0]
            if behaviour == "sleep":
                time.sleep(2.0)
                behaviour = 200
            if isinstance(behaviour, str) and behaviour.startswith("redirect:"):
                self.send_response(302)
                self.send_header("location", behaviour.removeprefix("redirect:"))
            else:
                self.send_response(int(behaviour))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def directory(channels: list[dict[str, Any]]) -> Directory:
    return Directory.model_validate(
        {
            "countries": [
                {
                    "country": COUNTRY,
                    "languages": ["ko"],
                    "focal_points": [
                        {
                            "agency_id": "KR-MOGEF",
                            "name": "Ministry of Gender Equality and Family",
                            "agency_type": "SocialWelfare",
                            "languages": ["ko"],
                            "alert_channels": channels,
                        }
                    ],
                }
            ]
        }
    )


def webhook(url: str, name: str, feeds: tuple[str, ...] = ("alerts", "inbox")) -> dict[str, Any]:
    return {"kind": "webhook", "target": url, "id": name, "feeds": list(feeds), "secret": "env:UNUSED"}


def an_alert(case_id: str, kind: ObligationKind = ObligationKind.AnswerReferral) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id=f"{case_id}/{kind.value}/overdue",
        obligation_id=f"{case_id}/{kind.value}",
        kind=kind,
        level=AlertLevel.Overdue,
        case_id=case_id,
        due=now - timedelta(days=1),
        owner=CountryCode.KR,
        waiting=CountryCode.TH,
        detail=None,
        raised_at=now,
    )


def settings(tmp_path: Path) -> WebhookSettings:
    return WebhookSettings(
        database=tmp_path / "webhooks.sqlite",
        allow_private=True,
        allow_http=True,
        timeout_seconds=1.0,
        poll_ms=100,
    )


@dataclass
class Running:
    found: tuple[Subscription, ...]
    secrets: dict[str, str]
    clock: Clock
    settings: WebhookSettings
    bootstrap: str

    async def run(self, body: Callable[[], Awaitable[None]]) -> dict[str, int]:
        """The worker, running while ``body`` does."""
        stop, started = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            serve(
                self.bootstrap,
                self.found,
                self.secrets,
                self.settings,
                stop=stop,
                clock=self.clock,
                rng=Half(),
                started=started,
            )
        )
        try:
            await asyncio.wait_for(started.wait(), WITHIN)
            await body()
        finally:
            stop.set()
        return await asyncio.wait_for(task, WITHIN)

    def rows(self) -> list[Any]:
        outbox = Outbox(self.settings.database)
        try:
            return outbox.rows()
        finally:
            outbox.close()


def running(bootstrap: str, tmp_path: Path, channels: list[dict[str, Any]]) -> Running:
    found = subscriptions(directory(channels))
    return Running(found, {s.id: new_secret() for s in found}, Clock(), settings(tmp_path), bootstrap)


async def until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN
    while not condition():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.05)


async def publish(bootstrap: str, topic: str, values: list[tuple[str, bytes]]) -> None:
    kafka = producer(bootstrap)
    await kafka.start()
    try:
        for key, value in values:
            await kafka.send_and_wait(topic, value, key=key.encode())
    finally:
        await kafka.stop()


def attempts_logged(bootstrap: str, ids: set[str]) -> list[dict[str, Any]]:
    records = asyncio.run(read_all(bootstrap, [DELIVERIES]))
    return [json.loads(r.value) for r in records if r.key.decode() in ids]


def offsets(database: Path) -> dict[tuple[str, int], int]:
    outbox = Outbox(database)
    try:
        return outbox.offsets()
    finally:
        outbox.close()


def verified(secret: str, request: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(request.body, request.headers)
    return payload


def test_alerts_and_inbox_records_arrive_signed_and_redirects_are_not_followed(
    kafka_bootstrap: str, receiver: Receiver, tmp_path: Path
) -> None:
    case_id = f"KR-{uuid.uuid4().hex[:8].upper()}-1"
    receiver.behaviours["/moved"] = [f"redirect:http://localhost:{receiver.port}/elsewhere"]
    hub = running(
        kafka_bootstrap,
        tmp_path,
        [webhook(receiver.url("/hook"), "kr-all"), webhook(receiver.url("/moved"), "kr-moved", ("alerts",))],
    )
    alert = an_alert(case_id)
    event = parse_event(
        fisherman(
            envelope__event_id=str(uuid.uuid4()),
            envelope__case_id=case_id,
            envelope__destination_country=COUNTRY,
        ),
        now=datetime.now(UTC),
    )

    async def body() -> None:
        await publish(kafka_bootstrap, alerts(COUNTRY), [(case_id, Codec().encode(alert))])
        await publish(
            kafka_bootstrap, focal_inbox(COUNTRY), [(case_id, national_systems(tmp_path).encode(event))]
        )
        await until(lambda: len(receiver.on("/hook")) == 2 and len(receiver.on("/moved")) == 1, "deliveries")
        await asyncio.sleep(0.5)  # a few more rounds: nothing more may be sent

    stats = asyncio.run(hub.run(body))

    secret = hub.secrets["kr-all"]
    by_type = {verified(secret, r)["type"]: r for r in receiver.on("/hook")}
    assert set(by_type) == {"alert.raised", "inbox.delivered"}
    alert_payload = verified(secret, by_type["alert.raised"])["data"]
    assert (alert_payload["alert_id"], alert_payload["case_id"]) == (alert.alert_id, case_id)
    assert by_type["alert.raised"].headers["webhook-id"] == webhook_id("kr-all", f"alert:{alert.alert_id}")
    inbox_payload = verified(secret, by_type["inbox.delivered"])["data"]
    assert inbox_payload["event_id"] == str(event.envelope.event_id)
    assert inbox_payload["link"] == f"/v1/cases/{case_id}"
    assert b"Aung" not in by_type["inbox.delivered"].body
    # The redirect was one failed attempt, and its target was never asked.
    assert len(receiver.on("/moved")) == 1
    assert receiver.on("/elsewhere") == []
    moved = [row for row in hub.rows() if row.subscription_id == "kr-moved"]
    assert [(row.state, row.attempts) for row in moved] == [("pending", 1)]
    assert stats["rows"] == 3
    # The delivery log has one record per attempt.
    logged = attempts_logged(kafka_bootstrap, {row.webhook_id for row in hub.rows()})
    assert sorted((r["subscription"], r["status_code"], r["attempt"]) for r in logged) == [
        ("kr-all", 200, 1),
        ("kr-all", 200, 1),
        ("kr-moved", 302, 1),
    ]
    assert all(r["latency_ms"] >= 0 and r["at"].endswith("Z") for r in logged)


def test_a_receiver_failing_twice_gets_the_message_on_the_third_attempt_with_the_same_id(
    kafka_bootstrap: str, receiver: Receiver, tmp_path: Path
) -> None:
    case_id = f"KR-{uuid.uuid4().hex[:8].upper()}-1"
    receiver.behaviours["/flaky"] = [500, "sleep", 204]
    hub = running(kafka_bootstrap, tmp_path, [webhook(receiver.url("/flaky"), "kr-flaky", ("alerts",))])

    async def step_to_next_attempt(attempts: int) -> None:
        await until(lambda: [r.attempts for r in hub.rows()] == [attempts], f"attempt {attempts}")
        (row,) = hub.rows()
        assert row.state == "pending"
        # Not due before its time: nothing is sent while the clock stands still.
        await asyncio.sleep(0.3)
        assert len(receiver.on("/flaky")) == attempts
        hub.clock.now = row.next_attempt_at

    async def body() -> None:
        await publish(kafka_bootstrap, alerts(COUNTRY), [(case_id, Codec().encode(an_alert(case_id)))])
        await step_to_next_attempt(1)
        await step_to_next_attempt(2)
        await until(lambda: [r.state for r in hub.rows()] == ["delivered"], "delivery")

    asyncio.run(hub.run(body))

    requests = receiver.on("/flaky")
    assert len(requests) == 3
    assert len({r.headers["webhook-id"] for r in requests}) == 1
    assert verified(hub.secrets["kr-flaky"], requests[2])["data"]["case_id"] == case_id
    logged = attempts_logged(kafka_bootstrap, {requests[0].headers["webhook-id"]})
    assert [(r["attempt"], r["status_code"], r["error"]) for r in logged] == [
        (1, 500, "HTTP 500"),
        (2, None, "timeout"),
        (3, 204, None),
    ]


def test_a_restart_keeps_the_outbox_and_a_replay_sends_again_with_the_same_ids(
    kafka_bootstrap: str, receiver: Receiver, tmp_path: Path
) -> None:
    case_id = f"KR-{uuid.uuid4().hex[:8].upper()}-1"
    kinds = (
        ObligationKind.AcknowledgeReferral,
        ObligationKind.AnswerReferral,
        ObligationKind.ConfirmHandover,
    )
    records = [(case_id, Codec().encode(an_alert(case_id, kind))) for kind in kinds]
    receiver.behaviours["/down"] = [503]
    hub = running(kafka_bootstrap, tmp_path, [webhook(receiver.url("/down"), "kr-down", ("alerts",))])

    started_at: dict[tuple[str, int], int] = {}

    async def first_run() -> None:
        started_at.update(offsets(hub.settings.database))
        await publish(kafka_bootstrap, alerts(COUNTRY), records[:2])
        await until(lambda: [r.attempts for r in hub.rows()] == [1, 1], "first attempts")

    asyncio.run(hub.run(first_run))
    before = {r.webhook_id: r.message_id for r in hub.rows()}
    # While the worker is down: a new record; and the stored offsets rewound to where the worker
    # started, as if the records were read again (the unique key keeps them one row each).
    asyncio.run(publish(kafka_bootstrap, alerts(COUNTRY), records[2:]))
    assert offsets(hub.settings.database) != started_at
    with sqlite3.connect(hub.settings.database) as db:
        db.executemany(
            "UPDATE offsets SET next_offset = ? WHERE topic = ? AND partition = ?",
            [(offset, topic, partition) for (topic, partition), offset in started_at.items()],
        )
    receiver.behaviours["/down"] = [200]
    hub.clock.now += timedelta(seconds=10)  # past the first retry of both rows

    async def second_run() -> None:
        await until(lambda: [r.state for r in hub.rows()] == ["delivered"] * 3, "deliveries after restart")

    stats = asyncio.run(hub.run(second_run))
    assert (stats["records"], stats["rows"]) == (3, 1)  # two read again, one new row
    rows = hub.rows()
    assert len(rows) == 3
    assert {r.webhook_id: r.message_id for r in rows if r.webhook_id in before} == before
    delivered = [r.headers["webhook-id"] for r in receiver.on("/down")[2:]]
    assert sorted(delivered) == sorted(r.webhook_id for r in rows)

    since = (hub.clock.now - timedelta(minutes=1)).replace(tzinfo=None).isoformat(timespec="minutes")
    result = CliRunner().invoke(app, ["replay", "--since", since, "--database", str(hub.settings.database)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3 messages due again"
    hub.clock.now = datetime.now(UTC) + timedelta(seconds=1)

    async def after_replay() -> None:
        await until(lambda: len(receiver.on("/down")) == 2 + 3 + 3, "replayed deliveries")

    asyncio.run(hub.run(after_replay))
    replayed = [r.headers["webhook-id"] for r in receiver.on("/down")[5:]]
    assert sorted(replayed) == sorted(delivered)
    assert all(verified(hub.secrets["kr-down"], r)["type"] == "alert.raised" for r in receiver.on("/down"))
    logged = attempts_logged(kafka_bootstrap, set(before) | set(delivered))
    assert len(logged) == 2 + 3 + 3
    result = CliRunner().invoke(app, ["log", "-n", "3", "--database", str(hub.settings.database)])
    assert result.exit_code == 0, result.output
    assert result.output.count("kr-down") == 3
