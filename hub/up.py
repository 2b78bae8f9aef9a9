"""``lintas up``: the whole hub on one machine, in one command.

Starts (or finds) the embedded broker, issues demo credentials, and runs the router, the alert feed,
the API with its read-store projector and dashboard, the simulation and a periodic publication of the
regional statistics as child processes that share one simulated clock. Ctrl-C (or SIGTERM) stops them
in the reverse order, then the broker if this command started it.

Every child runs in its own process group: Ctrl-C in the terminal reaches ``up`` only, which decides
the order in which the others end. What ``up`` leaves behind is under ``<state>/up``: the logs of each
child, their health files, the demo logins (mode 0600), the pids it started and the simulated time it
stopped at, so that the next ``lintas up`` carries on from there.

Linux only, like the embedded broker: orphans of an earlier run are found through ``/proc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from connectors.api.credentials import Credentials, Role
from hub.agreements import Directory, load_directory
from hub.clock import ClockSettings, clock_env, make_clock, simulated
from hub.errors import ConfigError, LintasError
from hub.logging import configure_logging
from hub.options import BootstrapOption
from hub.settings import Settings
from hub.simulation.plan import DOORS, Door

if TYPE_CHECKING:
    from hub.cli import LocalKafka

#: The countries whose focal points get a demo login: those of the shipped corridors' simulation.
DEMO_COUNTRIES = ("TH", "MM", "KH", "LA", "VN", "MY", "ID", "PH", "CN", "JP")
#: A regional or operator credential still names a country: the ASEAN Secretariat's (Jakarta),
#: and for the demo's operator that of the first corridors' host.
REGIONAL_COUNTRY = "ID"
OPERATOR_COUNTRY = "TH"
#: Every credential this command issues is labelled so; the next run revokes the earlier ones.
DEMO_LABEL = "lintas up"

STOP_WAIT_S = 15.0
SESSION_TIMEOUT_MS = 10_000
HEALTH_TIMEOUT_S = 180.0
TAIL_LINES = 15
CLOCK_SAVE_EVERY_S = 10.0
POLL_S = 0.25


class HubNotStarted(LintasError):
    """A service of the hub did not come up in time (a busy machine may do better next time)."""

    retriable = True


# The name of the variable that marks a child as ours in /proc/<pid>/environ.
_MARK = "LINTAS_PROCESSOR__STATUS_DIR"
#: Settings of the children that a command joining by hand keeps its own: its logs, its health file.
_OWN = frozenset({_MARK, "LINTAS_LOG_FORMAT"})


# -- where things go ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """The files of one ``lintas up`` under the state directory."""

    state: Path

    @property
    def up(self) -> Path:
        return self.state / "up"

    @property
    def logs(self) -> Path:
        return self.up / "logs"

    @property
    def health(self) -> Path:
        return self.up / "health"

    @property
    def logins(self) -> Path:
        return self.up / "logins.json"

    @property
    def pids(self) -> Path:
        return self.up / "pids.json"

    @property
    def clock(self) -> Path:
        return self.up / "clock.json"

    @property
    def lock(self) -> Path:
        return self.up / "up.lock"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


def apply_state_dir(settings: Settings, state: Path, environ: Mapping[str, str]) -> None:
    """Put the broker, the read store and the key store under ``state``, except where the
    environment names them explicitly."""
    if "LINTAS_BROKER__HOME" not in environ:
        settings.broker.home = state / "broker"
    if "LINTAS_API__STORE" not in environ:
        settings.api.store = str(state / "api" / "read.sqlite")
    if "LINTAS_KEYS__STORE" not in environ:
        settings.keys.store = str(state / "keys" / "keys.sqlite")


# -- what runs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One ``lintas`` command run as a child; ``args`` follow ``lintas``."""

    name: str
    args: tuple[str, ...]
    #: A run that may end with 0 and leave the hub running (the simulation).
    may_finish: bool = False
    #: Run again and again; how one run ends never stops the hub (a publication that finds nothing
    #: new ends with an error).
    periodic: bool = False

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "hub.cli", *self.args]


def hub_children(port: int, *, alerts_every: float = 2.0) -> list[ChildSpec]:
    """The hub's services, in the order they start (and the reverse of the order they stop)."""
    return [
        ChildSpec("router", ("worker",)),
        ChildSpec("alerts", ("alerts", "--every", f"{alerts_every:g}")),
        ChildSpec("api", ("api", "--port", str(port))),
    ]


def simulation_child(logins: Path, cases: int | None) -> ChildSpec:
    extra = ("--cases", str(cases)) if cases is not None else ()
    return ChildSpec("simulation", ("simulate", "run", "--logins", str(logins), *extra), may_finish=True)


def mass_release_child(logins: Path, people: int) -> ChildSpec:
    return ChildSpec(
        "mass-release",
        ("simulate", "mass-release", "--logins", str(logins), "--people", str(people)),
        may_finish=True,
    )


STATS_CHILD = ChildSpec("stats", ("stats", "--publish"), periodic=True)


def child_environment(
    base: Mapping[str, str],
    settings: Settings,
    layout: Layout,
    clock: ClockSettings,
    bootstrap_servers: str | None,
) -> dict[str, str]:
    """What every child gets: the same clock, stores, broker and health directory, JSON logs."""
    env = dict(base)
    env.update(clock_env(clock))
    env.update(
        {
            "LINTAS_BROKER__HOME": str(settings.broker.home),
            "LINTAS_API__STORE": settings.api.store,
            "LINTAS_KEYS__STORE": settings.keys.store,
            _MARK: str(layout.health),
            "LINTAS_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
    )
    # A worker that could not leave its group (killed, or stopped while still joining) holds up
    # its successor for a whole session: on one machine, seconds rather than the default 45.
    env.setdefault("LINTAS_PROCESSOR__SESSION_TIMEOUT_MS", str(SESSION_TIMEOUT_MS))
    if bootstrap_servers:
        env["LINTAS_BOOTSTRAP_SERVERS"] = bootstrap_servers
    return env


def resumed_clock(saved: datetime | None, now: datetime, speed: float) -> ClockSettings:
    """A clock at ``speed`` that starts from the simulated time the last run stopped at, or from
    ``now`` if that is later: time in the hub's log never runs backwards."""
    start = saved if saved is not None and saved > now else now
    return simulated(start, speed, origin=now)


# -- demo credentials --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoCredential:
    country: str
    role: Role
    agency: str | None
    label: str


def demo_credentials(directory: Directory, doors: Mapping[str, Door] = DOORS) -> list[DemoCredential]:
    """A focal point for each demo country (its first agency in the directory), a national system
    for each country whose door is the HTTP API (any agency of its country), the regional body and
    an operator."""
    wanted: list[DemoCredential] = []
    for country in DEMO_COUNTRIES:
        entry = directory.entry(country)
        agency = entry.focal_points[0].agency_id if entry is not None else None
        wanted.append(DemoCredential(country, Role.FOCAL_POINT, agency, f"{DEMO_LABEL}: focal point"))
    for country in sorted(doors):
        if doors[country] is Door.API:
            wanted.append(
                DemoCredential(country, Role.NATIONAL_SYSTEM, None, f"{DEMO_LABEL}: national system")
            )
    wanted.append(DemoCredential(REGIONAL_COUNTRY, Role.REGIONAL, None, f"{DEMO_LABEL}: regional body"))
    wanted.append(DemoCredential(OPERATOR_COUNTRY, Role.OPERATOR, None, f"{DEMO_LABEL}: operator"))
    return wanted


# -- processes ---------------------------------------------------------------------------------


class Stop:
    """SIGINT and SIGTERM: the first asks for an orderly stop; another one, a second or more later,
    to hurry (one keypress can arrive twice, from the terminal and from a wrapper such as timeout)."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signal: str | None = None
        self._first: float | None = None
        self.hurry = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = now
            self.signal = signal.Signals(signum).name
        elif now - self._first >= 1.0:
            self.hurry = True
        self.requested.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Stop]:
        previous = {sig: signal.signal(sig, self) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes]
    log: Path
    #: Where this run's lines start in a log that earlier runs appended to.
    log_offset: int
    stopping: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        try:
            with self.log.open("rb") as stream:
                stream.seek(self.log_offset)
                text = stream.read().decode(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]

    def stop(self, wait: float, stop: Stop) -> int:
        """SIGTERM the child's process group, SIGKILL it after ``wait`` seconds (at once when asked
        to hurry); returns the exit code."""
        self.stopping = True
        if self.process.poll() is None:
            self._signal_group(signal.SIGKILL if stop.hurry else signal.SIGTERM)
            deadline = time.monotonic() + wait
            while self.process.poll() is None and time.monotonic() < deadline and not stop.hurry:
                time.sleep(0.05)
            if self.process.poll() is None:
                self._signal_group(signal.SIGKILL)
        code = self.process.wait()
        # Whatever it started in its group goes with it.
        self._signal_group(signal.SIGKILL)
        return code

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)


class Supervisor:
    """Starts children with one environment, records their pids, stops them in reverse order."""

    def __init__(self, layout: Layout, env: Mapping[str, str], console: Console) -> None:
        self.layout = layout
        self.env = dict(env)
        self.console = console
        self.children: list[Child] = []
        self.broker_pids: list[int] = []

    def start(self, spec: ChildSpec) -> Child:
        path = self.layout.log(spec.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as log:
            log.write(f"--- lintas up: {' '.join(spec.args)} at {datetime.now(UTC).isoformat()}\n".encode())
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                spec.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                # Its own group: Ctrl-C in the terminal must reach only ``up``, which stops the rest in order.
                process_group=0,
            )
        child = Child(spec, process, path, offset)
        self.children.append(child)
        self.write_pids()
        return child

    def write_pids(self) -> None:
        body = {
            "up": os.getpid(),
            "broker": self.broker_pids,
            "children": [{"name": c.spec.name, "pid": c.pid} for c in self.children],
        }
        _write_json(self.layout.pids, body)

    def failed(self) -> Child | None:
        """A child that ended unexpectedly: any service, or a run that ended with an error."""
        for child in self.children:
            code = child.poll()
            if code is None or child.stopping or child.spec.periodic:
                continue
            if child.spec.may_finish and code == 0:
                continue
            return child
        return None

    def stop_all(self, stop: Stop) -> None:
        """The newest first: the simulation and statistics, then the API, the alerts, the router."""
        for child in reversed(self.children):
            if child.poll() is not None:
                child.process.wait()
                child.stopping = True
                continue
            self.console.print(f"stopping {child.spec.name} (pid {child.pid})")
            code = child.stop(STOP_WAIT_S, stop)
            if code == -signal.SIGKILL:
                self.console.print(f"  {child.spec.name} killed")
            elif code not in (0, -signal.SIGTERM):
                self.console.print(f"  {child.spec.name} ended with exit code {code}")


def report_failure(console: Console, child: Child) -> None:
    code = child.poll()
    console.print(f"[bold red]{child.spec.name} exited with code {code}[/]; the last lines of {child.log}:")
    for line in child.tail():
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def processes_marked(health_dir: Path) -> list[int]:
    """Live processes whose environment names ``health_dir`` as their health directory: children
    of a ``lintas up`` on this state directory (those of an earlier run that was killed, say)."""
    marker = f"{_MARK}={health_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _end_orphans(health_dir: Path, console: Console) -> None:
    pids = processes_marked(health_dir)
    if not pids:
        return
    console.print(f"ending {len(pids)} processes left by an earlier lintas up: {pids}")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + STOP_WAIT_S
        while time.monotonic() < deadline and processes_marked(health_dir):
            time.sleep(0.1)
        pids = processes_marked(health_dir)
        if not pids:
            return


# -- files -------------------------------------------------------------------------------------


def _write_json(path: Path, body: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def _saved_clock(path: Path) -> datetime | None:
    try:
        return datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["simulated_now"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_clock(path: Path, clock: ClockSettings) -> None:
    _write_json(path, {"simulated_now": make_clock(clock)().isoformat(), "speed": clock.speed})


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise ConfigError(f"another lintas up runs from {lock_file.parent.parent}") from exc
        yield


def _remove_store(location: str) -> None:
    """Delete a file store and its companions (``-wal``, ``-shm``, ``.kek``, ...)."""
    path = Path(location).expanduser()
    if not path.parent.is_dir():
        return
    for sibling in path.parent.iterdir():
        if sibling.name == path.name or sibling.name.startswith((f"{path.name}-", f"{path.name}.")):
            sibling.unlink()


def _is_url(location: str) -> bool:
    return "://" in location


def _remove_broker_home(home: Path) -> None:
    if not home.exists():
        return
    marks = ("broker.json", "cluster.json", "data", "secrets", "server.properties")
    if any((home / mark).exists() for mark in marks) or not any(home.iterdir()):
        shutil.rmtree(home)
        return
    raise ConfigError(f"--fresh: {home} does not look like the embedded broker's home; not deleting it")


def _broker_running(broker: LocalKafka) -> bool:
    from hub.broker.local import LocalCluster

    members = broker.members if isinstance(broker, LocalCluster) else [broker]
    return any(status is not None and status.alive for status in (m.status() for m in members))


def _broker_pids(broker: LocalKafka) -> list[int]:
    from hub.broker.local import LocalCluster

    members = broker.members if isinstance(broker, LocalCluster) else [broker]
    return [pid for pid in (m.pid for m in members) if pid is not None]


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104 - only displayed


# -- the command -------------------------------------------------------------------------------


@dataclass
class _Run:
    """What one ``lintas up`` has started, so that everything is undone whatever goes wrong."""

    settings: Settings
    layout: Layout
    console: Console
    stop: Stop
    bootstrap_servers: str | None
    supervisor: Supervisor | None = None
    broker: LocalKafka | None = None
    clock: ClockSettings | None = None
    failed: Child | None = None

    def shutdown(self) -> None:
        if self.stop.requested.is_set():
            self.console.print(f"{self.stop.signal}: stopping (again to kill at once)")
        if self.supervisor is not None:
            self.supervisor.stop_all(self.stop)
        if self.clock is not None:
            _save_clock(self.layout.clock, self.clock)
        if self.broker is not None:
            self.console.print(f"stopping the embedded broker ({self.settings.broker.home})")
            self.broker.stop()


def up(
    bootstrap_servers: BootstrapOption = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API and dashboard.")] = 8080,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="LINTAS_STATE_DIR",
            help="Where the broker, the stores, the logs and the logins go; by default the parent of "
            "the broker's home (~/.local/state/lintas).",
        ),
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Wipe the broker's data, the read store and the key store first.")
    ] = False,
    speed: Annotated[
        float,
        typer.Option(
            min=0.001, max=1_000_000, help="Simulated seconds per real second (1440: a day a minute)."
        ),
    ] = 1440.0,
    simulation: Annotated[bool, typer.Option(help="Run the national systems' simulation.")] = True,
    cases: Annotated[int | None, typer.Option(min=1, help="Cases the simulation creates.")] = None,
    mass_release: Annotated[
        int,
        typer.Option(
            min=0, help="Also replay a scam-compound release of this many people into Thailand (0: none)."
        ),
    ] = 0,
    stats_every: Annotated[
        float, typer.Option(min=1, help="Seconds between publications of the regional statistics.")
    ] = 60.0,
) -> None:
    """Run the whole hub on this machine: broker, router, alerts, API and dashboard, simulation.
    Ctrl-C stops everything it started."""
    settings = Settings()
    configure_logging(settings.log_format)
    state = (state_dir or settings.broker.home.parent).expanduser().resolve()
    if state_dir is not None:
        apply_state_dir(settings, state, os.environ)
    layout = Layout(state)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    stop = Stop()
    run = _Run(settings, layout, console, stop, bootstrap_servers)
    try:
        with _exclusive(layout.lock), stop.installed():
            try:
                _start(
                    run,
                    port=port,
                    fresh=fresh,
                    speed=speed,
                    simulation=simulation,
                    cases=cases,
                    mass_release=mass_release,
                )
                if not stop.requested.is_set() and run.failed is None:
                    _watch(run, stats_every)
            finally:
                run.shutdown()
    except LintasError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from exc
    if run.failed is not None:
        raise typer.Exit(code=1)
    console.print(f"stopped ({stop.signal or 'done'})")


def _start(
    run: _Run,
    *,
    port: int,
    fresh: bool,
    speed: float,
    simulation: bool,
    cases: int | None,
    mass_release: int = 0,
) -> None:
    from hub import cli

    settings, layout, console = run.settings, run.layout, run.console
    host = settings.api.host
    api_url = f"http://{_display_host(host)}:{port}"
    dashboard_url = f"{api_url}/ui/"
    _end_orphans(layout.health, console)
    if not _port_free(host, port):
        raise ConfigError(f"--port: {host}:{port} is in use")
    given = run.bootstrap_servers or settings.bootstrap_servers
    if fresh:
        wipe(settings, layout, console, external=given is not None)
    shutil.rmtree(layout.health, ignore_errors=True)
    layout.health.mkdir(parents=True, exist_ok=True)

    if given is None:
        broker = cli._local_broker(settings)
        if _broker_running(broker):
            console.print(f"using the running embedded broker in {settings.broker.home}")
        else:
            console.print(f"starting the embedded broker in {settings.broker.home}")
            run.broker = broker  # stopped at the end, also if starting it fails half-way
    bootstrap = cli._bootstrap(settings, given)
    # The hub's own principals may not create topics: the operator makes them all now.
    asyncio.run(cli._ensure_all_topics(settings, bootstrap))
    if run.stop.requested.is_set():
        return

    run.clock = resumed_clock(None if fresh else _saved_clock(layout.clock), datetime.now(UTC), speed)
    _save_clock(layout.clock, run.clock)
    env = child_environment(os.environ, settings, layout, run.clock, run.bootstrap_servers)
    shared = child_environment({}, settings, layout, run.clock, run.bootstrap_servers)
    logins = _issue_logins(
        settings,
        layout.logins,
        api_url,
        dashboard_url,
        # What a command started by hand needs to join this hub (`lintas simulate ... --logins`).
        environment={k: v for k, v in shared.items() if k.startswith("LINTAS_") and k not in _OWN},
    )
    run.supervisor = supervisor = Supervisor(layout, env, console)
    if run.broker is not None:
        supervisor.broker_pids = _broker_pids(run.broker)
    for spec in hub_children(port):
        supervisor.start(spec)
    console.print(f"waiting for the API on {api_url}/v1/health")
    if not _wait_healthy(run, f"{api_url}/v1/health"):
        return
    if simulation:
        supervisor.start(simulation_child(layout.logins, cases))
    if mass_release:
        supervisor.start(mass_release_child(layout.logins, mass_release))
    _banner(console, layout, bootstrap, dashboard_url, api_url, logins, run.clock)


def wipe(settings: Settings, layout: Layout, console: Console, *, external: bool) -> None:
    """``--fresh``: stop the embedded broker and delete its home (unless the cluster is
    ``external``), the read store and the key store, and the saved simulated time."""
    from hub import cli

    for location, what in ((settings.api.store, "read store"), (settings.keys.store, "key store")):
        if _is_url(location):
            raise ConfigError(f"--fresh: the {what} is {location.split('@')[-1]}; wipe it there")
    if external:
        console.print("--fresh: the cluster given by --bootstrap-servers keeps its data")
    else:
        if cli._local_broker(settings).stop():
            console.print("stopped the running embedded broker")
        _remove_broker_home(settings.broker.home)
    _remove_store(settings.api.store)
    _remove_store(settings.keys.store)
    layout.clock.unlink(missing_ok=True)
    console.print(f"wiped the broker's data, the read store and the key store under {layout.state}")


def _issue_logins(
    settings: Settings,
    path: Path,
    api_url: str,
    dashboard_url: str,
    environment: Mapping[str, str] | None = None,
) -> list[tuple[str, str, str]]:
    """Issue the demo credentials (revoking those of earlier runs) and save them to ``path``."""
    from connectors.readstore.store import ReadStore
    from hub.simulation.logins import DemoLogins, Login

    directory = load_directory(settings.directory_path)
    store = ReadStore(settings.api.store).create()
    try:
        credentials = Credentials(store)
        for entry in credentials.listing():
            if str(entry["label"] or "").startswith(DEMO_LABEL) and not entry["revoked_at"]:
                credentials.revoke(str(entry["credential_id"]))
        logins = []
        for wanted in demo_credentials(directory):
            issued = credentials.issue(wanted.country, wanted.role, agency=wanted.agency, label=wanted.label)
            logins.append(
                Login(
                    country=wanted.country,
                    role=wanted.role.value,
                    agency=wanted.agency,
                    token=issued.token,
                    label=wanted.label,
                )
            )
    finally:
        store.dispose()
    DemoLogins(
        api_url=api_url, dashboard_url=dashboard_url, logins=logins, environment=dict(environment or {})
    ).save(path)
    return [(login.country, str(login.role), login.token) for login in logins]


def _wait_healthy(run: _Run, url: str) -> bool:
    assert run.supervisor is not None
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while not run.stop.requested.is_set():
        if _healthy(url):
            return True
        failed = run.supervisor.failed()
        if failed is not None:
            report_failure(run.console, failed)
            run.failed = failed
            return False
        if time.monotonic() > deadline:
            raise HubNotStarted(f"api: {url} did not answer within {HEALTH_TIMEOUT_S:.0f} s")
        run.stop.requested.wait(0.5)
    return False


def _banner(
    console: Console,
    layout: Layout,
    bootstrap: str,
    dashboard_url: str,
    api_url: str,
    logins: Sequence[tuple[str, str, str]],
    clock: ClockSettings,
) -> None:
    table = Table(title="Demo logins", box=box.SIMPLE, title_justify="left")
    table.add_column("country")
    table.add_column("role")
    table.add_column("token", no_wrap=True)
    for country, role, token in logins:
        table.add_row(country, role, token)
    console.print(table)
    console.print(f"tokens also in {layout.logins} (mode 0600)")
    console.print(f"API       {api_url}/v1 (OpenAPI: {api_url}/v1/openapi.json)", soft_wrap=True)
    console.print(f"Kafka     {bootstrap}", soft_wrap=True)
    console.print(f"clock     {make_clock(clock)():%Y-%m-%d %H:%M} UTC, x{clock.speed:g}", soft_wrap=True)
    console.print(f"logs      {layout.logs}", soft_wrap=True)
    console.print(f"Dashboard [bold]{dashboard_url}[/]", soft_wrap=True)
    console.print("Ctrl-C stops everything.")
    _flush(sys.stdout)


def _flush(stream: IO[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.flush()


def _watch(run: _Run, stats_every: float) -> None:
    """Until a signal: report a child that dies, run the statistics every ``stats_every`` s, and
    note the simulated time now and then."""
    supervisor, stop = run.supervisor, run.stop
    assert supervisor is not None
    assert run.clock is not None
    next_stats = time.monotonic() + stats_every
    next_clock = time.monotonic() + CLOCK_SAVE_EVERY_S
    stats_run: Child | None = None
    finished_simulation = False
    while not stop.requested.wait(POLL_S):
        failed = supervisor.failed()
        if failed is not None:
            report_failure(run.console, failed)
            run.failed = failed
            return
        simulation = next((c for c in supervisor.children if c.spec.name == "simulation"), None)
        if simulation is not None and not finished_simulation and simulation.poll() == 0:
            finished_simulation = True
            run.console.print("the simulation has finished; the hub keeps running")
        now = time.monotonic()
        if now >= next_stats and (stats_run is None or stats_run.poll() is not None):
            if stats_run is not None:
                # Keep the pid file to what may still run: finished publications are reaped.
                supervisor.children.remove(stats_run)
            stats_run = supervisor.start(STATS_CHILD)
            next_stats = now + stats_every
        if now >= next_clock:
            _save_clock(run.layout.clock, run.clock)
            next_clock = now + CLOCK_SAVE_EVERY_S
