"""Stream workers as child processes, as an operator runs them, and what tests read back."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from hub.agreements import load_agreements
from hub.codec import Codec
from hub.crypto.keystore import EmbeddedKeyStore
from hub.crypto.signing import demo_signer, load_key_directory
from hub.events import Event
from hub.headers import header_map
from hub.kafka import read_all
from hub.routing import Router
from hub.topics import focal_inbox, nrm_receipts
from hub.wire.codec import HUB_SIGNER, Wire
from hub.wire.national import NationalSystems


def key_store_path(directory: Path) -> Path:
    """The key store of the cases' data keys of a test whose files are under ``directory``."""
    return directory / "keys.sqlite"


def national_systems(directory: Path, codec: Codec | None = None) -> NationalSystems:
    """Every country's national system, writing contract v2 with the published demo keys and the
    key store the test's workers use."""
    codec = codec or Codec()
    keys = EmbeddedKeyStore(key_store_path(directory))
    return NationalSystems(Wire(codec, directory=load_key_directory(), keys=keys), keys)


class Preencoded:
    """Events written once by their national systems, before anything runs: publishing them again
    gives the same bytes, and a case shredded during the run does not stop the test writing them."""

    def __init__(self, systems: NationalSystems, events: Iterable[Event]) -> None:
        self.systems = systems
        self.table = {str(event.envelope.event_id): systems.encode(event) for event in events}

    def encode(self, event: Event) -> bytes:
        return self.table[str(event.envelope.event_id)]


def v2_router(systems: NationalSystems) -> Router:
    """The router the workers run (``lintas worker``), for computing what they should decide; its
    key-store effects are not carried out."""
    return Router(
        systems.wire.codec, load_agreements(), wire=systems.wire, hub_signer=demo_signer(HUB_SIGNER)
    )


class Worker:
    """``lintas worker`` (or ``lintas alerts``) as a child process."""

    def __init__(
        self,
        bootstrap: str,
        log_dir: Path,
        *,
        instance: str = "t",
        command: Sequence[str] = ("worker",),
        countries: Sequence[str] = (),
        partitions: int = 6,
        env: dict[str, str] | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.log_dir = log_dir
        self.instance = instance
        self.command = list(command)
        self.countries = list(countries)
        self.partitions = partitions
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {
            **os.environ,
            "LINTAS_LOG_FORMAT": "json",
            "LINTAS_TOPICS__PARTITIONS": str(self.partitions),
            # The national systems of the test (national_systems) share this key store with the hub.
            "LINTAS_KEYS__STORE": str(key_store_path(self.log_dir)),
            **self.env,
        }
        if self.countries:
            env["LINTAS_TOPICS__COUNTRIES"] = "[" + ",".join(f'"{c}"' for c in self.countries) + "]"
        log = (self.log_dir / f"{self.command[0]}-{self.instance}-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub.cli",
                *self.command,
                "-b",
                self.bootstrap,
                "--instance",
                self.instance,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def send(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` and wait for the process to end."""
        self.send(sig)
        assert self.process is not None
        self.process.wait(timeout=60)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.log_dir.glob(f"{self.command[0]}-{self.instance}-*.log"))
        )


def stop_all(workers: Sequence[Worker]) -> None:
    for worker in workers:
        if worker.alive():
            worker.send(signal.SIGCONT)
            worker.send(signal.SIGTERM)
    for worker in workers:
        if worker.process is not None:
            try:
                worker.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(timeout=10)


def assert_delivered_once(inbox: Sequence[Any], receipts: Sequence[Any]) -> None:
    """Every accepted event is in the inbox of each country its receipt names (the addressee, and
    any transit country), exactly once, and nothing else is in the inboxes."""
    expected = Counter(
        (focal_inbox(country.value), str(receipt.event_id))
        for receipt in receipts
        for country in receipt.routed_to
    )
    delivered = Counter((record.topic, header_map(record.headers)["ce_id"].decode()) for record in inbox)
    assert set(delivered) == set(expected), (
        "exactly the accepted events reach the inboxes they were routed to"
    )
    assert max(delivered.values(), default=1) == 1, "and each exactly once"


def receipts_so_far(bootstrap: str, codec: Codec, countries: Sequence[str]) -> list[Any]:
    records = asyncio.run(read_all(bootstrap, [nrm_receipts(c) for c in countries], within=120))
    return [(record, codec.decode_receipt(record.value)) for record in records]


def committed_total(bootstrap: str, group: str, partitions: Sequence[TopicPartition]) -> int:
    """The sum of the group's committed offsets over ``partitions`` (0 where none is committed)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "isolation.level": "read_committed"}
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                committed = consumer.committed(list(partitions), timeout=30)
                break
            except KafkaException:  # a fresh broker's group coordinator may still be loading
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()
    return sum(max(0, tp.offset) for tp in committed)


def wait_until_committed(
    bootstrap: str,
    group: str,
    partitions: Sequence[TopicPartition],
    target: int,
    workers: Sequence[Worker],
    within: float,
) -> int:
    """Wait until the group has committed ``target`` offsets in all; fails with the workers' logs."""
    deadline = time.monotonic() + within
    while True:
        done = committed_total(bootstrap, group, partitions)
        if done >= target:
            return done
        if time.monotonic() > deadline:
            logs = "\n".join(worker.logs() for worker in workers)
            pytest.fail(f"only {done} of {target} offsets committed after {within} s\n{logs}")
        time.sleep(0.1)
