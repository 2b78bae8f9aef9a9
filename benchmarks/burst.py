"""The mass release, end to end: 7,000 people released from scam compounds into Thailand at once, from
the first event published to the last projection visible in the read store and at the dashboard.

Not a test (CI does not run it). The release is ``hub.simulation.mass_release`` (``--people`` persons,
``--seed``): every person's screening, referral, acknowledgement, confirmation, answer, return notice
and handover, some 6.5 events a person, from the twelve home countries Thailand has a corridor with.
Its times are ignored: it is published as a burst, everything as fast as the producers go. Each event
is written by its country's national system as the simulation writes it (``RegionWriter``: contract
v2, sectioned, sealed and signed with the key store the hub uses, where the key directory has the
country's key; else v1, which the hub signs on the country's behalf) before any clock starts, and
published Kafka-native by that country's own idempotent producer (``hub.kafka.producer`` +
``publish_events``, the simulation's Kafka door).

A case's events come from two countries, on two topics, and the router reads the countries' topics
side by side: an acknowledgement it reads before its referral is rejected (a partner answers only what
it has received). So with ``--order rounds`` (the default) the release goes out in causal rounds
(``hub.synthetic.causal_rounds``: round k is every case's k-th event), each round a burst, the next
one as soon as the router has committed the one before (its group's committed offsets at the end of
every national topic); with ``--order plan`` everything at once, each country's producer in the plan's
order, and the receipts say what the race cost. Either way the receipts are counted by status and
reason.

The hub runs as an operator runs it: ``--workers`` ``lintas worker`` processes (the router, a fresh
group seeded at the end of the national topics) and ``lintas api`` (its read-store projector and the
dashboard) on a fresh read store and key store. This process polls, every ``--poll`` s from the first
send, (1) the read store's SQLite file: every event's receipt, every accepted event in ``accepted``
and every case of the release in ``cases`` (the projector writes a case's state in the transaction of
its event), and (2) the dashboard's data endpoint ``GET /ui/data/backlog`` as Thailand's focal point
(a session opened at ``/ui/sign-in`` with a focal-point credential), until it reports the final
backlog: the backlog of the store's final case states, with a receipt sequence at least the last one
of the release. **seconds**: first send -> seen complete; **events/s**: events / seconds. The final
stages are checked against the pure fold of the accepted events (``stage_mismatches``).

Baseline, same broker, same run, before the hub starts: the same encoded events (same bytes, count,
topics and keys) through the routing benchmark's passthrough (``benchmarks/routing.py``, its
``baseline_run`` step by step with its ``OpenBacklog`` and ``TransactionalCopy``: one transaction per
batch of the worker's ``max_batch``, consume -> produce unchanged, exactly once), timed from
the moment its backlog became readable to its last commit (``per_s_from_visible``) and from its first
commit to its last (``per_s``). Its clock does not hold the publication, which the hub's does:
``ratio`` = hub events/s to the store / baseline events/s from visible, so it flatters the baseline
a little (the backlog's write time is printed beside it).

Where the time goes: the CPU seconds of the API process, the router, the broker and this process over
the burst, the moments the publication ended, the router committed everything and the store and the
endpoint were complete, and the peak RSS (``VmHWM``) of the API process and the workers. The machine's
load average is printed with the figures: they are only comparable on the same machine. Every wait has
a deadline; a child that exits fails the run with the end of its log. Prints a table, then one JSON
line of every figure.

Usage: python benchmarks/burst.py [--people 7000] [--seed 7] [--order rounds|plan] [--workers 1]
       [--partitions 6] [--poll 0.2] [--bootstrap-servers HOST:PORT] [--keep-logs] [--keep-broker]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, this directory comes first on sys.path, and benchmarks/projections.py would stand in
# for the projections package: drop it, and put the repository's root first (benchmarks, tests).
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec

from benchmarks import api as api_bench
from benchmarks import routing
from connectors.api.credentials import Credentials, Role
from connectors.dashboard import views
from connectors.readstore.store import ReadStore
from hub.broker import local as broker_local
from hub.cli import _ensure_all_topics, national_systems
from hub.contract import ReceiptStatus
from hub.events import Event
from hub.headers import envelope_headers
from hub.kafka import client_options, producer, publish_events
from hub.logging import configure_logging
from hub.settings import Settings
from hub.simulation.mass_release import mass_release
from hub.simulation.run import RegionWriter
from hub.synthetic import causal_rounds
from hub.topics import NRM_EVENTS_PATTERN, nrm_events
from projections.cases.fold import CaseState, fold
from tests.apiserver import free_port

HOST = "TH"
RELEASED = datetime(2025, 2, 12, tzinfo=UTC)
READY_TIMEOUT_S = 180.0  # router group stable, API answering, projector started
ROUND_TIMEOUT_S = 300.0  # one round routed
VISIBLE_TIMEOUT_S = 600.0  # after the last send, until the store and the endpoint are complete
STALL_TIMEOUT_S = 120.0  # nothing new in the store for this long: the hub is stuck
COMMIT_POLL_S = 0.05
IDLE_S = 3.0


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says what did not happen and within how long."""


# -- the release ---------------------------------------------------------------------------------------


@dataclass
class Release:
    events: list[Event]
    rounds: list[list[Event]]
    encoded: dict[str, bytes]  # event id -> the national system's bytes
    start: datetime
    encode_s: float

    @property
    def case_ids(self) -> set[str]:
        return {e.envelope.case_id for e in self.events}

    @property
    def nationalities(self) -> Counter[str]:
        """People per home country: the destination of each case's events from the host."""
        homes = {
            e.envelope.case_id: e.envelope.destination_country.value
            for e in self.events
            if e.envelope.source_country.value == HOST and e.envelope.destination_country is not None
        }
        return Counter(homes.values())

    def encode(self, event: Event) -> bytes:
        """What ``publish_events`` calls: the bytes written before the clock started."""
        return self.encoded[str(event.envelope.event_id)]

    def outbound(self) -> list[routing.Outbound]:
        """The same messages as the routing benchmark's baselines read them, in the plan's order."""
        return [
            routing.Outbound(
                nrm_events(e.envelope.source_country.value),
                e.envelope.case_id.encode(),
                self.encode(e),
                envelope_headers(e.envelope),
                str(e.envelope.event_id),
            )
            for e in self.events
        ]


def release_of(args: argparse.Namespace, settings: Settings, tag: str) -> Release:
    """The plan of the release, encoded by the national systems. It begins when the Myawaddy releases
    did: fixed, so the same seed and people give the same events, all in the past (the router refuses
    events from the future)."""
    plan = mass_release(args.seed, RELEASED, people=args.people, host=HOST, run_tag=tag)
    last = max(s.event.envelope.recorded_at for s in plan)
    if last > datetime.now(UTC):
        raise BenchmarkError(f"the release's last event is recorded at {last:%Y-%m-%d}, in the future")
    events = [s.event for s in plan]
    # v2 where the directory has the country's key, else v1 for the hub to sign on its behalf
    writer = RegionWriter(national_systems(settings))
    began = time.perf_counter()
    encoded = {str(e.envelope.event_id): writer.encode(e) for e in events}
    return Release(events, causal_rounds(events), encoded, RELEASED, time.perf_counter() - began)


# -- what the store and the endpoint show ----------------------------------------------------------------


@dataclass
class Seen:
    """What the pollers saw, and when (``time.monotonic``)."""

    receipts: dict[str, str] = field(default_factory=dict)  # event id -> status
    receipt_seq: int = 0  # the newest receipt of the release
    accepted: set[str] = field(default_factory=set)
    store_at: float | None = None
    final_states: dict[str, CaseState] | None = None
    expected_backlog: dict[str, Any] | None = None
    endpoint_at: float | None = None
    endpoint_body: dict[str, Any] | None = None
    endpoint_ms: list[float] = field(default_factory=list)
    endpoint_errors: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None


class StoreWatcher(threading.Thread):
    """Polls the read store's SQLite file (WAL: a reader does not block the projector) until every
    event has its receipt, every accepted one is in ``accepted`` and every case is in ``cases``."""

    def __init__(self, path: Path, release: Release, seen: Seen, poll: float, halt: threading.Event) -> None:
        super().__init__(name="store-watcher", daemon=True)
        self.path, self.seen, self.poll, self.halt = path, seen, poll, halt
        self.ids = set(release.encoded)
        self.case_ids = release.case_ids
        self.changed = time.monotonic()
        self.cases_seen = 0

    def run(self) -> None:
        try:
            connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            try:
                self._watch(connection)
            finally:
                connection.close()
        except BaseException as exc:  # handed to the main thread, which fails the run with it
            self.seen.error = exc

    def _watch(self, connection: sqlite3.Connection) -> None:
        seen = self.seen
        after_receipt = after_accepted = 0
        while not self.halt.wait(self.poll):
            rows = connection.execute(
                "SELECT seq, event_id, status FROM receipts WHERE seq > ? ORDER BY seq", (after_receipt,)
            ).fetchall()
            for seq, event_id, status in rows:
                after_receipt = seq
                if event_id in self.ids:
                    seen.receipts[event_id] = status
                    seen.receipt_seq = seq
            accepted = connection.execute(
                "SELECT seq, event_id FROM accepted WHERE seq > ? ORDER BY seq", (after_accepted,)
            ).fetchall()
            for seq, event_id in accepted:
                after_accepted = seq
                if event_id in self.ids:
                    seen.accepted.add(event_id)
            if rows or accepted:
                self.changed = time.monotonic()
            if len(seen.receipts) < len(self.ids):
                continue
            wanted = {i for i, s in seen.receipts.items() if s == ReceiptStatus.Accepted.value}
            if wanted - seen.accepted:
                continue
            stored = {row[0] for row in connection.execute("SELECT case_id FROM cases")}
            self.cases_seen = len(stored & self.case_ids)
            if self.case_ids - stored:
                continue
            seen.store_at = time.monotonic()
            states = ReadStore(str(self.path)).case_states(party=HOST)
            seen.final_states = {k: v for k, v in states.items() if k in self.case_ids}
            backlog = views.backlog_json(views.backlog(states.values(), HOST))
            seen.expected_backlog = backlog | {"receipts": seen.receipt_seq}
            return


class EndpointWatcher(threading.Thread):
    """Polls ``GET /ui/data/backlog`` as the host's focal point until it reports the final backlog
    (known once the store is complete); the first answer that does is the end."""

    def __init__(self, client: httpx.Client, seen: Seen, poll: float, halt: threading.Event) -> None:
        super().__init__(name="endpoint-watcher", daemon=True)
        self.client, self.seen, self.poll, self.halt = client, seen, poll, halt
        self.history: list[tuple[float, dict[str, Any]]] = []  # each change of the answer, and when

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:  # handed to the main thread, which fails the run with it
            self.seen.error = exc

    def _watch(self) -> None:
        seen = self.seen
        while not self.halt.wait(self.poll):
            asked = time.monotonic()
            try:
                response = self.client.get("/ui/data/backlog")
            except httpx.HTTPError as exc:  # a slow answer under load is a figure, not the end of the run
                seen.endpoint_errors[type(exc).__name__] += 1
                continue
            answered = time.monotonic()
            seen.endpoint_ms.append((answered - asked) * 1000)
            if response.status_code != 200:
                raise BenchmarkError(
                    f"GET /ui/data/backlog answered {response.status_code}: {response.text[:200]}"
                )
            body = response.json()
            if not self.history or self.history[-1][1] != body:
                self.history.append((answered, body))
            expected = seen.expected_backlog
            if expected is None:
                continue
            for at, shown in self.history:
                if _final(shown, expected):
                    seen.endpoint_at, seen.endpoint_body = at, shown
                    return


def _final(shown: dict[str, Any], expected: dict[str, Any]) -> bool:
    return (
        shown.get("open") == expected["open"]
        and shown.get("partners") == expected["partners"]
        and int(shown.get("receipts", 0)) >= expected["receipts"]
    )


# -- the hub ------------------------------------------------------------------------------------------


class RouterProgress:
    """The router group's committed offsets against the end of every national topic."""

    def __init__(self, config: dict[str, Any], group_id: str, cluster: routing.Cluster) -> None:
        self.cluster = cluster
        self.inputs = cluster.partitions(pattern=NRM_EVENTS_PATTERN)
        self.poller = Consumer({**config, "group.id": group_id, "enable.auto.commit": False})

    def close(self) -> None:
        self.poller.close()

    def end_offsets(self, partitions: Sequence[routing.Partition]) -> dict[routing.Partition, int]:
        # One ListOffsets request, not one per partition: it sits between two rounds.
        asked = {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions}
        found = self.cluster.admin.list_offsets(asked, request_timeout=30)
        return {(tp.topic, tp.partition): future.result(30).offset for tp, future in found.items()}

    def behind(self, ends: dict[routing.Partition, int]) -> int:
        committed = self.poller.committed([TopicPartition(t, p) for t, p in ends], timeout=30)
        return sum(max(0, ends[(tp.topic, tp.partition)] - max(tp.offset, 0)) for tp in committed)

    def until_routed(self, workers: routing.Workers, countries: set[str], within: float) -> float:
        """Wait until every record now on the national topics of ``countries`` is committed by the
        router; the moment. (The other topics have had nothing new since the last wait.)"""
        topics = {nrm_events(country) for country in countries}
        ends = self.end_offsets([tp for tp in self.inputs if tp[0] in topics])
        deadline = time.monotonic() + within
        while self.behind(ends):
            workers.check()
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"the router has {self.behind(ends)} records left after {within:.0f} s\n{workers.tails()}"
                )
            time.sleep(COMMIT_POLL_S)
        return time.monotonic()


def vm_kib(pid: int | None, name: str) -> int | None:
    """``VmHWM`` (peak RSS) or ``VmRSS`` of a live process, KiB."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Rig:
    settings: Settings
    config: dict[str, Any]
    bootstrap: str
    cluster: routing.Cluster
    directory: Path
    store_path: Path
    token: str
    broker_pid: int | None
    workers: routing.Workers | None = None
    api: api_bench.Child | None = None
    url: str = ""

    def cpu(self) -> dict[str, float]:
        assert self.workers is not None
        assert self.api is not None
        return {
            "api": api_bench.cpu_seconds(self.api.pid),
            "router": sum(self.workers.cpu()),
            "broker": api_bench.cpu_seconds(self.broker_pid),
            "bench": time.process_time(),
        }

    def check(self) -> None:
        assert self.workers is not None
        assert self.api is not None
        self.workers.check()
        self.api.check()


def start_hub(rig: Rig, args: argparse.Namespace, group_id: str) -> httpx.Client:
    """The router (from the current end of the national topics) and the API; a signed-in dashboard
    client once the group is stable, the API answers and its projector has started."""
    routing.seed_group(
        rig.config, group_id, rig.cluster.end_offsets(rig.cluster.partitions(pattern=NRM_EVENTS_PATTERN))
    )
    rig.workers = routing.Workers(
        rig.bootstrap, group_id, args.workers, rig.directory, args.partitions
    ).start()
    port = free_port()
    rig.api = api_bench.Child(
        "lintas api",
        [sys.executable, "-m", "hub.cli", "api", "-b", rig.bootstrap, "--port", str(port)],
        {"LINTAS_LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"},
        rig.directory / "api.log",
    ).start()
    rig.url = f"http://127.0.0.1:{port}"
    routing.await_ready(rig.cluster, rig.workers, rig.cluster.partitions(pattern=NRM_EVENTS_PATTERN))
    deadline = time.monotonic() + READY_TIMEOUT_S
    client = httpx.Client(base_url=rig.url, timeout=30)
    while True:
        rig.check()
        with contextlib.suppress(httpx.HTTPError):
            if client.get("/v1/health").status_code == 200 and "projector_started" in rig.api.tail(200):
                break
        if time.monotonic() > deadline:
            raise BenchmarkError(
                f"the API and its projector not up within {READY_TIMEOUT_S:.0f} s\n{rig.api.tail()}"
            )
        time.sleep(0.2)
    signed = client.post("/ui/sign-in", data={"credential": rig.token, "next": "/ui/"})
    if signed.status_code != 303 or not client.cookies:
        raise BenchmarkError(
            f"dashboard sign-in answered {signed.status_code}, no session: {signed.text[:200]}"
        )
    first = client.get("/ui/data/backlog")
    if first.status_code != 200 or first.json().get("open") != 0:
        raise BenchmarkError(
            f"GET /ui/data/backlog before the release: {first.status_code} {first.text[:200]}"
        )
    return client


async def burst(rig: Rig, release: Release, order: str, progress: RouterProgress) -> dict[str, Any]:
    """Publish the release; returns when the last send was acknowledged and the router committed it."""
    assert rig.workers is not None
    options = client_options(rig.settings)
    countries = sorted({e.envelope.source_country.value for e in release.events})
    producers = {country: producer(rig.bootstrap, **options) for country in countries}
    for country, kafka in producers.items():
        await kafka.start()
        await kafka.partitions_for(nrm_events(country))  # metadata fetched before the clock starts
    rounds = release.rounds if order == "rounds" else [release.events]
    timed: dict[str, Any] = {"round_send_s": [], "round_routed_s": []}
    try:
        begun = time.monotonic()
        for batch in rounds:
            sent = time.monotonic()
            by_country: dict[str, list[Event]] = {}
            for event in batch:
                by_country.setdefault(event.envelope.source_country.value, []).append(event)
            await asyncio.gather(
                *(publish_events(producers[c], release, events) for c, events in by_country.items())
            )
            acked = time.monotonic()
            routed = await asyncio.to_thread(
                progress.until_routed, rig.workers, set(by_country), ROUND_TIMEOUT_S
            )
            timed["round_send_s"].append(round(acked - sent, 3))
            timed["round_routed_s"].append(round(routed - acked, 3))
        timed["begun"] = begun
        timed["published"] = acked
        timed["routed"] = routed
    finally:
        for kafka in producers.values():
            await kafka.stop()
    return timed


def await_visible(
    rig: Rig, seen: Seen, store: StoreWatcher, endpoint: EndpointWatcher, halt: threading.Event
) -> None:
    deadline = time.monotonic() + VISIBLE_TIMEOUT_S
    while store.is_alive() or endpoint.is_alive():
        if seen.error is not None:
            raise BenchmarkError(f"watching the store and the endpoint: {seen.error!r}")
        rig.check()
        now = time.monotonic()
        if now > deadline or (store.is_alive() and now - store.changed > STALL_TIMEOUT_S):
            halt.set()
            raise BenchmarkError(
                f"after {now - deadline + VISIBLE_TIMEOUT_S:.0f} s: {len(seen.receipts)} receipts, "
                f"{len(seen.accepted)} accepted events, {store.cases_seen} cases in the store; the "
                f"endpoint {'done' if seen.endpoint_at else 'not done'} "
                f"(last answer {endpoint.history[-1][1] if endpoint.history else None})"
            )
        time.sleep(0.1)
    if seen.error is not None:
        raise BenchmarkError(f"watching the store and the endpoint: {seen.error!r}")


def receipt_reasons(path: Path, ids: set[str]) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT event_id, status, json_extract(record, '$.reason_code') FROM receipts WHERE status != ?",
            (ReceiptStatus.Accepted.value,),
        ).fetchall()
    return dict(Counter(f"{status}:{reason}" for event_id, status, reason in rows if event_id in ids))


def stage_mismatches(release: Release, seen: Seen) -> int:
    """Cases whose stored stage is not the pure fold's over the accepted events, in the plan's order."""
    accepted = [
        e
        for e in release.events
        if seen.receipts.get(str(e.envelope.event_id)) == ReceiptStatus.Accepted.value
    ]
    expected = fold(accepted)
    stored = seen.final_states or {}
    return sum(
        1
        for case_id in release.case_ids
        if (s := stored.get(case_id)) is None
        or expected.get(case_id) is None
        or s.stage != expected[case_id].stage
    )


# -- the run ------------------------------------------------------------------------------------------


def baseline(rig: Rig, release: Release, tag: str) -> tuple[routing.Timed, float]:
    """The routing benchmark's passthrough (its ``baseline_run``, step by step) over the release's own
    bytes; and the seconds its backlog took to write."""
    messages = release.outbound()
    inputs = rig.cluster.partitions(pattern=NRM_EVENTS_PATTERN)
    group_id = f"bench-pass-{tag}BURST"
    routing.seed_group(rig.config, group_id, rig.cluster.end_offsets(inputs))
    backlog = routing.OpenBacklog(rig.config, messages, f"bench-backlog-{tag}BURST")
    copy = routing.TransactionalCopy(rig.config, group_id)
    try:
        backlog.write()
        copy.join(inputs)
        visible = backlog.commit()
        timed = copy.run(len(messages), visible, None)
    finally:
        copy.close()
        backlog.close()
    return timed, backlog.seconds


def run(
    args: argparse.Namespace,
    own_broker: bool,
    bootstrap: str,
    broker_name: str,
    broker_pid: int | None,
    directory: Path,
) -> dict[str, Any]:
    load_before = [round(v, 2) for v in os.getloadavg()]
    begun = time.monotonic()
    store_path = directory / "read.sqlite"
    # The national systems here, the router and the API share one key store and read store.
    os.environ["LINTAS_KEYS__STORE"] = str(directory / "keys.sqlite")
    os.environ["LINTAS_API__STORE"] = str(store_path)
    os.environ["LINTAS_TOPICS__PARTITIONS"] = str(args.partitions)
    settings = Settings()
    config = routing.kafka_config(settings, bootstrap)
    asyncio.run(_ensure_all_topics(settings, bootstrap))
    tag = uuid.uuid4().hex[:6].upper()
    # A broker of our own has never seen the release; on a shared one the router remembers every case
    # it routed, so the cases get ids of their own (and the release another shape).
    release = release_of(args, settings, f"B{args.seed}-" if own_broker else f"B{tag}-")
    print(
        f"release: {args.people} people, {len(release.events)} events in {len(release.rounds)} "
        f"causal rounds, encoded in {release.encode_s:.1f} s"
    )
    store = ReadStore(str(store_path)).create()
    token = Credentials(store).issue(HOST, Role.FOCAL_POINT, label="burst benchmark").token
    store.dispose()
    cluster = routing.Cluster(config, settings.topics.replication_factor or 1)
    rig = Rig(settings, config, bootstrap, cluster, directory, store_path, token, broker_pid)
    progress: RouterProgress | None = None
    client: httpx.Client | None = None
    halt = threading.Event()
    exit_codes: dict[str, Any] = {}
    try:
        cluster.create([routing.PASSTHROUGH_OUT], args.partitions)
        passthrough, backlog_s = baseline(rig, release, tag)
        print(f"baseline passthrough: {passthrough.per_s_from_visible:,.0f} events/s from visible")
        client = start_hub(rig, args, f"bench-burst-{tag}")
        progress = RouterProgress(config, f"bench-burst-{tag}", cluster)
        seen = Seen()
        store_watch = StoreWatcher(store_path, release, seen, args.poll, halt)
        endpoint_watch = EndpointWatcher(client, seen, args.poll, halt)
        # What each process burns with nothing to do (polling consumers, the broker's own work), in cores.
        idle = rig.cpu()
        time.sleep(IDLE_S)
        cpu_before = rig.cpu()
        idle_cores = {k: round((cpu_before[k] - idle[k]) / IDLE_S, 3) for k in idle}
        store_watch.start()
        endpoint_watch.start()
        timed = asyncio.run(burst(rig, release, args.order, progress))
        await_visible(rig, seen, store_watch, endpoint_watch, halt)
        cpu_after = rig.cpu()
        assert rig.api is not None
        assert rig.workers is not None
        rss = {
            "api_peak_mib": round((vm_kib(rig.api.pid, "VmHWM") or 0) / 1024, 1),
            "router_peak_mib": [round((vm_kib(p.pid, "VmHWM") or 0) / 1024, 1) for p in rig.workers.procs],
        }
        load_after = [round(v, 2) for v in os.getloadavg()]
    finally:
        halt.set()
        if client is not None:
            client.close()
        if progress is not None:
            progress.close()
        # The API first: its projector and producers let go of the broker before the router.
        if rig.api is not None:
            exit_codes["api"] = rig.api.stop()
        if rig.workers is not None:
            exit_codes["router"] = rig.workers.stop()
        cluster.close()
    assert seen.store_at is not None
    assert seen.endpoint_at is not None
    first = timed["begun"]
    events = len(release.events)
    store_s = seen.store_at - first
    endpoint_s = seen.endpoint_at - first
    statuses = Counter(seen.receipts.values())
    return {
        "benchmark": "burst",
        "broker": broker_name,
        "host": HOST,
        "people": args.people,
        "events": events,
        "nationalities": len(release.nationalities),
        "by_nationality": dict(release.nationalities.most_common()),
        "order": args.order,
        "rounds": len(release.rounds) if args.order == "rounds" else 1,
        "workers": args.workers,
        "partitions": args.partitions,
        "seed": args.seed,
        "encode_s": round(release.encode_s, 1),
        "published_s": round(timed["published"] - first, 3),
        "routed_s": round(timed["routed"] - first, 3),
        "store_s": round(store_s, 3),
        "endpoint_s": round(endpoint_s, 3),
        "per_s": round(events / store_s, 1),
        "per_s_endpoint": round(events / endpoint_s, 1),
        "round_send_s": timed["round_send_s"],
        "round_routed_s": timed["round_routed_s"],
        "baseline": {
            "per_s_from_visible": round(passthrough.per_s_from_visible, 1),
            "from_visible_s": round(passthrough.from_visible, 3),
            "per_s": round(passthrough.per_s, 1),
            "transactions": passthrough.transactions,
            "backlog_write_s": round(backlog_s, 3),
        },
        "ratio": round(events / store_s / passthrough.per_s_from_visible, 4),
        "receipts": dict(statuses),
        "not_accepted": receipt_reasons(store_path, set(release.encoded)),
        "stage_mismatches": stage_mismatches(release, seen),
        "backlog": seen.endpoint_body,
        "endpoint_polls": len(seen.endpoint_ms),
        "endpoint_ms_p50": round(statistics.median(seen.endpoint_ms), 1) if seen.endpoint_ms else None,
        "endpoint_ms_max": round(max(seen.endpoint_ms), 1) if seen.endpoint_ms else None,
        "endpoint_errors": dict(seen.endpoint_errors),
        "idle_cores": idle_cores,
        "cpu_s": {k: round(cpu_after[k] - cpu_before[k], 1) for k in cpu_after},
        **rss,
        "exit_codes": exit_codes,
        "router_log": dict(rig.workers.log_findings()) if rig.workers is not None else {},
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "duration_s": round(time.monotonic() - begun, 1),
    }


def report(f: dict[str, Any]) -> None:
    b = f["baseline"]
    print(
        f"\nburst: {f['people']:,} people released into {f['host']} from {f['nationalities']} countries, "
        f"{f['events']:,} events ({f['order']}: {f['rounds']} bursts), {f['workers']} router worker(s); "
        f"{f['broker']}; {f['cpus']} CPUs"
    )
    print(f"{'first send ->':34}{'seconds':>9}{'events/s':>10}")
    for label, seconds in (
        ("last send acknowledged", f["published_s"]),
        ("router committed everything", f["routed_s"]),
        ("read store complete", f["store_s"]),
        ("GET /ui/data/backlog final", f["endpoint_s"]),
    ):
        print(f"{label:34}{seconds:>9.2f}{f['events'] / seconds:>10,.0f}")
    print(
        f"{'baseline passthrough (visible ->)':34}"
        f"{b['from_visible_s']:>9.2f}{b['per_s_from_visible']:>10,.0f}"
        f"   (first commit -> last: {b['per_s']:,.0f}/s, {b['transactions']} transactions; "
        f"its backlog written in {b['backlog_write_s']:.2f} s)"
    )
    print(f"ratio (hub to the store / passthrough) {f['ratio']}")
    print(f"per round: sent in {f['round_send_s']} s, routed {f['round_routed_s']} s after")
    print(
        f"receipts {f['receipts']}; not accepted {f['not_accepted'] or 'none'}; "
        f"stage mismatches {f['stage_mismatches']}"
    )
    print(
        f"backlog at the endpoint: {f['backlog']['open'] if f['backlog'] else '-'} open; "
        f"{f['endpoint_polls']} polls, p50 {f['endpoint_ms_p50']} ms, max {f['endpoint_ms_max']} ms"
        + (f", errors {f['endpoint_errors']}" if f["endpoint_errors"] else "")
    )
    print(
        f"idle, cores: {f['idle_cores']}\nCPU seconds over the burst {f['cpu_s']}; "
        f"peak RSS API {f['api_peak_mib']} MiB, "
        f"router {f['router_peak_mib']} MiB"
    )
    print(
        f"exit codes {f['exit_codes']}; router log {f['router_log'] or 'clean'}; load average (1, 5, 15 min) "
        f"{f['load_average_before']} before, {f['load_average_after']} after; {f['duration_s']} s in all"
    )
    print(json.dumps(f))


@contextlib.contextmanager
def broker(given: str | None, keep: bool) -> Iterator[tuple[str, str, int | None]]:
    """The cluster to measure on, how to name it and its broker's pid when it is ours."""
    if given:
        yield given, given, None
        return
    home = Path(tempfile.mkdtemp(prefix="lintas-bench-burst-kafka-"))
    local = broker_local.LocalBroker(home, broker_local.provision(), security="plaintext")
    try:
        bootstrap = local.start()
        status = local.status()
        yield bootstrap, f"private local Kafka {local.version}", status.pid if status else None
    finally:
        if keep:
            print(f"broker kept running at {local.status().bootstrap if local.status() else '?'} from {home}")
        else:
            local.stop()
            shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", help="an existing cluster; default: a private local broker")
    parser.add_argument("--people", type=int, default=7000, help="people released")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--order",
        choices=["rounds", "plan"],
        default="rounds",
        help="causal rounds, each once the one before is routed; or all at once in the plan's order",
    )
    parser.add_argument("--workers", type=int, default=1, help="lintas worker processes")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--poll", type=float, default=0.2, help="seconds between polls of the store and the endpoint"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the logs and stores (kept anyway on failure)"
    )
    parser.add_argument("--keep-broker", action="store_true", help="leave the private broker running")
    args = parser.parse_args()
    if args.people < 1 or args.workers < 1:
        parser.error("--people and --workers must be at least 1")
    # SIGTERM ends the run like Ctrl-C: the children and the private broker are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_logging(level=logging.WARNING)  # the national systems here log every data key at info
    directory = Path(tempfile.mkdtemp(prefix="lintas-bench-burst-"))
    failure: str | None = None
    with broker(args.bootstrap_servers, args.keep_broker) as (bootstrap, name, broker_pid):
        try:
            figures = run(args, not args.bootstrap_servers, bootstrap, name, broker_pid, directory)
        except (BenchmarkError, routing.BenchmarkError, api_bench.BenchmarkError, KafkaException) as exc:
            failure = str(exc)
    if failure is not None:
        print(f"burst benchmark failed: {failure}\n(logs and stores kept in {directory})", file=sys.stderr)
        sys.exit(1)
    if args.keep_logs:
        print(f"logs and stores kept in {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    report(figures)


if __name__ == "__main__":
    main()
