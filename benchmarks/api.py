"""The HTTP API against publishing straight to Kafka: events/s to receipts, and ``?wait`` latency.

Same broker, same run, as an operator runs them: ``lintas worker`` (the router) and ``lintas api`` (with
its read-store projector) as child processes on a fresh temporary directory (read store, key store), a
fresh consumer group for the router. Every event is a new case (a VictimIdentified of Thailand's
national system, under a case id of its own, towards Myanmar, Cambodia or Lao PDR in turn, all three
with an agreement), made before any clock starts.

(1) baseline: the events sealed and signed as the national system does (``NationalSystems``, the key
    store the hub uses) and published straight to ``lintas.nrm.TH.events`` with an idempotent producer
    (``hub.kafka.producer`` + ``publish_events``, encoding included, in this process);
(2) ``POST /v1/events``, one event per request, ``--concurrency`` requests in flight (httpx);
(3) ``POST /v1/events``, batches of ``--batch`` events, ``--batch-concurrency`` batches in flight.
Each: events/s from the first send to the last receipt visible in the read store (this process polls
the SQLite file every 10 ms: the same end line for all three), ``answered/s`` the API's (or the
producer's) acknowledgements alone, and ratios API / baseline.

(4) ``?wait=10`` latency, open loop: single events sent at a fixed offered rate (``--rates``) for
``--seconds`` whatever the answers, so a slow server shows as latency, not as a lower rate; latency is
from the scheduled send to the answer (a request the client could not send on time waits on the
clock). ``sent/s`` is the rate achieved, ``receipted`` the answers that carried a receipt (200), and
``pending`` those that had none within the wait (202).

Per phase, the CPU seconds per event of the API process, the router, the broker and this process
(``/proc``) say where the machine's time went; with ``--profile`` the API process is sampled (every
thread's stack, every 5 ms) and its busy time is split by what it was doing (JSON validation,
sealing and signing, SQLite, the producer, HTTP); the sampler costs a little, so figures of a
profiled run are not comparable with others. Without ``--bootstrap-servers`` a private broker is
started in a temporary directory and stopped at the end; on a shared broker a fresh router group
starts from the earliest offsets. Prints a table, then one JSON line of every figure.
Usage: python benchmarks/api.py [--bootstrap-servers HOST:PORT] [--events N] [--quick] [--profile]
       [--concurrency C] [--batch B] [--rates 50,200] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Run as a script, this directory comes first on sys.path, and benchmarks/projections.py would stand in
# for the projections package that the API imports: drop it; the repository's root (tests, connectors)
# goes first instead.
sys.path[:] = [str(REPO)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

SAMPLED_API = "_sampled-api"  # argv[1] of this file run as the API process under the sampler
TH_DESTINATIONS = ("MM", "KH", "LA")
READY_TIMEOUT_S = 180.0  # router joined, projector assigned, first receipts through
PHASE_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0
WATCH_EVERY_S = 0.01
IDLE_S = 3.0


class BenchmarkError(Exception):
    """The benchmark cannot go on; the message says what did not happen."""


# -- the API process under a sampler (--profile) ----------------------------------------------------

#: (category, test on a stack's frames as (file, function) from the root down), the first that holds.
CATEGORIES: tuple[tuple[str, Any], ...] = (
    ("projector (receipts and inbox into SQLite)", lambda s: any("readstore/projector" in f for f, _ in s)),
    ("audit", lambda s: any("api/audit" in f for f, _ in s)),
    ("sealing and signing (_encoded)", lambda s: any(n == "_encoded" for _, n in s)),
    ("JSON validation (_checked)", lambda s: any(n == "_checked" for _, n in s)),
    ("JSON parse of the body", lambda s: any(n == "post_events" for _, n in s) and s[-1][1] == "decode"),
    ("SQLite: ?wait polling (latest_receipt)", lambda s: any(n == "_waited" for _, n in s)),
    ("SQLite: receipt_seq", lambda s: any(n == "receipt_seq" for _, n in s)),
    ("SQLite: credentials", lambda s: any(n == "authenticate" for _, n in s)),
    ("producer (aiokafka)", lambda s: any("aiokafka" in f for f, _ in s)),
    ("pydantic / FastAPI serialisation", lambda s: any("fastapi" in f or "pydantic" in f for f, _ in s)),
    (
        "HTTP (uvicorn, h11, starlette)",
        lambda s: any(k in f for f, _ in s for k in ("uvicorn", "h11", "starlette")),
    ),
    ("event loop (asyncio)", lambda s: "asyncio" in s[-1][0]),
)
IDLE_LEAVES = frozenset(
    {"select", "poll", "wait", "_worker", "acquire", "get", "sleep", "_wait_for_tstate_lock"}
)


def run_sampled_api(out: str, argv: list[str]) -> None:
    """``lintas api`` with a thread that samples every thread's stack; categories written at exit."""
    import atexit

    busy: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = [0]
    running = threading.Event()

    def sample() -> None:
        me = threading.get_ident()
        while not running.wait(0.005):
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                stack: list[tuple[str, str]] = []
                walk: FrameType | None = frame
                while walk is not None:
                    stack.append((walk.f_code.co_filename, walk.f_code.co_name))
                    walk = walk.f_back
                stack.reverse()
                total[0] += 1
                if stack[-1][1] in IDLE_LEAVES:
                    continue
                name = next((c for c, test in CATEGORIES if test(stack)), "other")
                busy[name] += 1
                leaves[f"{Path(stack[-1][0]).name}:{stack[-1][1]}"] += 1

    def dump() -> None:
        running.set()
        Path(out).write_text(
            json.dumps({"samples": total[0], "busy": dict(busy), "leaves": dict(leaves.most_common(15))})
        )

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    atexit.register(dump)
    # uvicorn raises SIGTERM again once it has shut down, which would end the process before atexit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from hub.cli import app

    sys.argv = ["lintas", *argv]
    app()


if len(sys.argv) > 2 and sys.argv[1] == SAMPLED_API:
    run_sampled_api(sys.argv[2], sys.argv[3:])
    sys.exit(0)

import httpx

from connectors.api.credentials import Credentials, Role
from connectors.readstore.store import ReadStore
from hub.broker import local as broker_local
from hub.events import Event, event_problems
from hub.kafka import producer, publish_events
from hub.logging import configure_logging
from tests.apiserver import as_json, free_port, identified
from tests.workers import key_store_path, national_systems

# -- child processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a live process (0 when it is gone or unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Child:
    """A ``lintas`` command as a child process, its output in a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise BenchmarkError(f"{self.name} exited with code {self.process.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after a while; the exit code (None: killed)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
                return None
        return self.process.returncode


@contextlib.contextmanager
def broker(given: str | None) -> Iterator[tuple[str, str, int | None]]:
    """The cluster to measure on, how to name it and its broker's pid when it is ours."""
    if given:
        yield given, given, None
        return
    with tempfile.TemporaryDirectory(prefix="lintas-bench-api-kafka-") as home:
        local = broker_local.LocalBroker(Path(home), broker_local.provision(), security="plaintext")
        try:
            bootstrap = local.start()
            status = local.status()
            yield bootstrap, f"private local Kafka {local.version}", status.pid if status else None
        finally:
            local.stop()


# -- events and receipts -----------------------------------------------------------------------------


def new_events(count: int, seen: set[str]) -> list[Event]:
    """``count`` new cases of Thailand's national system, each under a case id no other event has."""
    events: list[Event] = []
    while len(events) < count:
        case_id = f"TH-{uuid.uuid4().hex[:10].upper()}"
        if case_id in seen:
            continue
        seen.add(case_id)
        events.append(identified("TH", TH_DESTINATIONS[len(events) % 3], case_id=case_id))
    return events


def body(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class Receipts:
    """The read store's receipts, read straight from its SQLite file (WAL: readers do not block)."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self.after = 0
        self.status: dict[str, str] = {}

    def poll(self) -> None:
        rows = self.connection.execute(
            "SELECT seq, event_id, status FROM receipts WHERE seq > ? ORDER BY seq", (self.after,)
        ).fetchall()
        for seq, event_id, status in rows:
            self.after = seq
            self.status[event_id] = status

    def until_all(self, ids: Sequence[str], within: float, children: Sequence[Child]) -> float:
        """The moment (monotonic) the last of ``ids`` had a receipt; polls every 10 ms."""
        wanted = set(ids)
        deadline = time.monotonic() + within
        while True:
            self.poll()
            wanted -= self.status.keys()
            if not wanted:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise BenchmarkError(
                    f"{len(wanted)} of {len(ids)} events without a receipt after {within:.0f} s"
                )
            for child in children:
                child.check()
            time.sleep(WATCH_EVERY_S)

    def outcomes(self, ids: Sequence[str]) -> dict[str, int]:
        return dict(Counter(self.status.get(i, "none") for i in ids))


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)] if ordered else float("nan")


# -- a lean HTTP/1.1 client -------------------------------------------------------------------------


class Http:
    """POSTs over kept-alive HTTP/1.1 connections, at most ``connections`` of them: a client that costs
    the machine (two CPUs, shared with the server) far less than httpx, so the server is what is
    measured. Answers are read by Content-Length, which every answer of the API has."""

    def __init__(self, url: str, headers: dict[str, str], connections: int) -> None:
        host_port = url.removeprefix("http://")
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(connections)

    async def __aenter__(self) -> Http:
        return self

    async def __aexit__(self, *_: object) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()

    async def post(self, target: str, content: bytes) -> tuple[int, bytes]:
        async with self.slots:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                writer.write(
                    f"POST {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{self.head}"
                    f"Content-Type: application/json\r\nContent-Length: {len(content)}\r\n\r\n".encode()
                    + content
                )
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                fields = dict(line.split(":", 1) for line in head[1:] if ":" in line)
                length = next(int(v) for k, v in fields.items() if k.strip().lower() == "content-length")
                answer = await reader.readexactly(length)
            except BaseException:
                writer.close()
                raise
            self.idle.append((reader, writer))
            return int(head[0].split()[1]), answer


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Rig:
    bootstrap: str
    url: str
    token: str
    directory: Path
    receipts: Receipts
    children: list[Child]
    pids: dict[str, int | None]
    case_ids: set[str] = field(default_factory=set)

    def cpu(self) -> dict[str, float]:
        own = time.process_time()
        return {name: cpu_seconds(pid) for name, pid in self.pids.items()} | {"bench client": own}

    def client(self, connections: int) -> Http:
        return Http(self.url, {"Authorization": f"Bearer {self.token}"}, connections)

    async def receipted(self, ids: Sequence[str]) -> float:
        return await asyncio.to_thread(self.receipts.until_all, ids, PHASE_TIMEOUT_S, self.children)


@contextlib.asynccontextmanager
async def cpu_of(rig: Rig, count: int, into: dict[str, Any]) -> AsyncIterator[None]:
    """CPU ms per event of every process over the block, into ``into["cpu_ms_per_event"]``."""
    before = rig.cpu()
    yield
    after = rig.cpu()
    into["cpu_ms_per_event"] = {k: round((after[k] - before[k]) / count * 1e3, 3) for k in after}


async def baseline(rig: Rig, events: list[Event]) -> dict[str, Any]:
    systems = national_systems(rig.directory)  # the hub's key store: the router can grant the data keys
    kafka = producer(rig.bootstrap, linger_ms=5)
    await kafka.start()
    ids = [str(e.envelope.event_id) for e in events]
    figures: dict[str, Any] = {"events": len(events)}
    try:
        async with cpu_of(rig, len(events), figures):
            started = time.monotonic()
            watch = asyncio.create_task(rig.receipted(ids))
            await publish_events(kafka, systems, events)
            answered = time.monotonic()
            done = await watch
    finally:
        await kafka.stop()
    return figures | rates(len(events), started, answered, done) | {"outcomes": rig.receipts.outcomes(ids)}


def rates(count: int, started: float, answered: float, done: float) -> dict[str, Any]:
    return {
        "per_s": round(count / (done - started), 1),
        "answered_per_s": round(count / (answered - started), 1),
        "seconds": round(done - started, 3),
    }


async def post_all(rig: Rig, bodies: list[bytes], concurrency: int) -> None:
    """POST every body with ``concurrency`` in flight; each must be taken (202)."""
    pending = iter(bodies)
    bad: list[str] = []

    async def sender(client: Http) -> None:
        for content in pending:
            status, answer = await client.post("/v1/events", content)
            if status != 202:
                bad.append(f"{status} {answer[:300].decode(errors='replace')}")

    async with rig.client(concurrency) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))
    if bad:
        raise BenchmarkError(f"{len(bad)} of {len(bodies)} posts refused, the first: {bad[0]}")


async def api_throughput(rig: Rig, events: list[Event], per_body: int, concurrency: int) -> dict[str, Any]:
    ids = [str(e.envelope.event_id) for e in events]
    documents = [as_json(e) for e in events]
    if per_body == 1:
        bodies = [body(d) for d in documents]
    else:
        bodies = [body({"events": documents[i : i + per_body]}) for i in range(0, len(documents), per_body)]
    figures: dict[str, Any] = {"events": len(events), "requests": len(bodies), "in_flight": concurrency}
    async with cpu_of(rig, len(events), figures):
        started = time.monotonic()
        watch = asyncio.create_task(rig.receipted(ids))
        await post_all(rig, bodies, concurrency)
        answered = time.monotonic()
        done = await watch
    return figures | rates(len(events), started, answered, done) | {"outcomes": rig.receipts.outcomes(ids)}


async def latency(rig: Rig, rate: int, seconds: float, wait: float) -> dict[str, Any]:
    count = max(1, round(rate * seconds))
    bodies = [body(as_json(e)) for e in new_events(count, rig.case_ids)]
    latencies: list[float] = []
    late: list[float] = []
    sends: list[float] = []
    codes: Counter[int] = Counter()
    figures: dict[str, Any] = {"offered_per_s": rate, "requests": count}

    async def one(client: Http, content: bytes, at: float) -> None:
        sends.append(time.monotonic())
        late.append(sends[-1] - at)
        try:
            status, _ = await client.post(f"/v1/events?wait={wait:g}", content)
            codes[status] += 1
        except (OSError, asyncio.IncompleteReadError, StopIteration) as error:
            codes[-1] += 1
            print(f"latency at {rate}/s: {error!r}", file=sys.stderr)
            return
        latencies.append(time.monotonic() - at)

    async with rig.client(1000) as client, cpu_of(rig, count, figures):
        tasks = []
        started = time.monotonic()
        for i, content in enumerate(bodies):
            at = started + i / rate
            if (delay := at - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, content, at)))
        await asyncio.gather(*tasks)
        ended = time.monotonic()
    ordered = sorted(latencies)
    ms = [v * 1e3 for v in ordered]
    return figures | {
        "sent_per_s": round((count - 1) / max(sends[-1] - sends[0], 1e-9), 1) if count > 1 else 1.0,
        "answered_per_s": round(len(ordered) / (ended - started), 1),
        "p50_ms": round(percentile(ms, 50), 1),
        "p90_ms": round(percentile(ms, 90), 1),
        "p99_ms": round(percentile(ms, 99), 1),
        "max_ms": round(ms[-1], 1) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 1) if ms else float("nan"),
        "send_lag_p99_ms": round(percentile(sorted(late), 99) * 1e3, 1),
        "receipted": codes[200],
        "pending": codes[202],
        "other_answers": {str(k): v for k, v in codes.items() if k not in (200, 202)},
    }


def micro_costs(rig: Rig, count: int = 300) -> dict[str, float]:
    """The API's per-event steps alone, in this process: what one core could do without HTTP."""
    events = new_events(count, rig.case_ids)
    documents = [body(as_json(e)) for e in events]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for raw in documents:
        event_problems(json.loads(raw), now=now)
    checked = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lintas-bench-api-keys-") as scratch:
        systems = national_systems(Path(scratch))  # a key store of its own: these cases are not routed
        systems.encode(events[0])
        sealing_started = time.perf_counter()
        for event in events:
            systems.encode(event)
        sealed = time.perf_counter()
    store = ReadStore(str(rig.directory / "read.sqlite"))
    ids = list(rig.receipts.status)[:count]
    query_started = time.perf_counter()
    for event_id in ids:
        store.latest_receipt("TH", event_id)
    queried = time.perf_counter()
    store.dispose()
    return {
        "json_parse_and_validate_us": round((checked - started) / count * 1e6, 1),
        "seal_and_sign_us": round((sealed - sealing_started) / count * 1e6, 1),
        "latest_receipt_query_us": round((queried - query_started) / max(1, len(ids)) * 1e6, 1),
    }


async def warm_up(rig: Rig, count: int) -> float:
    """A few events straight to Kafka and over the API, until their receipts are in: the router has its
    partitions, the projector its, the API its producers."""
    started = time.monotonic()
    await baseline(rig, new_events(count, rig.case_ids))
    await api_throughput(rig, new_events(count, rig.case_ids), 1, 4)
    await api_throughput(rig, new_events(count, rig.case_ids), count, 1)
    return round(time.monotonic() - started, 1)


def start_rig(args: argparse.Namespace, bootstrap: str, directory: Path, broker_pid: int | None) -> Rig:
    store_path = directory / "read.sqlite"
    store = ReadStore(str(store_path)).create()
    token = Credentials(store).issue("TH", Role.NATIONAL_SYSTEM, agency="TH-DSDW", label="benchmark").token
    store.dispose()
    env = {
        "LINTAS_LOG_FORMAT": "json",
        "LINTAS_KEYS__STORE": str(key_store_path(directory)),
        "LINTAS_API__STORE": str(store_path),
    }
    port = free_port()
    lintas = [sys.executable, "-m", "hub.cli"]
    group = f"bench-api-{uuid.uuid4().hex[:8]}"
    command = lintas
    if args.profile:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            SAMPLED_API,
            str(directory / "profile.json"),
        ]
    children = [
        Child(
            "lintas worker",
            [*lintas, "worker", "-b", bootstrap, "--instance", "bench", "--group", group],
            env,
            directory / "worker.log",
        ).start(),
        Child(
            "lintas api",
            [*command, "api", "-b", bootstrap, "--port", str(port)],
            env,
            directory / "api.log",
        ).start(),
    ]
    url = f"http://127.0.0.1:{port}"
    rig = Rig(
        bootstrap,
        url,
        token,
        directory,
        Receipts(store_path),
        children,
        {"api": children[1].pid, "router": children[0].pid, "broker": broker_pid},
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        for child in children:
            child.check()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/health", timeout=5).status_code == 200:
                return rig
        if time.monotonic() > deadline:
            raise BenchmarkError(f"the API did not answer /v1/health within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


async def measure(args: argparse.Namespace, rig: Rig) -> dict[str, Any]:
    figures: dict[str, Any] = {"warm_up_s": await warm_up(rig, 20)}
    before = rig.cpu()
    await asyncio.sleep(IDLE_S)
    after = rig.cpu()
    # What each process burns with nothing to do (polling consumers, the broker's own work), in cores.
    figures["idle_cores"] = {k: round((after[k] - before[k]) / IDLE_S, 3) for k in after}
    figures["baseline"] = await baseline(rig, new_events(args.events, rig.case_ids))
    figures["api_single"] = await api_throughput(
        rig, new_events(args.events, rig.case_ids), 1, args.concurrency
    )
    figures["api_batch"] = await api_throughput(
        rig, new_events(args.events, rig.case_ids), args.batch, args.batch_concurrency
    )
    figures["latency"] = {str(rate): await latency(rig, rate, args.seconds, args.wait) for rate in args.rates}
    return figures


def run(args: argparse.Namespace, bootstrap: str, name: str, broker_pid: int | None) -> dict[str, Any]:
    load_before = [round(v, 2) for v in os.getloadavg()]
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lintas-bench-api-") as home:
        directory = Path(home)
        rig: Rig | None = None
        exit_codes: dict[str, int | None] = {}
        api_stopped = False
        profile: dict[str, Any] | None = None
        try:
            rig = start_rig(args, bootstrap, directory, broker_pid)
            figures = asyncio.run(measure(args, rig))
            figures["micro_costs"] = micro_costs(rig)
        except BaseException:
            if rig is not None:
                for child in rig.children:
                    print(f"--- {child.name}\n{child.tail()}", file=sys.stderr)
            raise
        finally:
            if rig is not None:
                rig.receipts.connection.close()
                # The API first: its projector and producers let go of the broker before the router.
                exit_codes = {child.name: child.stop() for child in reversed(rig.children)}
                # uvicorn raises SIGTERM again once it has shut down: -15 after api_stopped is a clean exit.
                api_stopped = "api_stopped" in rig.children[1].tail(50)
            if args.profile and (directory / "profile.json").exists():
                profile = json.loads((directory / "profile.json").read_text())
    base = figures["baseline"]["per_s"]
    return {
        "benchmark": "api",
        "broker": name,
        "events": args.events,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "batch_concurrency": args.batch_concurrency,
        "wait_s": args.wait,
        **figures,
        "ratio_single_vs_baseline": round(figures["api_single"]["per_s"] / base, 3),
        "ratio_batch_vs_baseline": round(figures["api_batch"]["per_s"] / base, 3),
        "exit_codes": exit_codes,
        "api_stopped_cleanly": api_stopped,
        "profiled": args.profile,
        "api_profile": profile,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "duration_s": round(time.monotonic() - begun, 1),
    }


def report(f: dict[str, Any]) -> None:
    print(
        f"\napi: {f['events']} events per throughput phase, new cases TH -> MM/KH/LA; {f['broker']}; "
        f"the router and the API as child processes on {f['cpus']} CPUs"
        + (" (API sampled: figures not comparable)" if f["profiled"] else "")
    )
    cpu_names = list(f["baseline"]["cpu_ms_per_event"])
    print(
        f"{'to receipts visible':34}{'events/s':>10}{'x base':>8}{'answered/s':>12}{'seconds':>9}   "
        + "CPU ms/event: "
        + ", ".join(cpu_names)
    )
    rows = [
        ("(1) baseline: straight to Kafka", "baseline"),
        (f"(2) POST single, {f['concurrency']} in flight", "api_single"),
        (f"(3) POST batch of {f['batch']}, {f['batch_concurrency']} in flight", "api_batch"),
    ]
    for label, key in rows:
        row = f[key]
        cpu = " / ".join(f"{row['cpu_ms_per_event'][n]:.2f}" for n in cpu_names)
        print(
            f"{label:34}{row['per_s']:>10,.0f}{row['per_s'] / f['baseline']['per_s']:>8.3f}"
            f"{row['answered_per_s']:>12,.0f}{row['seconds']:>9.2f}   {cpu}   {row['outcomes']}"
        )
    print(
        f"ratio_single_vs_baseline {f['ratio_single_vs_baseline']}, "
        f"ratio_batch_vs_baseline {f['ratio_batch_vs_baseline']}"
    )
    print(
        f"\n{'?wait=' + format(f['wait_s'], 'g') + ', open loop':24}"
        f"{'offered/s':>10}{'sent/s':>8}{'answered/s':>11}"
        f"{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}{'receipted':>10}{'pending':>8}   CPU ms/request"
    )
    for rate, lat in f["latency"].items():
        cpu = " / ".join(f"{lat['cpu_ms_per_event'][n]:.2f}" for n in cpu_names)
        print(
            f"{rate + '/s':24}{lat['offered_per_s']:>10,}"
            f"{lat['sent_per_s']:>8,.0f}{lat['answered_per_s']:>11,.0f}"
            f"{lat['p50_ms']:>8.1f}{lat['p90_ms']:>8.1f}{lat['p99_ms']:>8.1f}{lat['max_ms']:>8.1f}"
            f"{lat['receipted']:>10}{lat['pending']:>8}   {cpu}"
            + (f"  other answers {lat['other_answers']}" if lat["other_answers"] else "")
        )
    micro = f["micro_costs"]
    print(
        "\none event, one core, no HTTP: JSON parse + validation "
        f"{micro['json_parse_and_validate_us']:.0f} µs, "
        f"sealing + signing {micro['seal_and_sign_us']:.0f} µs, "
        f"one latest_receipt query {micro['latest_receipt_query_us']:.0f} µs"
    )
    if f["api_profile"]:
        samples = f["api_profile"]["busy"]
        busy = sum(samples.values())
        print(
            f"API process, busy samples by activity ({busy} of {f['api_profile']['samples']} thread samples):"
        )
        for name, count in sorted(samples.items(), key=lambda kv: -kv[1]):
            print(f"  {name:46}{count / busy:>7.1%}")
        print("  busiest leaves: " + ", ".join(f"{k} {v}" for k, v in f["api_profile"]["leaves"].items()))
    print(
        f"idle, cores: {f['idle_cores']}\n"
        f"exit codes {f['exit_codes']} (the API shut down cleanly: {f['api_stopped_cleanly']}); "
        f"load average (1, 5, 15 min) {f['load_average_before']} before, "
        f"{f['load_average_after']} after; {f['duration_s']} s"
    )
    print(json.dumps(f))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", help="an existing cluster; default: a private local broker")
    parser.add_argument("--events", type=int, default=1500, help="events per throughput phase")
    parser.add_argument("--quick", action="store_true", help="300 events per phase, 4 s per rate")
    parser.add_argument("--concurrency", type=int, default=32, help="single-event requests in flight")
    parser.add_argument("--batch", type=int, default=100, help="events per batch")
    parser.add_argument("--batch-concurrency", type=int, default=4, help="batches in flight")
    parser.add_argument(
        "--rates",
        type=lambda s: [int(r) for r in s.split(",") if r],
        default=[50, 200],
        help="offered requests/s of the ?wait latency runs, comma separated (empty: none)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per offered rate")
    parser.add_argument("--wait", type=float, default=10.0, help="?wait of the latency runs")
    parser.add_argument("--profile", action="store_true", help="sample the API process's stacks")
    args = parser.parse_args()
    if args.quick:
        args.events, args.seconds = 300, 4.0
    if args.events < 1 or args.concurrency < 1 or args.batch < 1 or args.batch_concurrency < 1:
        parser.error("--events, --concurrency, --batch and --batch-concurrency must be at least 1")
    # SIGTERM ends the run like Ctrl-C: the children and the private broker are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_logging(level=logging.WARNING)  # the national systems here log every data key at info
    failure: str | None = None
    with broker(args.bootstrap_servers) as (bootstrap, name, broker_pid):
        try:
            figures = run(args, bootstrap, name, broker_pid)
        except BenchmarkError as exc:
            failure = str(exc)
    if failure is not None:
        print(f"api benchmark failed: {failure}", file=sys.stderr)
        sys.exit(1)
    report(figures)


if __name__ == "__main__":
    main()
