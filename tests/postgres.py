"""A throwaway PostgreSQL server for tests: ``initdb`` into a temporary directory (trust
authentication, UTF8, no fsync), ``postgres`` listening on a free loopback port with its socket in
that directory, and ``pg_ctl stop -m fast`` at the end, leaving no process behind.

PostgreSQL is an optional deployment store: without its binaries (Debian package ``postgresql``;
they live in ``/usr/lib/postgresql/<version>/bin``) the tests that need it are skipped, also under
CI (``CI=true``), saying why. Binaries that are there but cannot start a server skip locally and
fail under CI. PostgreSQL refuses to run as root: as root, the server runs as ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pytest

#: Where PostgreSQL's programs are looked for after ``$PATH`` (Debian keeps them off the path).
SEARCHED = ("/usr/local/bin", "/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/bin")
PROGRAMS = ("initdb", "postgres", "pg_ctl")
#: The user the server runs as when the tests run as root.
UNPRIVILEGED = "nobody"
STARTUP_SECONDS = 30.0
#: The database that holds the schemas :meth:`PostgresServer.schema` makes.
SHARED = "lintas"


class PostgresError(RuntimeError):
    """PostgreSQL binaries are there, but no server could be started with them."""


def binaries() -> Path | None:
    """The directory holding ``initdb``, ``postgres`` and ``pg_ctl`` (the newest version), or None."""
    candidates: list[Path] = []
    found = shutil.which("initdb")
    if found is not None:
        candidates.append(Path(found).resolve().parent)
    for pattern in SEARCHED:
        root = Path("/")
        matches = sorted(root.glob(pattern.lstrip("/")), key=_version_key, reverse=True)
        candidates.extend(matches)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in PROGRAMS):
            return directory
    return None


def _version_key(path: Path) -> tuple[int, str]:
    digits = "".join(ch for ch in path.parent.name if ch.isdigit())
    return (int(digits) if digits else 0, str(path))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _identity() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, when this process is root; None otherwise."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam(UNPRIVILEGED)
    return entry.pw_uid, entry.pw_gid


@dataclass
class PostgresServer:
    """One running server; :meth:`database` makes a fresh, empty database on it."""

    bin_dir: Path
    directory: Path
    port: int = 0
    identity: tuple[int, int] | None = None
    process: subprocess.Popen[bytes] | None = None
    databases: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database of this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *command: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            command,
            capture_output=True,
            timeout=STARTUP_SECONDS,
            check=False,
            **self._as_owner(),
        )

    def _as_owner(self) -> dict[str, Any]:
        if self.identity is None:
            return {}
        uid, gid = self.identity
        return {"user": uid, "group": gid, "extra_groups": [], "cwd": str(self.directory)}

    def start(self) -> PostgresServer:
        self.identity = _identity()
        if self.identity is not None:
            os.chown(self.directory, *self.identity)
        done = self._run(
            str(self.bin_dir / "initdb"),
            "--pgdata",
            str(self.data),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--username=postgres",
            "--no-sync",
        )
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.decode(errors='replace').strip()}")
        self.port = _free_port()
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(self.bin_dir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.directory),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "timezone=UTC",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as_owner(),
            )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise PostgresError(f"postgres exited ({self.process.returncode}): {self._log_tail()}")
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", connect_timeout=2
                ):
                    return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise PostgresError(f"postgres did not accept connections: {error}") from error
                time.sleep(0.05)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"

    def database(self, name: str | None = None) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')  # a name of our own making
        self.databases.append(name)
        return self.url(name)

    def schema(self, name: str | None = None) -> str:
        """A new empty schema in one shared database (far quicker to make than a database);
        returns the SQLAlchemy URL of a connection whose search path is that schema."""
        if SHARED not in self.databases:
            self.database(SHARED)
        name = name or f"s_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=SHARED, autocommit=True
        ) as connection:
            connection.execute(f'CREATE SCHEMA "{name}"')  # a name of our own making
        return f"{self.url(SHARED)}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._run(str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w")
            try:
                self.process.wait(STARTUP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STARTUP_SECONDS)
        self.process = None


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running throwaway server; raises :class:`PostgresError` if there are no binaries or it
    cannot start. Stopped, with its directory removed, on exit."""
    bin_dir = binaries()
    if bin_dir is None:
        raise PostgresError("no PostgreSQL binaries (initdb, postgres, pg_ctl) found")
    directory = Path(tempfile.mkdtemp(prefix="lintas-pg-"))
    server = PostgresServer(bin_dir, directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def postgres_unavailable(reason: str, *, binaries_found: bool) -> NoReturn:
    """Skip because no PostgreSQL can be had; under CI, only a missing installation is a skip."""
    if binaries_found and os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    if binaries_found:
        pytest.skip(reason)
    pytest.skip(
        f"{reason}: PostgreSQL is an optional deployment store; install the Debian package "
        "'postgresql' to run these tests against it"
    )


def postgres_fixture() -> Iterator[PostgresServer]:
    """The body of a pytest fixture: ``yield from postgres_fixture()`` gives a running server, or
    skips (see the module's notes)."""
    found = binaries() is not None
    stack = contextlib.ExitStack()
    try:
        server = stack.enter_context(postgres_server())
    except PostgresError as error:
        reason = f"cannot start PostgreSQL: {error}"
    else:
        reason = ""
    if reason:
        stack.close()
        postgres_unavailable(reason, binaries_found=found)
    with stack:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server shared by the session (import this fixture to use it)."""
    yield from postgres_fixture()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh, empty schema on the session's server."""
    return postgres.schema()
