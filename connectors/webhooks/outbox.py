"""The webhook outbox: a SQLite database of messages to send, the consumed offsets and every attempt.

Outbox rows and the offsets they were read up to are written in one transaction, so a restart resumes
from the stored offsets without skipping a record, and the unique key (subscription, message) makes a
record read twice a single row. Times are stored as UTC epoch milliseconds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.webhooks.backoff import Verdict

Position = tuple[str, int]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS outbox (
    webhook_id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    body BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'disabled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    round_attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    first_attempt_at INTEGER,
    last_attempt_at INTEGER,
    next_attempt_at INTEGER NOT NULL,
    UNIQUE (subscription_id, message_id)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status_code INTEGER,
    error TEXT,
    latency_ms REAL NOT NULL,
    at INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_at ON attempts (at);
CREATE TABLE IF NOT EXISTS disabled (
    subscription_id TEXT PRIMARY KEY,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL
);
"""


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _at(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def _time(value: int | None) -> datetime | None:
    return None if value is None else _at(value)


@dataclass(frozen=True)
class OutboxRow:
    """A message to one subscription, as first written."""

    webhook_id: str
    subscription_id: str
    message_id: str
    type: str
    body: bytes


@dataclass(frozen=True)
class Pending:
    """A row due for an attempt."""

    webhook_id: str
    subscription_id: str
    type: str
    body: bytes
    attempts: int
    round_attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as the log topic carries it."""

    id: int
    webhook_id: str
    subscription_id: str
    attempt: int
    status_code: int | None
    error: str | None
    latency_ms: float
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "webhook_id": self.webhook_id,
            "subscription": self.subscription_id,
            "attempt": self.attempt,
            "status_code": self.status_code,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 3),
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Row:
    """A row's state, for the log and for tests."""

    webhook_id: str
    subscription_id: str
    message_id: str
    state: str
    attempts: int
    next_attempt_at: datetime


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: transactions are opened explicitly, one per write.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _write(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    # -- consuming -----------------------------------------------------------------------------

    def offsets(self) -> dict[Position, int]:
        rows = self._db.execute("SELECT topic, partition, next_offset FROM offsets")
        return {(topic, partition): offset for topic, partition, offset in rows}

    def start_at(self, positions: Mapping[Position, int]) -> None:
        """Where partitions never read before start; a stored offset is kept."""
        db = self._write()
        try:
            db.executemany(
                "INSERT OR IGNORE INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)",
                [(topic, partition, offset) for (topic, partition), offset in positions.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def enqueue(self, rows: Iterable[OutboxRow], offsets: Mapping[Position, int], now: datetime) -> int:
        """The rows, and the offsets read up to, in one transaction; returns the rows new to the outbox."""
        db = self._write()
        try:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (webhook_id, subscription_id, message_id, type, body, state,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
                [
                    (row.webhook_id, row.subscription_id, row.message_id, row.type, row.body, *[_ms(now)] * 2)
                    for row in rows
                ],
            )
            added = db.total_changes - before
            db.executemany(
                "INSERT INTO offsets (topic, partition, next_offset) VALUES (?, ?, ?)"
                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, partition, offset) for (topic, partition), offset in offsets.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return added

    # -- dispatching ---------------------------------------------------------------------------

    def due(self, now: datetime, limit: int = 100) -> list[Pending]:
        rows = self._db.execute(
            "SELECT webhook_id, subscription_id, type, body, attempts, round_attempts, first_attempt_at"
            " FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at, created_at LIMIT ?",
            (_ms(now), limit),
        )
        return [
            Pending(webhook_id, subscription, type_, bytes(body), attempts, round_attempts, _time(first))
            for webhook_id, subscription, type_, body, attempts, round_attempts, first in rows
        ]

    def record(
        self,
        pending: Pending,
        *,
        status_code: int | None,
        error: str | None,
        latency_ms: float,
        at: datetime,
        verdict: Verdict,
    ) -> None:
        """An attempt and what became of its row, in one transaction."""
        db = self._write()
        try:
            db.execute(
                "INSERT INTO attempts (webhook_id, subscription_id, attempt, status_code, error,"
                " latency_ms, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    pending.webhook_id,
                    pending.subscription_id,
                    pending.attempts + 1,
                    status_code,
                    error,
                    latency_ms,
                    _ms(at),
                ),
            )
            next_at = verdict.next_attempt_at or at
            db.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, round_attempts = round_attempts + 1,"
                " first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ?, next_attempt_at = ?"
                " WHERE webhook_id = ?",
                (verdict.state, _ms(at), _ms(at), _ms(next_at), pending.webhook_id),
            )
            if verdict.state == "disabled":
                db.execute(
                    "INSERT OR IGNORE INTO disabled (subscription_id, at, reason) VALUES (?, ?, ?)",
                    (pending.subscription_id, _ms(at), f"{status_code} from the receiver"),
                )
                db.execute(
                    "UPDATE outbox SET state = 'disabled' WHERE subscription_id = ? AND state = 'pending'",
                    (pending.subscription_id,),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def disabled(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT subscription_id, reason FROM disabled"))

    def enable(self, subscription_id: str, now: datetime) -> int:
        """Deliver to a subscription again, with what it missed; returns the rows made due."""
        db = self._write()
        try:
            db.execute("DELETE FROM disabled WHERE subscription_id = ?", (subscription_id,))
            changed = db.execute(
                "UPDATE outbox SET state = 'pending', round_attempts = 0, first_attempt_at = NULL,"
                " next_attempt_at = ? WHERE subscription_id = ? AND state = 'disabled'",
                (_ms(now), subscription_id),
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return changed

    def replay(self, since: datetime, now: datetime) -> int:
        """Every row attempted at or after ``since`` due again now, with the same webhook id and body
        and a fresh 24 hours of retries; returns how many."""
        db = self._write()
        try:
            changed = db.execute(
                "UPDATE outbox SET state = 'pending', round_attempts = 0, first_attempt_at = NULL,"
                " next_attempt_at = ? WHERE state != 'disabled' AND webhook_id IN"
                " (SELECT webhook_id FROM attempts WHERE at >= ?)",
                (_ms(now), _ms(since)),
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return changed

    # -- the attempts log ------------------------------------------------------------------------

    def _attempts(self, query: str, params: Sequence[Any]) -> list[Attempt]:
        return [
            Attempt(id_, webhook_id, subscription, attempt, status, error, latency, _at(at))
            for id_, webhook_id, subscription, attempt, status, error, latency, at in self._db.execute(
                query, params
            )
        ]

    def unpublished(self, limit: int = 500) -> list[Attempt]:
        return self._attempts(
            "SELECT id, webhook_id, subscription_id, attempt, status_code, error, latency_ms, at"
            " FROM attempts WHERE published = 0 ORDER BY id LIMIT ?",
            (limit,),
        )

    def mark_published(self, attempts: Sequence[Attempt]) -> None:
        db = self._write()
        try:
            db.executemany("UPDATE attempts SET published = 1 WHERE id = ?", [(a.id,) for a in attempts])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def recent(self, limit: int = 50) -> list[Attempt]:
        """The latest attempts, newest first."""
        return self._attempts(
            "SELECT id, webhook_id, subscription_id, attempt, status_code, error, latency_ms, at"
            " FROM attempts ORDER BY id DESC LIMIT ?",
            (limit,),
        )

    def rows(self) -> list[Row]:
        found = self._db.execute(
            "SELECT webhook_id, subscription_id, message_id, state, attempts, next_attempt_at FROM outbox"
            " ORDER BY created_at, webhook_id"
        )
        return [
            Row(webhook_id, subscription, message, state, attempts, _at(next_at))
            for webhook_id, subscription, message, state, attempts, next_at in found
        ]
