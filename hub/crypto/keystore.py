"""The case data-key store: one key per case, wrapped for each entitled country, destroyable.

Personal sections are sealed under the case's data key. The store keeps only *wrapped* copies, one per
country entitled to read (see :mod:`hub.crypto.policy`), outside Kafka. Destroying a case's keys
(consent withdrawn, retention over) deletes every copy and leaves a tombstone, so every sealed copy of the
case's personal data, in any topic, backup or replica, becomes unreadable: crypto-shredding.

:class:`EmbeddedKeyStore` wraps with AES key wrap under a per-country key-encryption key kept in a file
next to the database; :class:`VaultTransitKeyStore` has HashiCorp Vault's transit engine wrap. Both keep
the wrapped copies and tombstones in SQLite, safe for several threads and processes.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import importlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qs, urlsplit

import structlog
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from hub.errors import ConfigError, LintasError

log = structlog.get_logger("lintas.crypto.keystore")

KEY_SIZE = 32
_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class DataKey:
    case_id: str
    version: int
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) != KEY_SIZE:
            raise ValueError(f"key: a data key is {KEY_SIZE} bytes, got {len(self.key)}")


@dataclass(frozen=True)
class Tombstone:
    """What remains of a case's keys after destruction: when and why, no key material."""

    case_id: str
    destroyed_at: datetime
    reason: str


class KeyStoreError(LintasError):
    """Root of the key store's errors."""


class KeysDestroyed(KeyStoreError):
    def __init__(self, case_id: str, destroyed_at: datetime, reason: str) -> None:
        self.case_id = case_id
        self.destroyed_at = destroyed_at
        self.reason = reason
        super().__init__(
            f"case {case_id}: its personal data keys were destroyed on {destroyed_at.date().isoformat()} "
            f"({reason}); personal data can no longer be read or accepted"
        )


class KeyNotGranted(KeyStoreError):
    def __init__(self, case_id: str, country: str) -> None:
        self.case_id = case_id
        self.country = country
        super().__init__(f"country {country} is not entitled to the personal data of case {case_id}")


class NoKey(KeyStoreError):
    def __init__(self, case_id: str) -> None:
        self.case_id = case_id
        super().__init__(f"case {case_id}: has no data key yet (no personal data was sealed for it)")


class KeyStoreUnavailable(KeyStoreError):
    """The wrapping service or the store's files could not be used; trying again may help."""

    retriable = True


class KeyStore(Protocol):
    def data_key(self, case_id: str, holder: str) -> DataKey: ...

    def grant(self, case_id: str, country: str) -> None: ...

    def unwrap(self, case_id: str, country: str, *, version: int | None = None) -> DataKey: ...

    def readers(self, case_id: str) -> frozenset[str]: ...

    def destroy(self, case_id: str, *, reason: str, at: datetime) -> bool: ...

    def destroyed(self, case_id: str) -> Tombstone | None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS wrapped_keys (
    case_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    country TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    PRIMARY KEY (case_id, version, country)
);
CREATE TABLE IF NOT EXISTS tombstones (
    case_id TEXT PRIMARY KEY,
    destroyed_at TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""

_INSERT = "INSERT OR IGNORE INTO wrapped_keys (case_id, version, country, wrapped) VALUES (?, ?, ?, ?)"


class _SqliteKeyStore:
    """Wrapped copies and tombstones in SQLite; subclasses say how a data key is wrapped for a country."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Wrapped keys are useless without the KEKs, but nobody else needs to read them either.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        # Deleted rows are overwritten with zeros, so a destroyed key leaves no trace in the file.
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- wrapping, per store

    def _wrap(self, country: str, key: bytes) -> bytes:
        raise NotImplementedError

    def _unwrap(self, country: str, wrapped: bytes) -> bytes:
        raise NotImplementedError

    # -- SQLite

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once so two processes never both decide a new key."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _tombstone(self, db: sqlite3.Connection, case_id: str) -> Tombstone | None:
        row = db.execute(
            "SELECT destroyed_at, reason FROM tombstones WHERE case_id = ?", (case_id,)
        ).fetchone()
        if row is None:
            return None
        return Tombstone(case_id, datetime.fromisoformat(row[0]), row[1])

    def _check_alive(self, db: sqlite3.Connection, case_id: str) -> None:
        tombstone = self._tombstone(db, case_id)
        if tombstone is not None:
            raise KeysDestroyed(case_id, tombstone.destroyed_at, tombstone.reason)

    def _copies(self, db: sqlite3.Connection, case_id: str) -> list[tuple[int, str, bytes]]:
        return db.execute(
            "SELECT version, country, wrapped FROM wrapped_keys WHERE case_id = ? ORDER BY version DESC",
            (case_id,),
        ).fetchall()

    def _copy_for(self, case_id: str, country: str, version: int | None) -> tuple[int, bytes]:
        with self._lock:
            self._check_alive(self._db, case_id)
            copies = self._copies(self._db, case_id)
        if not copies:
            raise NoKey(case_id)
        for found_version, holder, wrapped in copies:
            if holder == country and (version is None or found_version == version):
                return found_version, wrapped
        if version is not None and not any(found == version for found, _, _ in copies):
            raise KeyStoreError(f"case {case_id}: version: the case has no data key version {version}")
        raise KeyNotGranted(case_id, country)

    # -- the protocol

    def data_key(self, case_id: str, holder: str) -> DataKey:
        with contextlib.suppress(NoKey):
            return self.unwrap(case_id, holder)
        # Wrapped before the transaction, so a slow wrapping service never holds the database lock.
        fresh = DataKey(case_id, 1, os.urandom(KEY_SIZE))
        wrapped = self._wrap(holder, fresh.key)
        with self._write() as db:
            self._check_alive(db, case_id)
            if not self._copies(db, case_id):
                db.execute(_INSERT, (case_id, fresh.version, holder, wrapped))
                log.info("data_key_created", case_id=case_id, holder=holder)
                return fresh
        # Another process created the key between our read and our transaction: use theirs.
        return self.unwrap(case_id, holder)

    def grant(self, case_id: str, country: str) -> None:
        with self._lock:
            self._check_alive(self._db, case_id)
            copies = self._copies(self._db, case_id)
        if not copies:
            raise NoKey(case_id)
        have = {version for version, holder, _ in copies if holder == country}
        # Unwrapped through any holder's copy, one per version: older sections stay readable too.
        sources: dict[int, tuple[str, bytes]] = {}
        for version, holder, wrapped in copies:
            sources.setdefault(version, (holder, wrapped))
        new = [
            (version, self._wrap(country, self._unwrap(holder, wrapped)))
            for version, (holder, wrapped) in sources.items()
            if version not in have
        ]
        if not new:
            return
        with self._write() as db:
            # Destroyed meanwhile: writing the copies now would resurrect a shredded key.
            self._check_alive(db, case_id)
            db.executemany(
                _INSERT,
                [(case_id, version, country, wrapped) for version, wrapped in new],
            )
        log.info("data_key_granted", case_id=case_id, country=country)

    def unwrap(self, case_id: str, country: str, *, version: int | None = None) -> DataKey:
        found, wrapped = self._copy_for(case_id, country, version)
        return DataKey(case_id, found, self._unwrap(country, wrapped))

    def readers(self, case_id: str) -> frozenset[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT country FROM wrapped_keys WHERE case_id = ?", (case_id,)
            ).fetchall()
        return frozenset(row[0] for row in rows)

    def destroy(self, case_id: str, *, reason: str, at: datetime) -> bool:
        """Delete every copy of every version and keep a tombstone; True when this call destroyed them."""
        if at.tzinfo is None:
            raise ValueError(f"at: must carry a time zone (got naive {at.isoformat()})")
        with self._write() as db:
            first = self._tombstone(db, case_id) is None
            deleted = db.execute("DELETE FROM wrapped_keys WHERE case_id = ?", (case_id,)).rowcount
            if first:
                db.execute(
                    "INSERT INTO tombstones (case_id, destroyed_at, reason) VALUES (?, ?, ?)",
                    (case_id, at.isoformat(), reason),
                )
        if deleted:
            # The write-ahead log still holds the pages as they were; fold it in and empty it.
            with self._lock:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if first:
            log.info("data_keys_destroyed", case_id=case_id, reason=reason, copies=deleted)
        return first

    def destroyed(self, case_id: str) -> Tombstone | None:
        with self._lock:
            return self._tombstone(self._db, case_id)


class EmbeddedKeyStore(_SqliteKeyStore):
    """Data keys AES-key-wrapped under per-country KEKs, kept in ``<db>.kek`` apart from the copies."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self.kek_path = self.path.with_name(self.path.name + ".kek")
        self._keks: dict[str, bytes] = {}

    def _read_keks(self) -> dict[str, bytes]:
        try:
            raw = json.loads(self.kek_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KeyStoreUnavailable(f"{self.kek_path}: key-encryption keys cannot be read: {exc}") from exc
        return {country: base64.b64decode(value) for country, value in raw.items()}

    def _kek(self, country: str) -> bytes:
        with self._lock:
            kek = self._keks.get(country)
            if kek is not None:
                return kek
            lock_path = self.kek_path.with_name(self.kek_path.name + ".lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # Another process may be adding a country's KEK right now; both must end with the same one.
                fcntl.flock(fd, fcntl.LOCK_EX)
                keks = self._read_keks()
                if country not in keks:
                    keks[country] = os.urandom(KEY_SIZE)
                    self._write_keks(keks)
                    log.info("kek_created", country=country, path=str(self.kek_path))
                self._keks = keks
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return keks[country]

    def _write_keks(self, keks: dict[str, bytes]) -> None:
        body = json.dumps({c: base64.b64encode(k).decode() for c, k in sorted(keks.items())}, indent=1)
        temp = self.kek_path.with_name(self.kek_path.name + ".tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(body)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o600)
        os.replace(temp, self.kek_path)

    def _wrap(self, country: str, key: bytes) -> bytes:
        return aes_key_wrap(self._kek(country), key)

    def _unwrap(self, country: str, wrapped: bytes) -> bytes:
        try:
            return aes_key_unwrap(self._kek(country), wrapped)
        except InvalidUnwrap:
            raise KeyStoreError(
                f"country {country}: its wrapped data key does not unwrap under its KEK in {self.kek_path} "
                "(the KEK file was replaced or the database copied from elsewhere)"
            ) from None


class VaultTransitKeyStore(_SqliteKeyStore):
    """Data keys wrapped by Vault's transit engine, one transit key ``lintas-<cc>`` per country.

    The transit keys are created on first encryption (Vault's upsert), so the token needs ``create`` and
    ``update`` on ``<mount>/encrypt/lintas-*`` and ``update`` on ``<mount>/decrypt/lintas-*``.
    """

    key_prefix: ClassVar[str] = "lintas-"

    def __init__(self, path: Path | str, *, url: str, token: str, mount_point: str = "transit") -> None:
        try:
            hvac = importlib.import_module("hvac")
        except ImportError as exc:
            raise ConfigError(
                "key store: vault: the hvac package is not installed (install the 'vault' extra)"
            ) from exc
        self._hvac_exceptions: Any = importlib.import_module("hvac.exceptions")
        self._client: Any = hvac.Client(url=url, token=token)
        self.mount_point = mount_point
        self.url = url
        super().__init__(path)

    def key_name(self, country: str) -> str:
        return self.key_prefix + country.lower()

    def _wrap(self, country: str, key: bytes) -> bytes:
        try:
            response = self._client.secrets.transit.encrypt_data(
                name=self.key_name(country),
                plaintext=base64.b64encode(key).decode(),
                mount_point=self.mount_point,
            )
        except self._hvac_exceptions.VaultError as exc:
            raise KeyStoreUnavailable(
                f"vault {self.url}: transit encrypt with {self.key_name(country)} failed: {exc}"
            ) from exc
        return str(response["data"]["ciphertext"]).encode()

    def _unwrap(self, country: str, wrapped: bytes) -> bytes:
        try:
            response = self._client.secrets.transit.decrypt_data(
                name=self.key_name(country), ciphertext=wrapped.decode(), mount_point=self.mount_point
            )
        except self._hvac_exceptions.VaultError as exc:
            raise KeyStoreUnavailable(
                f"vault {self.url}: transit decrypt with {self.key_name(country)} failed: {exc}"
            ) from exc
        return base64.b64decode(response["data"]["plaintext"])


def open_key_store(url_or_path: str, *, state_dir: Path | None = None) -> KeyStore:
    """``vault+https://host:8200?mount=transit&db=/path/keys.sqlite`` for Vault; anything else is a file path.

    The Vault store keeps its wrapped copies in ``db``, or ``<state_dir>/vault-keys.sqlite`` without it;
    its token comes from ``VAULT_TOKEN``.
    """
    if not url_or_path.startswith("vault+"):
        return EmbeddedKeyStore(Path(url_or_path))
    parts = urlsplit(url_or_path.removeprefix("vault+"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"key store: {url_or_path}: expected vault+https://host:port?mount=transit")
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"mount", "db"}
    if unknown:
        raise ConfigError(f"key store: {url_or_path}: unknown parameters {sorted(unknown)}; use mount and db")
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        raise ConfigError("key store: VAULT_TOKEN: not set, and the Vault key store needs a token")
    if "db" in query:
        db = Path(query["db"])
    elif state_dir is not None:
        db = state_dir / "vault-keys.sqlite"
    else:
        raise ConfigError(f"key store: {url_or_path}: db: where to keep the wrapped keys is not given")
    return VaultTransitKeyStore(
        db, url=f"{parts.scheme}://{parts.netloc}", token=token, mount_point=query.get("mount", "transit")
    )
