"""A real Apache Kafka (KRaft, combined broker+controller nodes) on loopback, without Docker.

Used by the test suite and the demo. ``provision()`` resolves the broker's jars once with Maven into
a cache directory; ``LocalBroker`` formats, starts, probes, stops and restarts one node whose state
(config, data, logs, ``broker.json``) lives in its ``home`` directory; ``LocalCluster`` runs several
as one cluster (three for a cluster that survives the loss of one).

Secured by default (``security="sasl_ssl"``): clients authenticate with SCRAM-SHA-512 over TLS,
against a certificate authority generated in ``home/tls``; the passwords are in ``home/secrets``
(see ``hub.broker.config`` for the listeners and ``hub.security`` for the ACLs). ``"plaintext"``
exists for the test suite's shared broker only.

Linux only: process ownership is checked through ``/proc``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hub.broker.config import OPERATOR, SCRAM_MECHANISM, NodeAddress, NodeConfig, Security, server_properties
from hub.broker.secrets import CredentialStore
from hub.broker.tls import CertificateAuthority, client_context, node_principal
from hub.errors import BrokerError

__all__ = [
    "KAFKA_VERSION",
    "BrokerError",
    "BrokerStatus",
    "LocalBroker",
    "LocalCluster",
    "default_cache_dir",
    "new_cluster_id",
    "provision",
]

KAFKA_VERSION = "3.9.1"

_POM = Path(__file__).parent / "kafka_runtime" / "pom.xml"
_MARKER = ".lintas-provisioned"
_HOST = "127.0.0.1"
_LOG_TAIL_LINES = 40
_BIND_ERROR = "Address already in use"
_MVN_TIMEOUT_S = 900.0
_FORMAT_TIMEOUT_S = 120.0
# Bind races (another process grabs a port we picked) are rare; a few fresh tries are plenty.
_START_ATTEMPTS = 5

_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------
# Provisioning
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$LINTAS_CACHE_DIR`` if set, else ``~/.cache/lintas``."""
    env = os.environ.get("LINTAS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lintas"


def provision(cache_dir: Path | None = None, *, version: str = KAFKA_VERSION) -> Path:
    """Resolve the jars of Kafka ``version`` into the cache and return the ``libs`` directory.

    A no-op when a previous call completed (a marker file is written last). Needs ``mvn`` and
    ``java`` on PATH; Maven downloads into ``~/.m2`` on the first run.
    """
    root = (cache_dir if cache_dir is not None else default_cache_dir()).expanduser().resolve()
    base = root / f"kafka-{version}"
    libs = base / "libs"
    if _provisioned(libs, version):
        return libs
    _java()  # fail now rather than at start(): the jars are useless without a JVM
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("mvn not found on PATH: install Maven to provision the local Kafka broker")
    base.mkdir(parents=True, exist_ok=True)
    # Serialise concurrent provisioning (parallel test workers share the cache).
    with _locked(base / ".lock"):
        if _provisioned(libs, version):
            return libs
        # Copy the pom out of the package: Maven may write next to it and site-packages can be
        # read-only.
        pom = base / "pom.xml"
        shutil.copyfile(_POM, pom)
        staging = base / "libs.partial"
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        _run_tool(cmd, what=f"mvn resolving Kafka {version}", timeout=_MVN_TIMEOUT_S, cwd=base)
        if not (staging / f"kafka_2.13-{version}.jar").is_file():
            raise BrokerError(f"mvn succeeded but kafka_2.13-{version}.jar is missing from {staging}")
        # Swap the complete set in, so a crash mid-copy never leaves a half-filled libs dir.
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        (libs / _MARKER).write_text(version + "\n", encoding="utf-8")
    return libs


def _provisioned(libs: Path, version: str) -> bool:
    marker = libs / _MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == version


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    java = shutil.which("java")
    if java is None:
        raise BrokerError("java not found on PATH (or JAVA_HOME): install a JDK 11+ to run Kafka")
    return java


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# Broker
# --------------------------------------------------------------------------------------------


def new_cluster_id() -> str:
    """A random cluster id in Kafka's ``Uuid`` text form: base64url of 16 bytes, no padding."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        # Kafka itself never hands out ids starting with "-": they read as CLI flags.
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class BrokerStatus:
    """What ``broker.json`` records, and whether that process is still running."""

    pid: int
    bootstrap: str
    alive: bool


@dataclass(frozen=True)
class _State:
    pid: int
    port: int
    controller_port: int
    cluster_id: str
    version: str
    internal_port: int = 0

    @property
    def bootstrap(self) -> str:
        return f"{_HOST}:{self.port}"

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.port, self.internal_port, self.controller_port)


@dataclass(frozen=True)
class _Plan:
    """What the nodes of one cluster share: its id and every node's ports."""

    cluster_id: str
    voters: tuple[NodeAddress, ...]

    def node(self, node_id: int) -> NodeAddress:
        return next(voter for voter in self.voters if voter.node_id == node_id)


class _BindFailedError(Exception):
    """The JVM exited because a port was taken between picking it and binding it."""


@dataclass
class LocalBroker:
    """One local node rooted at ``home``. ``libs`` defaults to ``provision()``'s result.

    ``users`` are the SCRAM principals created when the storage is formatted, besides the operator;
    their passwords are made on first use and kept in ``secrets``. In a :class:`LocalCluster`, the
    CA and the passwords are the cluster's (``shared``), and the ports come from its plan.
    """

    home: Path
    libs: Path | None = None
    version: str = KAFKA_VERSION
    security: Security = "sasl_ssl"
    users: tuple[str, ...] = ()
    node_id: int = 1
    shared: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False, compare=False)
    _plan: _Plan | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.home = Path(self.home).expanduser().resolve()
        self.shared = Path(self.shared).expanduser().resolve() if self.shared is not None else self.home

    # -- paths ---------------------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def log_file(self) -> Path:
        """The JVM's stdout/stderr (warnings and errors); full INFO logs go to ``server.log``."""
        return self.home / "broker.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def ca_file(self) -> Path:
        """The certificate clients trust (PEM)."""
        return self._ca.cert_file

    @property
    def secrets(self) -> CredentialStore:
        """The principals' passwords."""
        assert self.shared is not None
        return CredentialStore(self.shared / "secrets")

    @property
    def _ca(self) -> CertificateAuthority:
        assert self.shared is not None
        return CertificateAuthority(self.shared / "tls")

    @property
    def _keystore(self) -> Path:
        return self.home / "tls" / "node.pem"

    @property
    def _server_properties(self) -> Path:
        return self.home / "server.properties"

    @property
    def _log4j_properties(self) -> Path:
        return self.home / "log4j.properties"

    # -- clients -------------------------------------------------------------------------------

    def client_options(self, user: str = OPERATOR) -> dict[str, Any]:
        """aiokafka connection options (``hub.kafka.client_options``' form) for ``user``."""
        return _client_options(self.security, self.ca_file, user, self.secrets)

    def rdkafka_config(self, user: str = OPERATOR) -> dict[str, Any]:
        """librdkafka connection settings for ``user`` (no ``bootstrap.servers``)."""
        return _rdkafka_config(self.security, self.ca_file, user, self.secrets)

    # -- public API ----------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> str:
        """Start the broker (or reuse the one already running from ``home``); return its bootstrap.

        ``timeout`` bounds the wait for the broker to answer a metadata request; provisioning
        and formatting are not counted.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        with _locked(self.home / ".lock"):
            state = self._read_state()
            if state is not None and self._pid_is_ours(state.pid):
                self._wait_ready(state, None, time.monotonic() + timeout)
                return state.bootstrap
            ports = None
            if state is not None and state.internal_port and _ports_free(*state.ports):
                # Keep the address stable across stop()/start() when we can.
                ports = state.ports
            return self._launch(ports, timeout, fixed_ports=False)

    def stop(self, timeout: float = 30) -> bool:
        """SIGTERM the broker recorded in ``broker.json`` (SIGKILL after ``timeout``).

        Only a process whose command line is this home's ``kafka.Kafka`` is signalled; returns
        whether one was stopped.
        """
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> bool:
        """SIGKILL the broker, as a crash would; returns whether one was killed."""
        return self._signal(signal.SIGKILL, 0)

    def pause(self) -> bool:
        """SIGSTOP the broker (a hung machine); ``resume()`` continues it."""
        return self._signal(signal.SIGSTOP, 0, wait=False)

    def resume(self) -> bool:
        return self._signal(signal.SIGCONT, 0, wait=False)

    def restart(self, timeout: float = 60, *, hard: bool = False) -> str:
        """Stop (``hard``: SIGKILL), then start on the same ports and data without reformatting."""
        state = self._read_state()
        if state is None:
            raise BrokerError(f"cannot restart: no broker has been started in {self.home}")
        if hard:
            self.kill()
        else:
            self.stop()
        with _locked(self.home / ".lock"):
            return self._launch(state.ports, timeout, fixed_ports=True)

    def status(self) -> BrokerStatus | None:
        """The recorded broker, or ``None`` if none was ever started from ``home``."""
        state = self._read_state()
        if state is None:
            return None
        return BrokerStatus(state.pid, state.bootstrap, self._pid_is_ours(state.pid))

    @property
    def pid(self) -> int | None:
        state = self._read_state()
        return state.pid if state is not None and self._pid_is_ours(state.pid) else None

    # -- launching -----------------------------------------------------------------------------

    def _launch(self, ports: tuple[int, int, int] | None, timeout: float, *, fixed_ports: bool) -> str:
        deadline: float | None = None
        last_error = ""
        for _ in range(_START_ATTEMPTS):
            proc, state = self._spawn_node(ports if ports is not None else tuple(_free_ports(3)))  # type: ignore[arg-type]
            if deadline is None:
                deadline = time.monotonic() + timeout
            try:
                self._wait_ready(state, proc, deadline)
            except _BindFailedError as exc:
                last_error = str(exc)
                if fixed_ports or self._plan is not None:
                    # Same ports are required: give the other holder (often our own previous
                    # JVM's socket) a moment, then try again.
                    if time.monotonic() + 1 > deadline:
                        break
                    time.sleep(0.5)
                else:
                    ports = None
                continue
            return state.bootstrap
        raise BrokerError(f"Kafka could not bind its ports in {self.home}: {last_error}")

    def _spawn_node(self, ports: tuple[int, int, int]) -> tuple[subprocess.Popen[bytes], _State]:
        """Write the configuration, format the storage if it is new, and start the JVM."""
        libs = self.libs if self.libs is not None else provision(version=self.version)
        if not (libs / f"kafka_2.13-{self.version}.jar").is_file():
            raise BrokerError(f"no kafka_2.13-{self.version}.jar in {libs}: run provision() first")
        java = _java()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_log4j()
        if self._plan is not None:
            me = self._plan.node(self.node_id)
            ports = (me.client_port, me.internal_port, me.controller_port)
        cluster_id = (
            self._existing_cluster_id()
            or (self._plan.cluster_id if self._plan is not None else None)
            or new_cluster_id()
        )
        if self.security == "sasl_ssl":
            self._ensure_tls()
        self._write_server_properties(*ports)
        if self._existing_cluster_id() is None:
            self._format(java, libs, cluster_id)
        proc = self._spawn(java, libs)
        state = _State(proc.pid, ports[0], ports[2], cluster_id, self.version, internal_port=ports[1])
        self._write_state(state)
        return proc, state

    def _ensure_tls(self) -> None:
        ca = CertificateAuthority.ensure(self._ca.directory)
        if not self._keystore.is_file():
            ca.issue(self._keystore, node_principal(self.node_id), [_HOST, "localhost"])

    def _spawn(self, java: str, libs: Path) -> subprocess.Popen[bytes]:
        cmd = [
            java,
            "-Xms128m",
            "-Xmx512m",
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self._log4j_properties}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self._server_properties),
        ]
        with self.log_file.open("ab") as log:
            # Own session: Ctrl-C in the terminal that started the tests must not reach the
            # broker half-way, and stop() decides when it ends.
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self._proc

    def _format(self, java: str, libs: Path, cluster_id: str) -> None:
        scram = (self.secrets, (OPERATOR, *self.users)) if self.security == "sasl_ssl" else None
        format_storage(
            java,
            libs,
            cluster_id,
            properties=self._server_properties,
            log4j=self._log4j_properties,
            data_dir=self.data_dir,
            scram=scram,
            cwd=self.home,
        )

    def _wait_ready(self, state: _State, proc: subprocess.Popen[bytes] | None, deadline: float) -> None:
        """Block until the broker answers metadata, its JVM exits, or ``deadline`` passes."""
        while True:
            rc = proc.poll() if proc is not None else None
            if rc is not None or (proc is None and not self._pid_is_ours(state.pid)):
                tail = _tail_file(self.log_file)
                if _BIND_ERROR in tail:
                    raise _BindFailedError(tail)
                code = f"code {rc}" if rc is not None else "unknown code"
                raise BrokerError(f"java exited with {code} ({self.home}): {tail}")
            remaining = deadline - time.monotonic()
            if _port_open(state.port) and self._answers(state.bootstrap, min(5.0, remaining)):
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        tail = _tail_file(self.log_file)
        if proc is not None:
            # A JVM we started that never became usable is only in the way: end it.
            self._signal(signal.SIGKILL, 0)
        raise BrokerError(
            f"Kafka at {state.bootstrap} (pid {state.pid}) did not answer a metadata request in time: {tail}"
        )

    def _answers(self, bootstrap: str, timeout: float) -> bool:
        """This node answers metadata and lists itself: registered and unfenced, i.e. usable."""
        options = self.client_options() if self.security == "sasl_ssl" else {}
        return _answers_metadata(bootstrap, timeout, self.node_id, options)

    # -- signals -------------------------------------------------------------------------------

    def _signal(self, sig: signal.Signals, timeout: float, *, wait: bool = True) -> bool:
        state = self._read_state()
        if state is None:
            return False
        pid = state.pid
        try:
            # A pidfd pins the process: if the pid is recycled after this point, signalling
            # fails instead of hitting a stranger.
            pidfd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            self._reap(pid)
            return False
        try:
            if not self._pid_is_ours(pid):
                return False
            try:
                signal.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                self._reap(pid)
                return False
            if not wait:
                return True
            if sig == signal.SIGTERM:
                # A stopped JVM never handles SIGTERM.
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGCONT)
            if not self._wait_gone(pid, timeout) and sig != signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            if not self._wait_gone(pid, 10):
                raise BrokerError(f"Kafka pid {pid} in {self.home} survived SIGKILL")
            return True
        finally:
            os.close(pidfd)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._is_child(pid):
                if self._reap(pid):
                    return True
            elif not _pid_running(pid):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def _is_child(self, pid: int) -> bool:
        return self._proc is not None and self._proc.pid == pid

    def _reap(self, pid: int) -> bool:
        """Wait for our own child if it has exited (it stays a zombie in /proc until then)."""
        if self._proc is not None and self._proc.pid == pid and self._proc.poll() is not None:
            self._proc = None
            return True
        return False

    def _pid_is_ours(self, pid: int) -> bool:
        """True only for a live ``kafka.Kafka`` JVM started with this home's server.properties."""
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        args = [a.decode(errors="replace") for a in raw.split(b"\0")]
        return "kafka.Kafka" in args and str(self._server_properties) in args

    # -- files ---------------------------------------------------------------------------------

    def _read_state(self) -> _State | None:
        try:
            raw = json.loads(self.state_file.read_text(encoding="utf-8"))
            return _State(
                pid=int(raw["pid"]),
                port=int(raw["port"]),
                controller_port=int(raw["controller_port"]),
                cluster_id=str(raw["cluster_id"]),
                version=str(raw["version"]),
                internal_port=int(raw.get("internal_port", 0)),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BrokerError(f"unreadable broker state {self.state_file}: {exc}") from exc

    def _write_state(self, state: _State) -> None:
        payload = {
            "pid": state.pid,
            "port": state.port,
            "controller_port": state.controller_port,
            "cluster_id": state.cluster_id,
            "version": state.version,
            "internal_port": state.internal_port,
        }
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        tmp.replace(self.state_file)

    def _existing_cluster_id(self) -> str | None:
        meta = self.data_dir / "meta.properties"
        if not meta.is_file():
            return None
        for line in meta.read_text(encoding="utf-8").splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "cluster.id":
                return value.strip()
        raise BrokerError(f"{meta} has no cluster.id: delete {self.data_dir} to reformat")

    def _write_server_properties(self, port: int, internal_port: int, controller_port: int) -> None:
        me = NodeAddress(self.node_id, _HOST, port, internal_port, controller_port)
        voters = self._plan.voters if self._plan is not None else (me,)
        secure = self.security == "sasl_ssl"
        props = server_properties(
            NodeConfig(
                node=me,
                voters=voters,
                data_dir=self.data_dir,
                security=self.security,
                keystore=self._keystore if secure else None,
                truststore=self.ca_file if secure else None,
            )
        )
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        self._server_properties.write_text(text, encoding="utf-8")

    def _write_log4j(self) -> None:
        # INFO to a rolling file for post-mortems; WARN and above also to stdout (broker.log),
        # where start() looks for the reason of a failed start.
        text = (
            "log4j.rootLogger=INFO, file, stdout\n"
            "log4j.appender.file=org.apache.log4j.RollingFileAppender\n"
            f"log4j.appender.file.File={self.home / 'server.log'}\n"
            "log4j.appender.file.MaxFileSize=10MB\n"
            "log4j.appender.file.MaxBackupIndex=2\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.Threshold=WARN\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        self._log4j_properties.write_text(text, encoding="utf-8")


@dataclass
class LocalCluster:
    """``nodes`` local combined broker + controller nodes under ``home/node-<id>``, one KRaft quorum.

    The plan (cluster id and every node's ports) is kept in ``home/cluster.json``, so that restarts
    keep the addresses the nodes know each other by. With three nodes, topics get three replicas and
    ``min.insync.replicas=2``: one node may be lost without losing an acknowledged write.
    """

    home: Path
    libs: Path | None = None
    nodes: int = 3
    version: str = KAFKA_VERSION
    security: Security = "sasl_ssl"
    users: tuple[str, ...] = ()
    members: list[LocalBroker] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.nodes < 1:
            raise BrokerError(f"a cluster needs at least one node, not {self.nodes}")
        self.home = Path(self.home).expanduser().resolve()
        self.members = [
            LocalBroker(
                self.home / f"node-{node_id}",
                self.libs,
                version=self.version,
                security=self.security,
                users=self.users,
                node_id=node_id,
                shared=self.home,
            )
            for node_id in range(1, self.nodes + 1)
        ]

    @property
    def plan_file(self) -> Path:
        return self.home / "cluster.json"

    @property
    def ca_file(self) -> Path:
        return self.members[0].ca_file

    @property
    def secrets(self) -> CredentialStore:
        return self.members[0].secrets

    @property
    def bootstrap(self) -> str:
        plan = self._plan()
        return ",".join(f"{_HOST}:{voter.client_port}" for voter in plan.voters)

    def node(self, node_id: int) -> LocalBroker:
        return self.members[node_id - 1]

    def client_options(self, user: str = OPERATOR) -> dict[str, Any]:
        return self.members[0].client_options(user)

    def rdkafka_config(self, user: str = OPERATOR) -> dict[str, Any]:
        return self.members[0].rdkafka_config(user)

    def start(self, timeout: float = 90) -> str:
        """Start every node that is not running, together (a quorum needs a majority before any
        node is usable), and wait until each lists itself; returns the bootstrap of all nodes."""
        self.home.mkdir(parents=True, exist_ok=True)
        with _locked(self.home / ".lock"):
            plan = self._plan()
            for member in self.members:
                member._plan = plan
            started: list[tuple[LocalBroker, subprocess.Popen[bytes] | None, _State]] = []
            for member in self.members:
                state = member._read_state()
                if state is not None and member._pid_is_ours(state.pid):
                    started.append((member, None, state))
                    continue
                spawned, state = member._spawn_node(_PLACEHOLDER_PORTS)
                started.append((member, spawned, state))
            deadline = time.monotonic() + timeout
            try:
                for member, proc, ready in started:
                    member._wait_ready(ready, proc, deadline)
            except BaseException:
                for member in self.members:
                    member.kill()
                raise
        return self.bootstrap

    def stop(self, timeout: float = 30) -> int:
        """Stop every node at once; returns how many were running. One after another, the last
        nodes would wait out ``timeout`` for a quorum that the first ones took with them."""
        with concurrent.futures.ThreadPoolExecutor(len(self.members)) as pool:
            return sum(pool.map(lambda member: member.stop(timeout), self.members))

    def restart(self, node_id: int, timeout: float = 90, *, hard: bool = False) -> str:
        member = self.node(node_id)
        member._plan = self._plan()
        return member.restart(timeout, hard=hard)

    def _plan(self) -> _Plan:
        try:
            raw = json.loads(self.plan_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = None
        except (OSError, ValueError) as exc:
            raise BrokerError(f"unreadable cluster plan {self.plan_file}: {exc}") from exc
        if raw is not None:
            try:
                voters = tuple(NodeAddress(**voter) for voter in raw["voters"])
                plan = _Plan(str(raw["cluster_id"]), voters)
            except (KeyError, TypeError) as exc:
                raise BrokerError(f"unreadable cluster plan {self.plan_file}: {exc}") from exc
            if len(plan.voters) != self.nodes:
                raise BrokerError(
                    f"{self.home} holds a cluster of {len(plan.voters)} nodes, not {self.nodes}: "
                    "delete it to make a new one"
                )
            return plan
        ports = _free_ports(3 * self.nodes)
        voters = tuple(
            NodeAddress(node_id, _HOST, *ports[3 * (node_id - 1) : 3 * node_id])
            for node_id in range(1, self.nodes + 1)
        )
        plan = _Plan(new_cluster_id(), voters)
        payload = {"cluster_id": plan.cluster_id, "voters": [voter.__dict__ for voter in voters]}
        self.plan_file.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        return plan


#: Ports are the plan's for cluster members; this only fills the argument.
_PLACEHOLDER_PORTS = (0, 0, 0)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open together so the kernel cannot hand out the same port twice.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind((_HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _ports_free(*ports: int) -> bool:
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((_HOST, port))
            except OSError:
                return False
    return True


def _port_open(port: int) -> bool:
    # Cheap pre-check: spares aiokafka from logging connection errors while the JVM boots.
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid_running(pid: int) -> bool:
    """True unless ``pid`` is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X", "")


def _answers_metadata(bootstrap: str, timeout: float, node_id: int, options: dict[str, Any]) -> bool:
    if timeout <= 0:
        return False
    try:
        return _run(_probe_metadata(bootstrap, timeout, node_id, options))
    except Exception:
        return False


async def _probe_metadata(bootstrap: str, limit_s: float, node_id: int, options: dict[str, Any]) -> bool:
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap, request_timeout_ms=max(1, int(limit_s * 1000)), **options
    )
    try:
        await asyncio.wait_for(client.bootstrap(), limit_s)
        # A broker is listed only once it is registered and unfenced, i.e. usable.
        return node_id in {broker.nodeId for broker in client.cluster.brokers()}
    finally:
        await asyncio.wait_for(client.close(), limit_s)


def _client_options(security: Security, ca_file: Path, user: str, store: CredentialStore) -> dict[str, Any]:
    if security == "plaintext":
        return {"security_protocol": "PLAINTEXT"}
    return {
        "security_protocol": "SASL_SSL",
        "ssl_context": client_context(ca_file),
        "sasl_mechanism": SCRAM_MECHANISM,
        "sasl_plain_username": user,
        "sasl_plain_password": store.require(user),
    }


def _rdkafka_config(security: Security, ca_file: Path, user: str, store: CredentialStore) -> dict[str, Any]:
    if security == "plaintext":
        return {"security.protocol": "PLAINTEXT"}
    return {
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(ca_file),
        "sasl.mechanism": SCRAM_MECHANISM,
        "sasl.username": user,
        "sasl.password": store.require(user),
    }


def scram_format_args(store: CredentialStore, users: Iterable[str]) -> list[str]:
    """``kafka-storage format`` arguments creating each user's SCRAM credential (passwords made on
    first use): the principals exist from the cluster's first moment."""
    args: list[str] = []
    for user in dict.fromkeys(users):
        password = store.ensure(user)
        args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
    return args


def format_storage(
    java: str,
    libs: Path,
    cluster_id: str,
    *,
    properties: Path,
    log4j: Path,
    data_dir: Path,
    scram: tuple[CredentialStore, Iterable[str]] | None,
    cwd: Path | None = None,
) -> None:
    """``kafka-storage format`` of a node's KRaft storage, with the SCRAM credentials of
    ``scram``'s users when given; a failure is reported with the tool's output, passwords
    redacted (the tool may echo its arguments)."""
    cmd = [
        java,
        f"-Dlog4j.configuration=file:{log4j}",
        "-cp",
        f"{libs}/*",
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(properties),
    ]
    if scram is not None:
        cmd += scram_format_args(*scram)
    _run_tool(
        cmd,
        what=f"kafka StorageTool format of {data_dir}",
        timeout=_FORMAT_TIMEOUT_S,
        cwd=cwd,
        redact=scram[0] if scram is not None else None,
    )


def _run_tool(
    cmd: list[str], *, what: str, timeout: float, cwd: Path | None, redact: CredentialStore | None = None
) -> None:
    """Run a tool to completion within ``timeout``; a failure is a BrokerError with the end of
    its output, with ``redact``'s passwords replaced (a tool may echo its arguments)."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"{what} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        out = _tail_text(proc.stdout + proc.stderr)
        if redact is not None:
            out = _redact(out, redact)
        raise BrokerError(f"{what} failed (exit {proc.returncode}): {out}")


def _redact(text: str, store: CredentialStore) -> str:
    for user in store.users():
        password = store.get(user)
        if password:
            text = text.replace(password, "***")
    return text


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` in a fresh loop, on a helper thread if this thread already runs one."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _tail_file(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return _tail_text(text, lines)


def _tail_text(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    tail = text.strip().splitlines()[-lines:]
    return "\n".join(tail) if tail else "(no output)"
