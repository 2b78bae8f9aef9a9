"""Soak: the hub routing for ``--minutes`` at half its measured maximum, on a secured three-node cluster.

Not a test (CI does not run it). Everything runs on this machine: private local KRaft clusters of three
combined broker + controller nodes (replication 3, ``min.insync.replicas`` 2) in a temporary directory,
``--workers`` real ``lintas worker`` processes of group ``lintas-router``, the national systems publishing
(one idempotent producer per country, ``acks=all``, ``linger.ms=0``) and a read_committed reader of every
country's receipts, in this process.

Phase 1, the maximum, and its baseline: the same workers (count and settings) on a PLAINTEXT cluster and
on a SASL_SSL one (SCRAM-SHA-512 over TLS, the ACL layout applied: the workers connect as principal
``router``, each national system as ``nrm-<cc>``, the reader and the offsets as ``operator``), both alive
(six JVMs; the memory left is printed). On each a warm-up (not counted), then ``--rounds`` rounds, the order
of the two alternating, of a probe of ``--probe-events`` pre-encoded synthetic events
(``hub.synthetic.synthetic_stream``; each round's seed and tag the same on both clusters, so the same
stream, encoded with each cluster's own key store) published as fast as the producers go: **routed
events/s** = events / (last receipt's record timestamp - first input's record timestamp), the median of
the rounds. The ratio of the two is what SASL_SSL costs against PLAINTEXT. The PLAINTEXT cluster is then
stopped and one more probe measures the SASL_SSL maximum alone, as the soak will run: the soak's rate is half
of it (the idle neighbour's JVMs take a share of the CPU that the interleaved figures do without).

Phase 2, the soak, on the SASL_SSL cluster and its (warm) workers: a new stream of ``rate x minutes``
events, encoded before the clock starts, published at a steady pace of half the SASL_SSL maximum. Per
``--window-minutes`` window (of publication): events published and routed, end-to-end latency p50/p99/max
(input record timestamp -> its receipt's record timestamp, both CreateTime on this machine's clock; the
receipt's is set when the worker writes it, inside its transaction), and, as a national system sees it,
the same to the moment the reader had the committed receipt (``seen``); at each window's end every worker's
RSS (``VmRSS`` of ``/proc/<pid>/status``) and CPU share, the brokers' RSS and the consumer lag of
``lintas-router`` (committed offsets against the end offsets of the national topics). At the end: RSS
growth per worker (last window's minus the first's), the lag when the last event was sent and after the
drain, and whether every published event got exactly one receipt.

The router keeps every case's route and every event id in memory, so some RSS growth is the state of the
cases routed (``rss_growth_kib_per_case``), not by itself a leak: a leak shows as growth that does not
level off with the cases, or lag and latency climbing window after window.

Every wait has a deadline; a worker that exits fails the run with the end of its log. Workers, clusters and
the temporary directory are removed at the end, also on Ctrl-C or an error (``--keep-logs`` keeps the
directory). Prints a table, then one JSON line of every figure.

Usage: python benchmarks/soak.py [--minutes 30] [--window-minutes 5] [--workers 2] [--probe-events N]
       [--rounds R] [--quick] [--keep-logs]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import math
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

# Run as a script, this directory comes first on sys.path, and benchmarks/projections.py would stand in
# for the projections package that hub.cli imports: drop it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import (
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from hub.agreements import load_agreements
from hub.broker.layout import ensure_layout
from hub.broker.local import KAFKA_VERSION, LocalCluster, provision
from hub.cli import national_systems
from hub.codec import Codec
from hub.events import Event
from hub.headers import envelope_headers
from hub.kafka import ensure_topics
from hub.logging import configure_logging
from hub.security.principals import OPERATOR, ROUTER, ROUTER_GROUP, national_system, principals
from hub.settings import KeySettings, Settings
from hub.synthetic import synthetic_stream
from hub.topics import all_topics, nrm_events, nrm_receipts
from hub.wire.national import NationalSystems

REPO = Path(__file__).resolve().parent.parent
NODES = 3
SECURITIES = ("plaintext", "sasl_ssl")
#: Events generated and encoded at once: the soak's stream is made chunk by chunk, its events let go of
#: once encoded.
CHUNK = 30_000
CLUSTER_START_TIMEOUT_S = 180.0
READY_TIMEOUT_S = 180.0  # workers started, group stable, every partition assigned, state restored
STALL_TIMEOUT_S = 90.0  # no new receipt for this long while some are missing: the hub is stuck
DRAIN_TIMEOUT_S = 120.0  # after the last send, how long the last receipts may take
STOP_TIMEOUT_S = 30.0  # SIGTERM to exit; SIGKILL after
ADMIN_TIMEOUT_S = 30.0
Partition = tuple[str, int]
Coordinates = tuple[str, int, int]  # topic, partition, offset of an input
KafkaHeaders = list[tuple[str, str | bytes | None]]


class SoakError(Exception):
    """The soak cannot go on; the message says what did not happen and within how long."""


# -- the stream ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outbound:
    """A national system's message, encoded."""

    country: str
    topic: str
    key: bytes
    value: bytes
    headers: KafkaHeaders


def stream(seed: int, count: int, run_tag: str, now: datetime) -> list[Event]:
    """The first ``count`` events, in time order, of enough synthetic cases (a time prefix keeps each
    case's events in order). Event ids come from the seed, case ids from the tag: every (seed, tag)
    of a run is its own."""
    cases = max(1, count // 3)
    while True:
        events = list(
            itertools.islice(
                synthetic_stream(seed, cases, start=now - timedelta(days=540), until=now, run_tag=run_tag),
                count,
            )
        )
        if len(events) == count:
            return events
        cases *= 2


def encoded(systems: NationalSystems, events: Sequence[Event]) -> list[Outbound]:
    return [
        Outbound(
            e.envelope.source_country.value,
            nrm_events(e.envelope.source_country.value),
            e.envelope.case_id.encode(),
            systems.encode(e),
            list(envelope_headers(e.envelope)),
        )
        for e in events
    ]


@dataclass(frozen=True)
class Made:
    messages: list[Outbound]
    cases: int
    seconds: float

    @property
    def per_s(self) -> float:
        return len(self.messages) / self.seconds if self.seconds > 0 else 0.0


def make_stream(systems: NationalSystems, count: int, seed: int, run_tag: str, now: datetime) -> Made:
    """``count`` events, generated and encoded in chunks of :data:`CHUNK` (each its own seed and tag)."""
    started = time.perf_counter()
    messages: list[Outbound] = []
    cases: set[bytes] = set()
    for chunk in range(math.ceil(count / CHUNK)):
        size = min(CHUNK, count - chunk * CHUNK)
        batch = encoded(systems, stream(seed * 1000 + chunk, size, f"{run_tag}{chunk}-", now))
        cases.update(m.key for m in batch)
        messages += batch
    return Made(messages, len(cases), time.perf_counter() - started)


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


# -- processes ----------------------------------------------------------------------------------------


def _proc_rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _proc_cpu_s(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text[-lines:])


class Workers:
    """``lintas worker`` processes of group ``lintas-router``, each logging to its own file."""

    def __init__(self, bootstrap: str, count: int, env: dict[str, str], log_dir: Path) -> None:
        self.bootstrap = bootstrap
        self.count = count
        self.env = env
        self.logs = [log_dir / f"worker-{i}.log" for i in range(count)]
        self.health_dir = Path(env["LINTAS_PROCESSOR__STATUS_DIR"])
        self.procs: list[subprocess.Popen[bytes]] = []
        self.exit_codes: list[int | None] = []

    def start(self) -> Workers:
        for i, log in enumerate(self.logs):
            with log.open("wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "hub.cli",
                            "worker",
                            "--bootstrap-servers",
                            self.bootstrap,
                            "--instance",
                            str(i),
                        ],
                        cwd=REPO,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        return self

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def health(self) -> list[dict[str, Any] | None]:
        """Each worker's health file (None: not written yet)."""
        bodies: list[dict[str, Any] | None] = []
        for i in range(self.count):
            try:
                body = json.loads((self.health_dir / f"{ROUTER_GROUP}-{i}.json").read_text())
            except (OSError, ValueError):
                body = None
            bodies.append(body if isinstance(body, dict) else None)
        return bodies

    def check(self) -> None:
        """Raise if a worker has exited: a worker runs until it is told to stop."""
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise SoakError(
                    f"worker {i} exited with code {proc.returncode}; the end of {self.logs[i]}:\n"
                    f"{_tail(self.logs[i])}"
                )

    def tails(self) -> str:
        return "\n".join(f"--- {log}:\n{_tail(log, 10)}" for log in self.logs)

    def rss_mib(self) -> list[float | None]:
        return [_proc_rss_mib(pid) for pid in self.pids]

    def cpu_s(self) -> list[float]:
        return [_proc_cpu_s(pid) for pid in self.pids]

    def stop(self) -> list[int | None]:
        """SIGTERM every worker and wait; SIGKILL one that does not end within STOP_TIMEOUT_S."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(STOP_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                codes.append(None)  # did not stop on SIGTERM
        self.exit_codes = codes
        return codes

    def log_findings(self) -> Counter[str]:
        """Warnings and errors the workers logged, by event; librdkafka's own lines (``%<level>|...``)
        at warning or worse by facility; any other line that is not JSON as ``other``."""
        found: Counter[str] = Counter()
        for log in self.logs:
            try:
                lines = log.read_text(errors="replace").splitlines()
            except OSError:
                continue
            for line in lines:
                if rdkafka := re.match(r"^%(\d)\|[\d.]+\|(\w+)\|", line):
                    if int(rdkafka[1]) <= 4:  # syslog levels: 4 warning, 3 error, ...
                        found[f"rdkafka:{rdkafka[2]}"] += 1
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    if line.strip():
                        found["other"] += 1
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error", "critical"):
                    found[f"{entry['level']}:{entry.get('event')}"] += 1
        return found


# -- one cluster and what runs on it -------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """A receipt read back: which input it answers, when it was written and when it was read (ms)."""

    source: Coordinates
    written_ms: int
    seen_ms: int
    status: str
    reason: str | None


class ReceiptReader(threading.Thread):
    """Reads every country's receipts, read_committed, from the offsets given; keeps what it read."""

    def __init__(self, config: dict[str, Any], start: dict[Partition, int]) -> None:
        super().__init__(daemon=True, name="receipts")
        self.consumer = KafkaConsumer(
            {
                **config,
                "group.id": f"soak-receipts-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,  # the reader should not add its own wait to the figures
            }
        )
        self.consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in start.items()])
        self.received: list[Received] = []
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        codec = Codec()
        try:
            while not self.halt.is_set():
                batch = self.consumer.consume(num_messages=2000, timeout=0.05)
                seen = int(time.time() * 1000)
                for m in batch:
                    error = m.error()
                    if error is not None:
                        raise SoakError(f"reading {m.topic()}[{m.partition()}]: {error}")
                    value = m.value()
                    if value is None:
                        raise SoakError(
                            f"{m.topic()}[{m.partition()}]@{m.offset()}: a receipt without a value"
                        )
                    receipt = codec.decode_receipt(value)
                    self.received.append(
                        Received(
                            (receipt.source_topic, receipt.source_partition, receipt.source_offset),
                            m.timestamp()[1],
                            seen,
                            str(receipt.status),
                            receipt.reason_code,
                        )
                    )
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            self.consumer.close()

    def check(self) -> None:
        if self.error is not None:
            raise SoakError(f"reading the receipts: {self.error!r}")


class NationalPublishers:
    """One idempotent producer per country, each as that country's national system; every delivered
    input's coordinates with its record timestamp (CreateTime, ms)."""

    def __init__(self, config_of: Callable[[str], dict[str, Any]], countries: Sequence[str]) -> None:
        self.producers = {
            cc: Producer(
                {
                    **config_of(cc),
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 0,
                    "partitioner": "murmur2_random",  # the Java client's, as national systems' would be
                }
            )
            for cc in countries
        }
        for cc, producer in self.producers.items():  # metadata now, not on the first timed send
            producer.list_topics(nrm_events(cc), timeout=ADMIN_TIMEOUT_S)
        self.placed: dict[Coordinates, int] = {}
        self.failed: list[str] = []

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self.failed.append(str(err))
        else:
            where = cast(Coordinates, (msg.topic(), msg.partition(), msg.offset()))
            self.placed[where] = msg.timestamp()[1]

    def publish(
        self, messages: Sequence[Outbound], rate: float | None, check: Callable[[], None]
    ) -> tuple[float, float]:
        """Publish every message, at ``rate`` per second (None: as fast as the producers take them),
        and wait for their delivery; returns the wall-clock time of the first send and the last (s)."""
        producers = self.producers
        on_delivery = self._delivered
        started = time.perf_counter()
        first = time.time()
        checked = started
        for i, m in enumerate(messages):
            if rate is not None:
                due = started + i / rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.002))
            producer = producers[m.country]
            while True:
                try:
                    producer.produce(m.topic, m.value, m.key, headers=m.headers, on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.05)
            producer.poll(0)
            if (now := time.perf_counter()) - checked > 0.5:
                checked = now
                for other in producers.values():
                    other.poll(0)
                check()
        last = time.time()
        for cc, producer in producers.items():
            if producer.flush(60):
                raise SoakError(f"publishing as {national_system(cc)}: not delivered within 60 s")
        if self.failed:
            raise SoakError(f"publishing: {len(self.failed)} failed, first {self.failed[0]}")
        return first, last

    def close(self) -> None:
        for producer in self.producers.values():
            producer.flush(10)


class Deployment:
    """A private three-node cluster (PLAINTEXT or SASL_SSL) with the hub's topics, its workers, its
    national systems and a reader of the receipts, under ``home``."""

    def __init__(self, security: str, home: Path, countries: Sequence[str], args: argparse.Namespace) -> None:
        self.security = security
        self.home = home
        self.countries = list(countries)
        self.args = args
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.keys = home / "keys" / "keys.sqlite"
        self.cluster = LocalCluster(
            home / "cluster",
            provision(),
            nodes=NODES,
            security="sasl_ssl" if security == "sasl_ssl" else "plaintext",
            users=tuple(p.name for p in principals(self.countries)),
        )
        self.bootstrap = ""
        self.meta: KafkaConsumer | None = None
        self._meta_lock = threading.Lock()
        self.workers: Workers | None = None
        self.reader: ReceiptReader | None = None
        self.publishers: NationalPublishers | None = None
        self.systems: NationalSystems | None = None
        self.inputs: list[Partition] = []
        self.receipts: list[Partition] = []
        self.ready_seconds = 0.0
        self.started_seconds = 0.0

    @property
    def label(self) -> str:
        return self.security.upper()

    def config(self, user: str) -> dict[str, Any]:
        return {
            **self.cluster.rdkafka_config(user),
            "bootstrap.servers": self.bootstrap,
            "log.connection.close": False,
        }

    def worker_env(self) -> dict[str, str]:
        # The connection is the benchmark's to set: none of the caller's own settings of it.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LINTAS_BOOTSTRAP", "LINTAS_SECURITY", "LINTAS_SASL", "LINTAS_SSL"))
        }
        env = {
            **inherited,
            "LINTAS_LOG_FORMAT": "json",
            "LINTAS_TOPICS__PARTITIONS": str(self.args.partitions),
            "LINTAS_PROCESSOR__STATUS_DIR": str(self.home / "health"),
            # The national systems of the run (this process) and the hub's workers share one key store.
            "LINTAS_KEYS__STORE": str(self.keys),
            "PYTHONUNBUFFERED": "1",
        }
        if self.security == "sasl_ssl":
            env |= {
                "LINTAS_SECURITY_PROTOCOL": "SASL_SSL",
                "LINTAS_SASL_MECHANISM": "SCRAM-SHA-512",
                "LINTAS_SASL_USERNAME": ROUTER,
                "LINTAS_SASL_PASSWORD_FILE": str(self.cluster.secrets.file(ROUTER)),
                "LINTAS_SSL_CAFILE": str(self.cluster.ca_file),
            }
        else:
            env["LINTAS_SECURITY_PROTOCOL"] = "PLAINTEXT"
        return env

    def start(self, settings: Settings) -> Deployment:
        """The cluster, its ACLs and topics, the workers (ready), the national systems and the reader."""
        started = time.monotonic()
        self.bootstrap = self.cluster.start(timeout=CLUSTER_START_TIMEOUT_S)
        if self.security == "sasl_ssl":
            ensure_layout(self.bootstrap, self.config(OPERATOR), self.countries, self.cluster.secrets)
        asyncio.run(
            ensure_topics(
                self.bootstrap,
                all_topics(self.countries),
                partitions=self.args.partitions,
                options=self.cluster.client_options(OPERATOR),
            )
        )
        # Offsets and metadata through a consumer of the group that never joins it: the admin client's
        # group requests abort the process when one times out (librdkafka issue 4605).
        self.meta = KafkaConsumer(
            {**self.config(OPERATOR), "group.id": ROUTER_GROUP, "enable.auto.commit": False}
        )
        self.inputs = self.partitions([nrm_events(cc) for cc in self.countries])
        self.receipts = self.partitions([nrm_receipts(cc) for cc in self.countries])
        self.started_seconds = time.monotonic() - started
        self.workers = Workers(self.bootstrap, self.args.workers, self.worker_env(), self.logs).start()
        self.ready_seconds = self.await_ready()
        own = settings.model_copy(update={"keys": KeySettings(store=str(self.keys))})
        self.systems = national_systems(own)
        self.publishers = NationalPublishers(
            lambda cc: self.config(national_system(cc) if self.security == "sasl_ssl" else OPERATOR),
            self.countries,
        )
        self.reader = ReceiptReader(self.config(OPERATOR), self.end_offsets(self.receipts))
        self.reader.start()
        return self

    def partitions(self, topics: Sequence[str]) -> list[Partition]:
        """Every partition of ``topics``; a node whose metadata is behind the controller's (the topics
        were just made) is asked again, until ``ADMIN_TIMEOUT_S``."""
        assert self.meta is not None
        deadline = time.monotonic() + ADMIN_TIMEOUT_S
        while True:
            metadata = self.meta.list_topics(timeout=ADMIN_TIMEOUT_S).topics
            missing = [
                t
                for t in topics
                if t not in metadata or metadata[t].error is not None or not metadata[t].partitions
            ]
            if not missing:
                return [(t, p) for t in topics for p in sorted(metadata[t].partitions)]
            if time.monotonic() > deadline:
                raise SoakError(
                    f"{self.label}: topics {', '.join(missing)} not in the metadata "
                    f"{ADMIN_TIMEOUT_S:.0f} s after they were made"
                )
            time.sleep(0.5)

    def end_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int]:
        """The high watermarks of ``partitions``."""
        assert self.meta is not None
        with self._meta_lock:
            return {
                (t, p): int(
                    self.meta.get_watermark_offsets(
                        TopicPartition(t, p), timeout=ADMIN_TIMEOUT_S, cached=False
                    )[1]
                )
                for t, p in partitions
            }

    def lag(self) -> int:
        """Input records not yet committed by group ``lintas-router``, over every national topic (the
        national systems do not write in transactions: the high watermark is the last record's)."""
        assert self.meta is not None
        ends = self.end_offsets(self.inputs)
        with self._meta_lock:
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in self.meta.committed(
                    [TopicPartition(t, p) for t, p in self.inputs], timeout=ADMIN_TIMEOUT_S
                )
            }
        return sum(max(0, end - max(0, committed.get(tp, 0))) for tp, end in ends.items())

    def await_ready(self) -> float:
        """Wait until every worker's health file says running, the workers own every partition
        number between them, each once, and every worker is idle (its state restored); returns the
        seconds it took."""
        assert self.workers is not None
        workers = self.workers
        started = time.monotonic()
        deadline = started + READY_TIMEOUT_S
        wanted = sorted(range(self.args.partitions))
        quiet, seen = 0, "no health file yet"
        while quiet < 2:
            workers.check()
            if time.monotonic() > deadline:
                raise SoakError(
                    f"{self.label}: {workers.count} workers not running and idle with every partition "
                    f"within {READY_TIMEOUT_S:.0f} s (last seen: {seen})\n{workers.tails()}"
                )
            health = workers.health()
            owned = sorted(p for body in health if body for p in body.get("partitions", ()))
            seen = ", ".join(
                f"{body.get('state')} {body.get('partitions')}" if body else "none" for body in health
            )
            if not all(body and body.get("ready") is True for body in health) or owned != wanted:
                quiet = 0
                time.sleep(0.5)
                continue
            before = workers.cpu_s()
            time.sleep(0.5)
            idle = all(after - b < 0.05 for b, after in zip(before, workers.cpu_s(), strict=True))
            quiet = quiet + 1 if idle else 0
        return time.monotonic() - started

    def check(self) -> None:
        assert self.workers is not None
        assert self.reader is not None
        self.workers.check()
        self.reader.check()

    def broker_rss_mib(self) -> list[float | None]:
        return [_proc_rss_mib(pid) if (pid := m.pid) is not None else None for m in self.cluster.members]

    def stop(self) -> None:
        """Everything this deployment started, in order; each step whatever happened to the one before."""
        if self.reader is not None:
            self.reader.halt.set()
            self.reader.join(15)
        if self.publishers is not None:
            with contextlib.suppress(Exception):
                self.publishers.close()
            self.publishers = None
        if self.workers is not None and not self.workers.exit_codes:
            self.workers.stop()
        if self.meta is not None:
            with contextlib.suppress(Exception):
                self.meta.close()
            self.meta = None
        self.cluster.stop()


# -- one pass: publish, then wait for every receipt ------------------------------------------------------


@dataclass
class Pass:
    """What was published in one pass and what came back for it."""

    placed: dict[Coordinates, int]  # input -> its record timestamp (ms)
    first_send: float  # wall clock (s)
    last_send: float
    answers: dict[Coordinates, Received] = field(default_factory=dict)  # the first receipt of each
    duplicates: int = 0  # receipts beyond the first of an input
    foreign: int = 0  # receipts of inputs not of this pass
    drained_at: float = 0.0  # wall clock (s) when the last missing receipt was read

    @property
    def missing(self) -> int:
        return len(self.placed) - len(self.answers)

    def outcomes(self) -> dict[str, int]:
        return dict(sorted(Counter(r.status for r in self.answers.values()).items()))

    def reasons(self) -> dict[str, int]:
        """Why the rejected were rejected."""
        return dict(sorted(Counter(r.reason for r in self.answers.values() if r.reason).items()))


def publish_pass(
    dep: Deployment,
    messages: Sequence[Outbound],
    rate: float | None,
    *,
    tolerate_missing: bool = False,
    on_sent: Callable[[], None] | None = None,
) -> Pass:
    """Publish ``messages`` on ``dep`` and wait until each has a receipt (or, when tolerated, until the
    drain's deadline: then the missing are counted)."""
    assert dep.publishers is not None
    assert dep.reader is not None
    publishers, reader = dep.publishers, dep.reader
    publishers.placed = {}
    mark = len(reader.received)
    first, last = publishers.publish(messages, rate, dep.check)
    if on_sent is not None:
        on_sent()
    result = Pass(publishers.placed, first, last)
    placed, answers = result.placed, result.answers
    index = mark
    progress = time.monotonic()
    deadline = progress + DRAIN_TIMEOUT_S if tolerate_missing else math.inf
    while True:
        received = reader.received
        end = len(received)
        for r in itertools.islice(received, index, end):
            if r.source not in placed:
                result.foreign += 1
            elif r.source in answers:
                result.duplicates += 1
            else:
                answers[r.source] = r
                result.drained_at = r.seen_ms / 1000
        if end > index:
            progress = time.monotonic()
        index = end
        if len(answers) == len(placed):
            break
        now = time.monotonic()
        if now > deadline:
            break
        if now - progress > STALL_TIMEOUT_S:
            if tolerate_missing:
                break
            raise SoakError(
                f"{dep.label}: {len(answers)} of {len(placed)} receipts, {now - progress:.0f} s without a "
                f"new one\n{dep.workers.tails() if dep.workers else ''}"
            )
        dep.check()
        time.sleep(0.05)
    # a duplicate may come after the last first receipt: give it the time a transaction takes
    time.sleep(0.5)
    for r in itertools.islice(reader.received, index, None):
        if r.source not in placed:
            result.foreign += 1
        elif r.source in answers:
            result.duplicates += 1
    return result


# -- phase 1: the maximum --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One probe on one cluster: the backlog of ``events`` routed."""

    events: int
    per_s: float  # events / (last receipt's record timestamp - first input's)
    per_s_seen: float  # events / (the last receipt read - the first send)
    seconds: float
    outcomes: dict[str, int]
    reasons: dict[str, int]


def probe_once(dep: Deployment, messages: Sequence[Outbound]) -> Probe:
    done = publish_pass(dep, messages, None)
    first_input = min(done.placed.values())
    last_receipt = max(r.written_ms for r in done.answers.values())
    seconds = (last_receipt - first_input) / 1000
    seen_seconds = done.drained_at - done.first_send
    if done.duplicates or done.foreign:
        raise SoakError(f"{dep.label} probe: {done.duplicates} duplicate and {done.foreign} foreign receipts")
    return Probe(
        len(messages),
        len(messages) / seconds if seconds > 0 else math.inf,
        len(messages) / seen_seconds if seen_seconds > 0 else math.inf,
        seconds,
        done.outcomes(),
        done.reasons(),
    )


def maximum(
    deployments: dict[str, Deployment], args: argparse.Namespace, tag: str, now: datetime
) -> dict[str, list[Probe]]:
    """A warm-up on each cluster, then ``--rounds`` rounds of one probe on each, the order alternating
    round by round, so that the machine's drift falls on both. Every round's stream is new (the router
    remembers every event id) and the same on both clusters (same seed and tag), encoded with each
    cluster's own key store before its clock starts."""
    for security, dep in deployments.items():
        assert dep.systems is not None
        warmup = make_stream(dep.systems, args.warmup_events, args.seed + 1, f"{tag}W", now)
        publish_pass(dep, warmup.messages, None)
        print(f"  {security.upper()} warmed up ({args.warmup_events:,} events)", flush=True)
    probes: dict[str, list[Probe]] = {security: [] for security in deployments}
    for number in range(args.rounds):
        order = list(deployments) if number % 2 == 0 else list(reversed(deployments))
        for security in order:
            dep = deployments[security]
            assert dep.systems is not None
            made = make_stream(
                dep.systems, args.probe_events, args.seed + 10 + number, f"{tag}P{number}", now
            )
            probes[security].append(result := probe_once(dep, made.messages))
            print(
                f"  round {number + 1}, {security.upper()}: {result.per_s:,.0f} events/s routed "
                f"({result.events:,} in {result.seconds:.1f} s; {result.per_s_seen:,.0f}/s to the last "
                f"receipt read; encoded at {made.per_s:,.0f}/s), {result.outcomes}",
                flush=True,
            )
    return probes


# -- phase 2: the soak -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """What was measured at a window's end (``at``: wall clock, s)."""

    at: float
    rss_mib: list[float | None]
    cpu_s: list[float]
    broker_rss_mib: list[float | None]
    lag: int | None
    mem_available_mib: float


class Sampler(threading.Thread):
    """Takes a :class:`Sample` at the soak's start and at each window's end, by the wall clock."""

    def __init__(self, dep: Deployment, start: float, ends: Sequence[float]) -> None:
        super().__init__(daemon=True, name="sampler")
        self.dep = dep
        self.start_at = start
        self.ends = ends
        self.samples: list[Sample] = []
        self.mark = len(dep.reader.received) if dep.reader else 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def take(self) -> Sample:
        dep = self.dep
        assert dep.workers is not None
        try:
            lag: int | None = dep.lag()
        except (KafkaException, SoakError) as exc:
            print(f"  (lag not read: {exc})", flush=True)
            lag = None
        return Sample(
            time.time(),
            dep.workers.rss_mib(),
            dep.workers.cpu_s(),
            dep.broker_rss_mib(),
            lag,
            _mem_available_mib(),
        )

    def run(self) -> None:
        try:
            for number, end in enumerate(self.ends, 1):
                if self.halt.wait(max(0.0, end - time.time())):
                    return
                sample = self.take()
                self.samples.append(sample)
                routed = len(self.dep.reader.received) - self.mark if self.dep.reader else 0
                rss = ", ".join(f"{r:.0f}" if r is not None else "-" for r in sample.rss_mib)
                print(
                    f"  window {number}/{len(self.ends)} ends at {(end - self.start_at) / 60:.1f} min: "
                    f"receipts {routed:,}, worker RSS {rss} MiB, lag {sample.lag}, "
                    f"available {sample.mem_available_mib:,.0f} MiB",
                    flush=True,
                )
        except BaseException as exc:  # reported by the main thread
            self.error = exc


def soak(
    dep: Deployment, messages: Sequence[Outbound], rate: float, args: argparse.Namespace
) -> dict[str, Any]:
    assert dep.workers is not None
    window_s = args.window_minutes * 60
    total_s = args.minutes * 60  # the last send is due 1 / rate before its end
    ends = [min((k + 1) * window_s, total_s) for k in range(math.ceil(total_s / window_s - 1e-6))]
    start_rss = dep.workers.rss_mib()
    start_cpu = dep.workers.cpu_s()
    start_lag = dep.lag()
    started = time.time()
    sampler = Sampler(dep, started, [started + e for e in ends])
    sampler.start()
    lag_at_end: list[int | None] = [None]

    def on_sent() -> None:
        with contextlib.suppress(KafkaException, SoakError):
            lag_at_end[0] = dep.lag()

    try:
        done = publish_pass(dep, messages, rate, tolerate_missing=True, on_sent=on_sent)
        sampler.join(window_s + 60)  # its last sample is due at the last send
    finally:
        sampler.halt.set()
    if sampler.error is not None:
        raise SoakError(f"sampling the windows: {sampler.error!r}")
    lag_after = dep.lag()
    rss_after = dep.workers.rss_mib()

    # windows of publication: the events whose input timestamp falls in each
    bounds = [int((started + e) * 1000) for e in ends]
    windows: list[dict[str, Any]] = []
    published = [0] * len(ends)
    latency: list[list[int]] = [[] for _ in ends]
    seen: list[list[int]] = [[] for _ in ends]
    for coordinates, sent_ms in done.placed.items():
        k = min(len(ends) - 1, _window_of(bounds, sent_ms))
        published[k] += 1
        answer = done.answers.get(coordinates)
        if answer is not None:
            latency[k].append(answer.written_ms - sent_ms)
            seen[k].append(answer.seen_ms - sent_ms)
    previous_cpu, previous_at = start_cpu, started
    for k, sample in enumerate(sampler.samples):
        ordered, ordered_seen = sorted(latency[k]), sorted(seen[k])
        span = sample.at - previous_at
        windows.append(
            {
                "window": k + 1,
                "ends_at_min": round(ends[k] / 60, 2),
                "published": published[k],
                "routed": len(ordered),
                "p50_ms": percentile(ordered, 50) if ordered else None,
                "p99_ms": percentile(ordered, 99) if ordered else None,
                "max_ms": ordered[-1] if ordered else None,
                "p50_seen_ms": percentile(ordered_seen, 50) if ordered_seen else None,
                "p99_seen_ms": percentile(ordered_seen, 99) if ordered_seen else None,
                "worker_rss_mib": [_round(r) for r in sample.rss_mib],
                "worker_cpu_percent": [
                    round(100 * (c - p) / span, 1) for c, p in zip(sample.cpu_s, previous_cpu, strict=True)
                ],
                "broker_rss_mib": [_round(r) for r in sample.broker_rss_mib],
                "lag": sample.lag,
                "mem_available_mib": round(sample.mem_available_mib),
            }
        )
        previous_cpu, previous_at = sample.cpu_s, sample.at
    everything = sorted(lat for window in latency for lat in window)
    everything_seen = sorted(s for window in seen for s in window)
    first_rss = sampler.samples[0].rss_mib if sampler.samples else start_rss
    last_rss = sampler.samples[-1].rss_mib if sampler.samples else rss_after
    growth = [
        None if a is None or b is None else round(b - a, 1) for a, b in zip(first_rss, last_rss, strict=True)
    ]
    growth_percent = [
        None if a is None or b is None or a == 0 else round(100 * (b - a) / a, 1)
        for a, b in zip(first_rss, last_rss, strict=True)
    ]
    cases = len({m.key for m in messages})
    known_growth = [g for g in growth if g is not None]
    return {
        "minutes": round(total_s / 60, 2),
        "window_minutes": args.window_minutes,
        "target_per_s": round(rate, 1),
        "offered_per_s": round((len(messages) - 1) / (done.last_send - done.first_send), 1)
        if done.last_send > done.first_send
        else None,
        "published": len(done.placed),
        "receipts": len(done.answers),
        "receipts_missing": done.missing,
        "receipts_duplicate": done.duplicates,
        "receipts_foreign": done.foreign,
        "published_equals_receipts": done.missing == 0 and done.duplicates == 0,
        "outcomes": done.outcomes(),
        "reasons": done.reasons(),
        "cases": cases,
        "p50_ms": percentile(everything, 50) if everything else None,
        "p99_ms": percentile(everything, 99) if everything else None,
        "max_ms": everything[-1] if everything else None,
        "p50_seen_ms": percentile(everything_seen, 50) if everything_seen else None,
        "p99_seen_ms": percentile(everything_seen, 99) if everything_seen else None,
        "windows": windows,
        "worker_rss_mib_at_start": [_round(r) for r in start_rss],
        "worker_rss_mib_after_drain": [_round(r) for r in rss_after],
        "rss_growth_mib": growth,
        "rss_growth_percent": growth_percent,
        "rss_growth_kib_per_case": round(1024 * sum(known_growth) / cases, 2) if cases else None,
        "lag_at_start": start_lag,
        "lag_at_last_send": lag_at_end[0],
        "lag_after_drain": lag_after,
        "drain_seconds": round(max(0.0, done.drained_at - done.last_send), 2),
    }


def _window_of(bounds: Sequence[int], ms: int) -> int:
    for k, bound in enumerate(bounds):
        if ms < bound:
            return k
    return len(bounds) - 1


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- the run ----------------------------------------------------------------------------------------------


def countries_of(settings: Settings) -> list[str]:
    """The configured countries and every party to an agreement (what the worker makes topics for)."""
    parties = {
        c.value
        for corridor in load_agreements(settings.agreements_path).corridors
        for c in corridor.countries
    }
    return sorted(set(settings.topics.countries) | parties)


def run(args: argparse.Namespace, root: Path, deployments: list[Deployment]) -> dict[str, Any]:
    load_before = os.getloadavg()
    settings = Settings()
    countries = countries_of(settings)
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:5].upper()
    started: dict[str, Deployment] = {}
    for security in SECURITIES:
        print(f"{security.upper()}: starting a {NODES}-node cluster and {args.workers} workers", flush=True)
        dep = Deployment(security, root / security, countries, args)
        deployments.append(dep)
        started[security] = dep.start(settings)
        print(
            f"  cluster up in {dep.started_seconds:.1f} s, workers ready in {dep.ready_seconds:.1f} s; "
            f"{_mem_available_mib():,.0f} MiB available",
            flush=True,
        )
    probes = maximum(started, args, tag, now)
    both_alive_mib = _mem_available_mib()
    started["plaintext"].stop()  # the soak has the machine to itself
    sasl = started["sasl_ssl"]
    assert sasl.systems is not None
    assert sasl.workers is not None
    best = {security: statistics.median(p.per_s for p in runs) for security, runs in probes.items()}
    seen = {security: statistics.median(p.per_s_seen for p in runs) for security, runs in probes.items()}
    # The soak has the machine to itself: its maximum is measured so too, once more, alone.
    made = make_stream(sasl.systems, args.probe_events, args.seed + 10 + args.rounds, f"{tag}A", now)
    alone = probe_once(sasl, made.messages)
    print(
        f"  SASL_SSL alone: {alone.per_s:,.0f} events/s routed ({alone.events:,} in {alone.seconds:.1f} s), "
        f"{alone.outcomes}",
        flush=True,
    )
    rate = alone.per_s / 2
    count = max(1, round(rate * args.minutes * 60))
    print(f"SASL_SSL soak: {count:,} events at {rate:,.1f}/s for {args.minutes} min; encoding", flush=True)
    stream_made = make_stream(sasl.systems, count, args.seed + 3, f"{tag}S", now)
    print(
        f"  {len(stream_made.messages):,} events of {stream_made.cases:,} cases encoded in "
        f"{stream_made.seconds:.1f} s ({stream_made.per_s:,.0f}/s); publishing",
        flush=True,
    )
    soaked = soak(sasl, stream_made.messages, rate, args)
    codes = {
        dep.security: (dep.workers.exit_codes or dep.workers.stop()) if dep.workers else []
        for dep in deployments
    }
    findings = {dep.security: dict(dep.workers.log_findings()) if dep.workers else {} for dep in deployments}
    outcomes: dict[str, Counter[str]] = {security: Counter() for security in probes}
    reasons: dict[str, Counter[str]] = {security: Counter() for security in probes}
    for security, runs in probes.items():
        for p in runs:
            outcomes[security].update(p.outcomes)
            reasons[security].update(p.reasons)
    figures: dict[str, Any] = {
        "benchmark": "soak",
        "broker": f"private local Kafka {KAFKA_VERSION}, {NODES} KRaft nodes, replication 3, min ISR 2",
        "workers": args.workers,
        "partitions": args.partitions,
        "countries": len(countries),
        "max_rate": {
            "probe_events": args.probe_events,
            "warmup_events": args.warmup_events,
            "rounds": args.rounds,
            "plaintext_per_s": round(best["plaintext"], 1),
            "sasl_ssl_per_s": round(best["sasl_ssl"], 1),
            "sasl_ssl_vs_plaintext": round(best["sasl_ssl"] / best["plaintext"], 3),
            "plaintext_per_s_seen": round(seen["plaintext"], 1),
            "sasl_ssl_per_s_seen": round(seen["sasl_ssl"], 1),
            "sasl_ssl_vs_plaintext_seen": round(seen["sasl_ssl"] / seen["plaintext"], 3),
            "sasl_ssl_alone_per_s": round(alone.per_s, 1),
            "sasl_ssl_alone_per_s_seen": round(alone.per_s_seen, 1),
            "per_round_per_s": {s: [round(p.per_s, 1) for p in runs] for s, runs in probes.items()},
            "per_round_ratio": [
                round(s.per_s / p.per_s, 3)
                for p, s in zip(probes["plaintext"], probes["sasl_ssl"], strict=True)
            ],
            "outcomes": {security: dict(sorted(c.items())) for security, c in outcomes.items()},
            # a backlog published at full speed meets the hub out of causal order across countries
            "reasons": {security: dict(sorted(c.items())) for security, c in reasons.items()},
            "cluster_start_seconds": {d.security: round(d.started_seconds, 1) for d in deployments},
            "workers_ready_seconds": {d.security: round(d.ready_seconds, 1) for d in deployments},
            "mem_available_mib_both_clusters": round(both_alive_mib),
        },
        "soak": soaked,
        "encode_per_s": round(stream_made.per_s, 1),
        "encode_seconds": round(stream_made.seconds, 1),
        "worker_exit_codes": codes,
        "worker_log": findings,
        "benchmark_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpus": os.cpu_count(),
        "mem_total_mib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    figures["warnings"] = warnings_of(figures)
    return figures


def warnings_of(f: dict[str, Any]) -> list[str]:
    """What makes the figures suspect or the hub wrong."""
    found: list[str] = []
    s = f["soak"]
    if not s["published_equals_receipts"]:
        found.append(
            f"published {s['published']:,}, receipts {s['receipts']:,}: {s['receipts_missing']} missing, "
            f"{s['receipts_duplicate']} duplicated"
        )
    if s["receipts_foreign"]:
        found.append(f"{s['receipts_foreign']} receipts of inputs the soak did not publish")
    if s["lag_after_drain"]:
        found.append(f"group {ROUTER_GROUP} still {s['lag_after_drain']} records behind after the drain")
    if s["offered_per_s"] is not None and s["offered_per_s"] < 0.98 * s["target_per_s"]:
        found.append(f"published at {s['offered_per_s']}/s, below the target {s['target_per_s']}/s")
    busy = max(f["load_average_before"][0], f["load_average_after"][0])
    if busy > f["cpus"]:
        found.append(
            f"load average {busy} on {f['cpus']} CPUs: other work shared the machine, and moved every figure"
        )
    ratios = f["max_rate"]["per_round_ratio"]
    if len(ratios) > 1 and max(ratios) > 1.2 * min(ratios):
        found.append(f"SASL_SSL / PLAINTEXT differs from round to round ({ratios}): the ratio is noise")
    for security, codes in f["worker_exit_codes"].items():
        if any(code != 0 for code in codes):
            found.append(f"{security} worker exit codes after SIGTERM: {codes} (None: killed)")
    return found


def report(f: dict[str, Any]) -> None:
    m, s = f["max_rate"], f["soak"]
    print(
        f"\nsoak: {f['workers']} workers, {f['partitions']} partitions, {f['broker']}; "
        f"{f['cpus']} CPUs, {f['mem_total_mib']:,} MiB"
    )
    print(f"{'maximum, routed events/s':34}{'PLAINTEXT':>12}{'SASL_SSL':>12}{'ratio':>8}")
    print(
        f"{'record timestamps':34}{m['plaintext_per_s']:>12,.0f}{m['sasl_ssl_per_s']:>12,.0f}"
        f"{m['sasl_ssl_vs_plaintext']:>8.3f}"
    )
    print(
        f"{'first send to last receipt read':34}{m['plaintext_per_s_seen']:>12,.0f}"
        f"{m['sasl_ssl_per_s_seen']:>12,.0f}{m['sasl_ssl_vs_plaintext_seen']:>8.3f}"
    )
    print(
        f"(median of {m['rounds']} interleaved rounds of {m['probe_events']:,} events after a warm-up; "
        f"each round {m['per_round_per_s']}, SASL_SSL / PLAINTEXT {m['per_round_ratio']})"
    )
    print(f"{'SASL_SSL alone (the soak at half)':34}{'':>12}{m['sasl_ssl_alone_per_s']:>12,.0f}")
    print(
        f"\nSASL_SSL soak at {s['target_per_s']:,.1f}/s (half the maximum alone; offered "
        f"{s['offered_per_s']}/s) "
        f"for {s['minutes']} min, windows of {s['window_minutes']} min; latency ms, input -> receipt "
        "(record timestamps), and to the receipt read (seen)"
    )
    header = (
        f"{'window':>7}{'min':>7}{'published':>11}{'routed':>9}{'p50':>7}{'p99':>7}{'max':>7}"
        f"{'p50 seen':>10}{'p99 seen':>10}{'lag':>7}  worker RSS MiB (CPU %)"
    )
    print(header)
    for w in s["windows"]:
        workers = ", ".join(
            f"{r if r is not None else '-'} ({c:.0f})"
            for r, c in zip(w["worker_rss_mib"], w["worker_cpu_percent"], strict=True)
        )
        print(
            f"{w['window']:>7}{w['ends_at_min']:>7.1f}{w['published']:>11,}{w['routed']:>9,}"
            f"{_ms(w['p50_ms']):>7}{_ms(w['p99_ms']):>7}{_ms(w['max_ms']):>7}"
            f"{_ms(w['p50_seen_ms']):>10}{_ms(w['p99_seen_ms']):>10}{_ms(w['lag']):>7}  {workers}"
        )
    print(
        f"whole soak: p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, max {s['max_ms']} ms; seen p50 "
        f"{s['p50_seen_ms']} ms, p99 {s['p99_seen_ms']} ms"
    )
    print(
        "RSS growth per worker, last window - first: "
        + ", ".join(
            f"{g} MiB ({p}%)" for g, p in zip(s["rss_growth_mib"], s["rss_growth_percent"], strict=True)
        )
        + f"; {s['rss_growth_kib_per_case']} KiB per case routed ({s['cases']:,} cases); after the drain "
        f"{s['worker_rss_mib_after_drain']} MiB"
    )
    print(
        f"lag of {ROUTER_GROUP}: {s['lag_at_start']} at the start, {s['lag_at_last_send']} at the last send, "
        f"{s['lag_after_drain']} after the drain ({s['drain_seconds']} s)"
    )
    verdict = "equal" if s["published_equals_receipts"] else "NOT equal"
    print(
        f"published {s['published']:,}, receipts {s['receipts']:,}: {verdict} (missing "
        f"{s['receipts_missing']}, duplicates {s['receipts_duplicate']}); outcomes {s['outcomes']}, "
        f"rejected for {s['reasons']}"
    )
    print(
        f"worker exit codes {f['worker_exit_codes']}; worker log: "
        f"{ {k: v for k, v in f['worker_log'].items() if v} or 'no warnings' }"
    )
    for warning in f["warnings"]:
        print(f"WARNING: {warning}")
    print(
        f"soak stream encoded at {f['encode_per_s']:,.0f}/s ({f['encode_seconds']} s, before the clock); "
        f"this process's peak RSS {f['benchmark_peak_rss_mib']:,.0f} MiB; load average "
        f"{f['load_average_before']} before, {f['load_average_after']} after"
    )
    print(json.dumps(f))


def _ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def preflight() -> None:
    """``lintas worker --help`` must run: a worker that cannot even start fails the run before a cluster."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", "worker", "--help"],
            cwd=REPO,
            capture_output=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SoakError("`lintas worker --help` did not finish within 120 s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).decode(errors="replace").splitlines()[-15:])
        raise SoakError(f"`lintas worker --help` exited with code {done.returncode}:\n{tail}")


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[tuple[Path, list[Deployment]]]:
    """A temporary directory for the clusters, key stores and logs, and the deployments made in it:
    every one is stopped and the directory removed on the way out, however the run ends."""
    root = Path(tempfile.mkdtemp(prefix="lintas-soak-"))
    deployments: list[Deployment] = []
    try:
        yield root, deployments
    finally:
        for dep in reversed(deployments):
            try:
                dep.stop()
            except Exception as exc:  # the others and the directory still go
                print(f"soak: stopping {dep.label}: {exc!r}", file=sys.stderr)
        if keep:
            print(f"logs and clusters' data kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=None, help="soak duration (default 30; --quick 2)")
    parser.add_argument(
        "--window-minutes", type=float, default=None, help="window length (default 5; --quick 1)"
    )
    parser.add_argument("--workers", type=int, default=2, help="lintas worker processes")
    parser.add_argument(
        "--probe-events", type=int, default=None, help="events of each max-rate probe (default 10000)"
    )
    parser.add_argument(
        "--warmup-events", type=int, default=None, help="uncounted, on each cluster before the probes"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="probes on each cluster, interleaved (default 3; --quick 2)"
    )
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="a 2-minute soak in 1-minute windows after a small probe"
    )
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the temporary directory (logs, data) at the end"
    )
    args = parser.parse_args()
    quick = args.quick
    args.minutes = args.minutes if args.minutes is not None else (2.0 if quick else 30.0)
    args.window_minutes = args.window_minutes if args.window_minutes is not None else (1.0 if quick else 5.0)
    args.probe_events = args.probe_events if args.probe_events is not None else (3000 if quick else 10_000)
    args.warmup_events = args.warmup_events if args.warmup_events is not None else (300 if quick else 1000)
    args.rounds = args.rounds if args.rounds is not None else (2 if quick else 3)
    if args.minutes <= 0 or args.window_minutes <= 0:
        parser.error("--minutes and --window-minutes must be positive")
    if min(args.workers, args.probe_events, args.warmup_events, args.rounds) < 1:
        parser.error("--workers, --probe-events, --warmup-events and --rounds must be at least 1")
    # SIGTERM ends the run like Ctrl-C: workers and clusters are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    configure_logging(level=logging.WARNING)  # the national systems here log every data key at info
    failure: str | None = None
    figures: dict[str, Any] = {}
    try:
        preflight()
        with workspace(args.keep_logs) as (root, deployments):
            try:
                figures = run(args, root, deployments)
            except (SoakError, KafkaException) as exc:
                failure = str(exc)
                for dep in deployments:
                    if dep.workers is not None and not dep.workers.exit_codes:
                        print(f"--- {dep.label} workers:\n{dep.workers.tails()}", file=sys.stderr)
    except SoakError as exc:
        failure = str(exc)
    except KeyboardInterrupt:
        print("soak: interrupted; workers and clusters stopped", file=sys.stderr)
        sys.exit(130)
    if failure is not None:
        print(f"soak benchmark failed: {failure}", file=sys.stderr)
        sys.exit(1)
    report(figures)


if __name__ == "__main__":
    main()
