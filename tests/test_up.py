"""``lintas up``: what it plans (pure), and the whole hub started, used and stopped as a user does."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from rich.console import Console

from connectors.api.credentials import Role
from connectors.readstore.store import ReadStore, receipts
from hub.agreements import load_directory
from hub.broker.local import LocalBroker
from hub.clock import make_clock
from hub.errors import ConfigError
from hub.settings import Settings
from hub.simulation.logins import DemoLogins
from hub.simulation.plan import DOORS, Door
from hub.up import (
    DEMO_COUNTRIES,
    Layout,
    Stop,
    apply_state_dir,
    child_environment,
    demo_credentials,
    hub_children,
    mass_release_child,
    resumed_clock,
    simulation_child,
    wipe,
)
from tests.apiserver import free_port

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

# -- what it plans ----------------------------------------------------------------------------------


def test_the_services_start_router_first_and_stop_in_the_reverse_order() -> None:
    children = [*hub_children(8080), simulation_child(Path("/s/logins.json"), 40)]
    assert [child.name for child in children] == ["router", "alerts", "api", "simulation"]
    assert children[1].args == ("alerts", "--every", "2")
    assert children[2].args == ("api", "--port", "8080")
    assert children[3].args == ("simulate", "run", "--logins", "/s/logins.json", "--cases", "40")
    assert children[3].may_finish
    assert not any(child.may_finish for child in children[:3])
    assert children[0].argv()[:3] == [sys.executable, "-m", "hub.cli"]


def test_every_child_gets_the_same_clock_stores_and_health_directory(tmp_path: Path) -> None:
    settings = Settings()
    apply_state_dir(settings, tmp_path, {})
    clock = resumed_clock(None, NOW, 1440)
    env = child_environment({"PATH": "/bin"}, settings, Layout(tmp_path), clock, "kafka:9092")
    assert env["PATH"] == "/bin"
    assert env["LINTAS_BROKER__HOME"] == str(tmp_path / "broker")
    assert env["LINTAS_API__STORE"] == str(tmp_path / "api" / "read.sqlite")
    assert env["LINTAS_KEYS__STORE"] == str(tmp_path / "keys" / "keys.sqlite")
    assert env["LINTAS_PROCESSOR__STATUS_DIR"] == str(tmp_path / "up" / "health")
    assert env["LINTAS_LOG_FORMAT"] == "json"
    assert env["LINTAS_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["LINTAS_CLOCK__SPEED"] == "1440.0"
    assert env["LINTAS_PROCESSOR__SESSION_TIMEOUT_MS"] == "10000"
    assert datetime.fromisoformat(env["LINTAS_CLOCK__START"]) == NOW
    # Without --bootstrap-servers the children find the embedded broker in its home themselves.
    assert "LINTAS_BOOTSTRAP_SERVERS" not in child_environment({}, settings, Layout(tmp_path), clock, None)


def test_a_store_named_in_the_environment_stays_where_it_is(tmp_path: Path) -> None:
    settings = Settings()
    settings.api.store = "postgresql+psycopg://db/lintas"
    apply_state_dir(settings, tmp_path, {"LINTAS_API__STORE": settings.api.store})
    assert settings.api.store == "postgresql+psycopg://db/lintas"
    assert settings.broker.home == tmp_path / "broker"


def test_the_simulated_time_carries_on_from_where_the_last_run_stopped() -> None:
    later = NOW + timedelta(days=30)
    assert make_clock(resumed_clock(later, NOW, 1440), lambda: NOW)() == later
    # Never backwards: an old saved time gives way to the real now.
    assert make_clock(resumed_clock(NOW - timedelta(days=1), NOW, 1440), lambda: NOW)() == NOW
    resumed = resumed_clock(None, NOW, 1440)
    assert make_clock(resumed, lambda: NOW + timedelta(minutes=1))() == NOW + timedelta(days=1)


def test_the_mass_release_runs_as_a_child_that_may_finish() -> None:
    spec = mass_release_child(Path("/state/up/logins.json"), 7000)
    assert spec.args == ("simulate", "mass-release", "--logins", "/state/up/logins.json", "--people", "7000")
    assert spec.may_finish


def test_a_command_joining_by_hand_takes_the_hub_s_settings_but_keeps_its_own() -> None:
    logins = DemoLogins(
        api_url="http://127.0.0.1:8080",
        dashboard_url="http://127.0.0.1:8080/ui/",
        logins=[],
        environment={"LINTAS_CLOCK__SPEED": "1440.0", "LINTAS_API__STORE": "/state/api/read.sqlite"},
    )
    environ = {"LINTAS_API__STORE": "/mine.sqlite"}
    logins.join(environ)
    assert environ == {"LINTAS_CLOCK__SPEED": "1440.0", "LINTAS_API__STORE": "/mine.sqlite"}


def test_demo_logins_cover_every_focal_point_the_api_door_the_region_and_the_operator() -> None:
    wanted = demo_credentials(load_directory())
    focal = [w for w in wanted if w.role is Role.FOCAL_POINT]
    assert [w.country for w in focal] == list(DEMO_COUNTRIES)
    assert all(w.agency is not None and w.agency.startswith(f"{w.country}-") for w in focal)
    national = {w.country for w in wanted if w.role is Role.NATIONAL_SYSTEM}
    assert national == {country for country, door in DOORS.items() if door is Door.API}
    assert national, "some national system uses the HTTP door"
    assert [w.role for w in wanted if w.role in (Role.REGIONAL, Role.OPERATOR)] == [
        Role.REGIONAL,
        Role.OPERATOR,
    ]
    assert all(len(w.country) == 2 and w.country.isupper() for w in wanted)


def test_one_keypress_seen_twice_is_one_stop_and_a_second_press_hurries() -> None:
    stop = Stop()
    stop(signal.SIGINT, None)
    stop(signal.SIGINT, None)  # the terminal's and a wrapper's copy of the same Ctrl-C
    assert stop.requested.is_set()
    assert stop.signal == "SIGINT"
    assert not stop.hurry
    stop._first = time.monotonic() - 2  # the second press, two seconds later
    stop(signal.SIGINT, None)
    assert stop.hurry


def test_fresh_wipes_the_broker_the_read_store_and_the_key_store_and_nothing_else(tmp_path: Path) -> None:
    settings = Settings()
    apply_state_dir(settings, tmp_path, {})
    wiped = [
        "broker/secrets/router",
        "broker/data/meta.properties",
        "api/read.sqlite",
        "api/read.sqlite-wal",
        "keys/keys.sqlite",
        "keys/keys.sqlite.kek",
        "up/clock.json",
    ]
    kept = ["keys/notes.txt", "api/other.sqlite", "up/logs/router.log"]
    for name in wiped + kept:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    wipe(settings, Layout(tmp_path), Console(file=io.StringIO()), external=False)
    assert [name for name in wiped if (tmp_path / name).exists()] == []
    assert [name for name in kept if not (tmp_path / name).exists()] == []


def test_fresh_leaves_a_store_at_a_url_and_a_folder_that_is_no_broker_alone(tmp_path: Path) -> None:
    settings = Settings()
    apply_state_dir(settings, tmp_path, {})
    console = Console(file=io.StringIO())
    settings.api.store = "postgresql+psycopg://lintas:secret@db/lintas"
    with pytest.raises(ConfigError, match="read store is db/lintas"):
        wipe(settings, Layout(tmp_path), console, external=False)
    settings.api.store = str(tmp_path / "api" / "read.sqlite")
    (tmp_path / "broker" / "thesis").mkdir(parents=True)
    with pytest.raises(ConfigError, match="does not look like the embedded broker's home"):
        wipe(settings, Layout(tmp_path), console, external=False)
    assert (tmp_path / "broker" / "thesis").is_dir()


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "hub.cli", "up", "--port", str(port), "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    assert f"--port: 127.0.0.1:{port} is in use" in done.stderr
    assert not (tmp_path / "broker").exists()


# -- the whole hub ------------------------------------------------------------------------------------

#: Bounds of one run on a busy two-core machine: the broker's first start formats its storage.
READY_WITHIN_S = 180.0
STOPPED_WITHIN_S = 60.0


def processes_with_health_dir(health: Path) -> list[int]:
    """Live processes started with ``health`` as their health directory: what ``up`` started."""
    marker = f"LINTAS_PROCESSOR__STATUS_DIR={health}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def running(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


@dataclass
class Up:
    """One ``lintas up`` as a child of the test, with what it printed."""

    state: Path
    port: int
    process: subprocess.Popen[bytes]
    out: Path

    @property
    def layout(self) -> Layout:
        return Layout(self.state)

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def wait_ready(self) -> str:
        url = f"http://127.0.0.1:{self.port}/ui/"
        deadline = time.monotonic() + READY_WITHIN_S
        while url not in self.output():
            assert self.process.poll() is None, f"lintas up exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no dashboard URL printed:\n{self.output()}"
            time.sleep(0.2)
        return url

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=STOPPED_WITHIN_S)

    def recorded_pids(self) -> list[int]:
        recorded = json.loads(self.layout.pids.read_text())
        return [*recorded["broker"], *(child["pid"] for child in recorded["children"])]

    def assert_nothing_left(self) -> None:
        left = [pid for pid in self.recorded_pids() if running(pid)]
        assert not left, f"still running: {left}"
        assert not processes_with_health_dir(self.layout.health)

    def clean_up(self) -> None:
        """After a failed test: whatever it left, ended."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        for pid in processes_with_health_dir(self.layout.health):
            os.kill(pid, signal.SIGKILL)
        LocalBroker(self.state / "broker").stop()


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory, kafka_libs: Path) -> Path:
    """One state directory for the module's runs: the broker formats its storage once and is
    started again by each run on the same data."""
    return tmp_path_factory.mktemp("up-state")


@pytest.fixture
def start_up(state: Path, tmp_path: Path) -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(*options: str) -> Up:
        port = free_port()
        out = tmp_path / f"up-{len(started)}.out"
        with out.open("wb") as stream:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hub.cli",
                    "up",
                    "--port",
                    str(port),
                    "--state-dir",
                    str(state),
                    *options,
                ],
                stdout=stream,
                stderr=subprocess.STDOUT,
                env={**os.environ, "COLUMNS": "160"},
            )
        started.append(Up(state, port, process, out))
        return started[-1]

    yield start
    for run in started:
        run.clean_up()


def cluster_id(state: Path) -> str | None:
    meta = state / "broker" / "data" / "meta.properties"
    if not meta.is_file():
        return None
    return next(line for line in meta.read_text().splitlines() if line.startswith("cluster.id="))


@pytest.mark.kafka
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_serves_the_hub_until_a_signal_stops_everything_it_started(
    start_up: Callable[..., Up], state: Path, sig: signal.Signals
) -> None:
    before = cluster_id(state)
    up: Up = start_up("--no-simulation", "--stats-every", "5")
    dashboard = up.wait_ready()
    api = dashboard.removesuffix("/ui/")
    assert httpx.get(f"{api}/v1/health", timeout=10).json() == {"status": "ok"}
    assert httpx.get(dashboard, follow_redirects=True, timeout=10).status_code == 200

    logins_file = up.layout.logins
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    logins = DemoLogins.load(logins_file)
    assert logins.dashboard_url == dashboard
    focal = logins.token_of("MM", Role.FOCAL_POINT.value)
    assert focal in up.output(), "the tokens are printed"
    inbox = httpx.get(f"{api}/v1/inbox", headers={"Authorization": f"Bearer {focal}"}, timeout=10)
    assert inbox.status_code == 200, inbox.text
    regional = logins.token_of("ID", Role.REGIONAL.value)
    refused = httpx.get(f"{api}/v1/inbox", headers={"Authorization": f"Bearer {regional}"}, timeout=10)
    assert refused.status_code == 403, "the regional body reads no case"

    # Each worker writes its health file where up told it to; the statistics run every 5 s.
    workers = [up.layout.health / "lintas-router-0.json", up.layout.health / "lintas-alerts-0.json"]
    stats = up.layout.log("stats")
    deadline = time.monotonic() + 30
    while not all(path.is_file() for path in [*workers, stats]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(path.is_file() for path in workers)
    assert "stats --publish" in stats.read_text()
    assert up.process.poll() is None

    assert up.stop(sig) == 0, up.output()
    up.assert_nothing_left()
    assert LocalBroker(state / "broker").pid is None, "the broker it started is stopped"
    assert "stopping router" in up.output()
    order = [up.output().index(f"stopping {name}") for name in ("api", "alerts", "router")]
    assert order == sorted(order), "the API first, the router last"
    if before is not None:
        assert cluster_id(state) == before, "a second up keeps the broker's data"
    # A command started by hand joins this hub: same clock, broker and stores.
    shared = logins.environment
    assert shared["LINTAS_BROKER__HOME"] == str(state / "broker")
    assert {"LINTAS_CLOCK__START", "LINTAS_CLOCK__ORIGIN", "LINTAS_CLOCK__SPEED"} <= set(shared)
    assert "LINTAS_PROCESSOR__STATUS_DIR" not in shared


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_a_service_that_dies_is_reported_and_stops_the_hub(start_up: Callable[..., Up]) -> None:
    up: Up = start_up("--no-simulation")
    up.wait_ready()
    router = next(
        child["pid"]
        for child in json.loads(up.layout.pids.read_text())["children"]
        if child["name"] == "router"
    )
    os.kill(router, signal.SIGKILL)
    assert up.process.wait(timeout=STOPPED_WITHIN_S) == 1
    assert "router exited with code -9" in up.output()
    up.assert_nothing_left()


def receipts_in(store: Path) -> int:
    if not store.is_file():
        return 0
    read_store = ReadStore(store)
    try:
        with read_store.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(receipts)).scalar_one())
    except sa.exc.OperationalError:  # the projector has not made its tables yet
        return 0
    finally:
        read_store.dispose()


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_the_simulation_publishes_and_its_events_reach_receipts_and_inboxes(
    start_up: Callable[..., Up], state: Path
) -> None:
    up = start_up("--cases", "12")
    dashboard = up.wait_ready()
    logins = DemoLogins.load(up.layout.logins)
    store = state / "api" / "read.sqlite"
    before = receipts_in(store)
    deadline = time.monotonic() + 120
    while receipts_in(store) <= before and time.monotonic() < deadline:
        assert up.process.poll() is None, up.output()
        time.sleep(1)
    assert receipts_in(store) > before, up.layout.log("simulation").read_text()[-3000:]

    # What was accepted reaches the partners' inboxes, read through the API as their focal points.
    api = dashboard.removesuffix("/ui/")
    delivered = 0
    while not delivered and time.monotonic() < deadline:
        for login in logins.logins:
            if login.role == Role.FOCAL_POINT.value:
                page = httpx.get(
                    f"{api}/v1/inbox", headers={"Authorization": f"Bearer {login.token}"}, timeout=10
                )
                assert page.status_code == 200, page.text
                delivered += len(page.json()["items"])
        time.sleep(1)
    assert delivered, "something reached a focal point's inbox"

    assert up.stop(signal.SIGINT) == 0, up.output()
    assert "stopping simulation" in up.output().split("stopping api")[0]
    up.assert_nothing_left()
