"""The read store's tables and queries (SQLAlchemy Core: SQLite embedded, PostgreSQL by URL).

Each applied batch of log records is one store transaction together with the positions it advances
to: nothing is applied twice and nothing is skipped across restarts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from projections.cases.fold import CaseState

metadata = sa.MetaData()


def _seq() -> sa.Column[int]:
    # SQLite numbers rows only with INTEGER PRIMARY KEY; PostgreSQL takes a 64-bit identity.
    return sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )


#: The next offset to read of each topic partition.
positions = sa.Table(
    "positions",
    metadata,
    sa.Column("topic", sa.String(249), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
)

#: Every receipt the hub sent a national system; a resubmission earns a receipt of its own.
receipts = sa.Table(
    "receipts",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("sender", sa.String(2), nullable=False),
    sa.Column("event_id", sa.String(36)),
    sa.Column("case_id", sa.String(80)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("topic", "partition", "offset", name="receipts_position"),
    sa.Index("receipts_by_event", "sender", "event_id", "seq"),
)

#: What partner countries sent to each country's focal points, as routed (minimised, sealed).
inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("case_id", sa.String(80), nullable=False),
    sa.Column("source_country", sa.String(2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("country", "event_id", name="inbox_once"),
    sa.Index("inbox_by_case", "country", "case_id", "seq"),
)

#: The hub's log of accepted events, as submitted (each country reads its own from here).
accepted = sa.Table(
    "accepted",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("case_id", sa.String(80), nullable=False, index=True),
    sa.Column("source_country", sa.String(2), nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

#: Each case's folded state (no personal data) and the countries party to it.
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("case_id", sa.String(80), primary_key=True),
    sa.Column("parties", sa.String(64), nullable=False),
    sa.Column("state", sa.Text, nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("alert_id", sa.String(200), nullable=False),
    sa.Column("case_id", sa.String(80), nullable=False),
    sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.UniqueConstraint("country", "alert_id", name="alerts_once"),
)

#: Who read what of which case (from the audit log).
audit = sa.Table(
    "audit",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("case_id", sa.String(80), index=True),
    sa.Column("record", sa.Text, nullable=False),
    sa.UniqueConstraint("request_id", "case_id", name="audit_once"),
)

#: The regional statistics as published (``lintas.regional.stats``): each document whole, by its id.
publications = sa.Table(
    "publications",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("period_first", sa.String(7), nullable=False),
    sa.Column("period_last", sa.String(7), nullable=False),
    sa.Column("published", sa.String(7), nullable=False),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Index("publications_in_order", "logged_at", "partition", "offset"),
)

#: What the router refused (``lintas.deadletter``): the reason, where it came from, and the bytes as
#: they arrived, kept only to be sent again (never shown: they may hold a person's data).
dead_letters = sa.Table(
    "dead_letters",
    metadata,
    _seq(),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("key", sa.String(200)),
    sa.Column("source_topic", sa.String(249)),
    sa.Column("source_partition", sa.Integer),
    sa.Column("source_offset", sa.BigInteger),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("value", sa.LargeBinary, nullable=False),
    sa.Column("headers", sa.Text, nullable=False),
    sa.Column("topic", sa.String(249), nullable=False),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("topic", "partition", "offset", name="dead_letters_position"),
)

#: The tables a replay rebuilds (credentials live in the same database but are not projections).
PROJECTION_TABLES = (positions, receipts, inbox, accepted, cases, alerts, audit, publications, dead_letters)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    seq: int
    reason: str
    error: str
    key: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    logged_at: datetime
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Position:
    topic: str
    partition: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class InboxRow:
    seq: int
    country: str
    event_id: str
    event_type: str
    case_id: str
    source_country: str
    occurred_at: datetime
    received_at: datetime
    value: bytes


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event_id: str
    event_type: str
    case_id: str
    source_country: str
    occurred_at: datetime
    value: bytes


@dataclass(frozen=True, slots=True)
class StoredReceipt:
    seq: int
    sender: str
    event_id: str | None
    status: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredAlert:
    seq: int
    country: str
    alert_id: str
    case_id: str
    record: dict[str, Any]


def store_url(location: str | Path) -> str:
    """A database URL: a URL as given, or a file path for the embedded SQLite store."""
    text = str(location)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes: every time in the store is UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> datetime:
    # SQLite stores and compares a datetime's wall-clock digits, ignoring its offset: every time
    # written or compared is first brought to UTC (naive ones are taken as UTC).
    return _aware(moment).astimezone(UTC)


class ReadStore:
    """The projections of one deployment, in one database."""

    def __init__(self, location: str | Path, *, engine: Engine | None = None) -> None:
        self.url = store_url(location)
        self.engine = engine or _engine(self.url)

    def create(self) -> ReadStore:
        metadata.create_all(self.engine)
        return self

    def dispose(self) -> None:
        self.engine.dispose()

    def drop_projections(self) -> None:
        metadata.drop_all(self.engine, tables=list(PROJECTION_TABLES))

    # -- writing (the projector) -------------------------------------------------------------------

    def transaction(self) -> Any:
        return self.engine.begin()

    def positions(self) -> dict[tuple[str, int], int]:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(positions)).all()
        return {(row.topic, row.partition): row.next_offset for row in rows}

    def advance(self, connection: Connection, advanced: Iterable[Position]) -> None:
        """Move positions forward, never back: a batch applied again (by a projector behind
        another on the same store) leaves the furthest position reached."""
        for position in advanced:
            statement = _insert_statement(connection, positions).values(
                topic=position.topic, partition=position.partition, next_offset=position.next_offset
            )
            further = statement.excluded.next_offset
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["topic", "partition"],
                    set_={
                        "next_offset": sa.case(
                            (further > positions.c.next_offset, further), else_=positions.c.next_offset
                        )
                    },
                )
            )

    def add_receipt(self, connection: Connection, row: Mapping[str, Any]) -> None:
        _insert_new(connection, receipts, row, ("topic", "partition", "offset"))

    def add_inbox(self, connection: Connection, row: Mapping[str, Any]) -> None:
        _insert_new(connection, inbox, row, ("country", "event_id"))

    def add_accepted(self, connection: Connection, row: Mapping[str, Any]) -> None:
        _insert_new(connection, accepted, row, ("event_id",))

    def add_alert(self, connection: Connection, row: Mapping[str, Any]) -> None:
        _insert_new(connection, alerts, row, ("country", "alert_id"))

    def add_audit(self, connection: Connection, row: Mapping[str, Any]) -> None:
        if row.get("case_id") is None:
            # A read of no case: NULLs never conflict in a unique constraint, so look first.
            known = connection.execute(
                sa.select(audit.c.seq).where(
                    audit.c.request_id == row["request_id"], audit.c.case_id.is_(None)
                )
            ).first()
            if known is not None:
                return
        _insert_new(connection, audit, row, ("request_id", "case_id"))

    def add_dead_letter(self, connection: Connection, row: Mapping[str, Any]) -> None:
        _insert_new(connection, dead_letters, row, ("topic", "partition", "offset"))

    def add_publication(self, connection: Connection, row: Mapping[str, Any]) -> None:
        """A publication published twice (the same id) is kept as it was first."""
        _insert_new(connection, publications, row, ("id",))

    def case_state_in(self, connection: Connection, case_id: str) -> CaseState | None:
        row = connection.execute(sa.select(cases.c.state).where(cases.c.case_id == case_id)).first()
        return None if row is None else CaseState.from_json(row.state.encode())

    def put_case(self, connection: Connection, state: CaseState) -> None:
        parties = sorted({state.host.value, *([state.home.value] if state.home else []), *state.transit})
        _upsert(
            connection,
            cases,
            {
                "case_id": state.case_id,
                "parties": "," + ",".join(parties) + ",",
                "state": state.to_json().decode(),
            },
            ("case_id",),
            update=("parties", "state"),
        )

    # -- reading (the API) -------------------------------------------------------------------------

    def latest_receipt(self, sender: str, event_id: str, *, after: int = 0) -> StoredReceipt | None:
        query = (
            sa.select(receipts)
            .where(receipts.c.sender == sender, receipts.c.event_id == event_id, receipts.c.seq > after)
            .order_by(receipts.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return StoredReceipt(row.seq, row.sender, row.event_id, row.status, json.loads(row.record))

    def receipt_seq(self) -> int:
        """The newest receipt's sequence number (0 when there is none)."""
        with self.engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.max(receipts.c.seq))).scalar() or 0)

    def inbox_page(
        self,
        country: str,
        *,
        after: int = 0,
        limit: int = 50,
        case_id: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[InboxRow]:
        query = sa.select(inbox).where(inbox.c.country == country, inbox.c.seq > after)
        if case_id is not None:
            query = query.where(inbox.c.case_id == case_id)
        if event_type is not None:
            query = query.where(inbox.c.event_type == event_type)
        if since is not None:
            query = query.where(inbox.c.occurred_at >= _utc(since))
        if until is not None:
            query = query.where(inbox.c.occurred_at < _utc(until))
        query = query.order_by(inbox.c.seq).limit(limit)
        with self.engine.connect() as connection:
            return [_inbox_row(row) for row in connection.execute(query)]

    def case_parties(self, case_id: str) -> frozenset[str]:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(cases.c.parties).where(cases.c.case_id == case_id)).first()
        return frozenset() if row is None else frozenset(filter(None, row.parties.split(",")))

    def case_state(self, case_id: str) -> CaseState | None:
        with self.engine.connect() as connection:
            return self.case_state_in(connection, case_id)

    def case_states(self, *, party: str | None = None) -> dict[str, CaseState]:
        query = sa.select(cases.c.state)
        if party is not None:
            query = query.where(cases.c.parties.contains(f",{party},"))
        with self.engine.connect() as connection:
            states = [CaseState.from_json(row.state.encode()) for row in connection.execute(query)]
        return {state.case_id: state for state in states}

    def own_events(self, case_id: str, country: str) -> list[StoredEvent]:
        """The events of a case that ``country`` itself sent (as submitted)."""
        query = (
            sa.select(accepted)
            .where(accepted.c.case_id == case_id, accepted.c.source_country == country)
            .order_by(accepted.c.seq)
        )
        with self.engine.connect() as connection:
            return [_stored_event(row) for row in connection.execute(query)]

    def case_events(self, case_ids: Sequence[str] | None = None) -> Iterator[StoredEvent]:
        """Accepted events in log order (of some cases, or all): for a rebuild as of a past date."""
        query = sa.select(accepted).order_by(accepted.c.seq)
        if case_ids is not None:
            query = query.where(accepted.c.case_id.in_(list(case_ids)))
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                yield _stored_event(row)

    def alerts_after(self, country: str, *, after: int = 0, limit: int = 100) -> list[StoredAlert]:
        query = (
            sa.select(alerts)
            .where(alerts.c.country == country, alerts.c.seq > after)
            .order_by(alerts.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                StoredAlert(row.seq, row.country, row.alert_id, row.case_id, json.loads(row.record))
                for row in connection.execute(query)
            ]

    def access_log(self, case_id: str) -> list[dict[str, Any]]:
        query = sa.select(audit.c.record).where(audit.c.case_id == case_id).order_by(audit.c.seq)
        with self.engine.connect() as connection:
            return [json.loads(row.record) for row in connection.execute(query)]

    def latest_publication(self) -> dict[str, Any] | None:
        """The document of the publication published last (in the log's order)."""
        query = (
            sa.select(publications.c.document)
            .order_by(
                publications.c.logged_at.desc(), publications.c.partition.desc(), publications.c.offset.desc()
            )
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _document(row.document)

    def publication(self, publication_id: str) -> dict[str, Any] | None:
        query = sa.select(publications.c.document).where(publications.c.id == publication_id)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _document(row.document)

    def inbox_newest(self, country: str, *, before: int | None = None, limit: int = 50) -> list[InboxRow]:
        """A page of ``country``'s inbox, newest first (the API pages oldest first, by cursor)."""
        query = sa.select(inbox).where(inbox.c.country == country)
        if before is not None:
            query = query.where(inbox.c.seq < before)
        query = query.order_by(inbox.c.seq.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_inbox_row(row) for row in connection.execute(query)]

    def alerts_newest(self, country: str, *, limit: int = 100) -> list[StoredAlert]:
        query = (
            sa.select(alerts).where(alerts.c.country == country).order_by(alerts.c.seq.desc()).limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                StoredAlert(row.seq, row.country, row.alert_id, row.case_id, json.loads(row.record))
                for row in connection.execute(query)
            ]

    def publications(self, limit: int = 24) -> list[dict[str, Any]]:
        """The documents of the last ``limit`` publications, oldest first."""
        query = (
            sa.select(publications.c.document)
            .order_by(
                publications.c.logged_at.desc(), publications.c.partition.desc(), publications.c.offset.desc()
            )
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_document(row.document) for row in reversed(rows)]

    def receipts_by_status(self) -> dict[str, dict[str, int]]:
        """Receipts counted per sending country and status."""
        query = sa.select(receipts.c.sender, receipts.c.status, sa.func.count()).group_by(
            receipts.c.sender, receipts.c.status
        )
        found: dict[str, dict[str, int]] = {}
        with self.engine.connect() as connection:
            for sender, status, count in connection.execute(query):
                found.setdefault(sender, {})[status] = int(count)
        return found

    def dead_letters(self, *, limit: int = 100) -> list[DeadLetter]:
        """The newest dead letters first."""
        query = sa.select(dead_letters).order_by(dead_letters.c.seq.desc()).limit(limit)
        with self.engine.connect() as connection:
            return [_dead_letter(row) for row in connection.execute(query)]

    def dead_letter(self, seq: int) -> DeadLetter | None:
        query = sa.select(dead_letters).where(dead_letters.c.seq == seq)
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _dead_letter(row)

    def dead_letter_count(self) -> dict[str, int]:
        query = sa.select(dead_letters.c.reason, sa.func.count()).group_by(dead_letters.c.reason)
        with self.engine.connect() as connection:
            return {reason: int(count) for reason, count in connection.execute(query)}

    def content(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection row without the store's own sequence numbers: two stores built from the
        same log have the same content."""
        found: dict[str, list[tuple[Any, ...]]] = {}
        with self.engine.connect() as connection:
            for table in PROJECTION_TABLES:
                columns = [column for column in table.columns if column.name != "seq"]
                rows = connection.execute(sa.select(*columns)).all()
                found[table.name] = sorted((tuple(row) for row in rows), key=repr)
        return found


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            # WAL: the API reads while the projector writes.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _insert_statement(connection: Connection, table: sa.Table) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_new(
    connection: Connection, table: sa.Table, row: Mapping[str, Any], unique: Sequence[str]
) -> None:
    values = {name: _utc(value) if isinstance(value, datetime) else value for name, value in row.items()}
    statement = _insert_statement(connection, table).values(**values)
    connection.execute(statement.on_conflict_do_nothing(index_elements=list(unique)))


def _upsert(
    connection: Connection,
    table: sa.Table,
    row: Mapping[str, Any],
    unique: Sequence[str],
    *,
    update: Sequence[str],
) -> None:
    statement = _insert_statement(connection, table).values(**row)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(unique), set_={name: statement.excluded[name] for name in update}
        )
    )


def _document(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    return document


def _dead_letter(row: Any) -> DeadLetter:
    headers = [(name, bytes.fromhex(value)) for name, value in json.loads(row.headers)]
    return DeadLetter(
        row.seq,
        row.reason,
        row.error,
        row.key,
        row.source_topic,
        row.source_partition,
        row.source_offset,
        _aware(row.logged_at),
        bytes(row.value),
        headers,
    )


def _inbox_row(row: Any) -> InboxRow:
    return InboxRow(
        row.seq,
        row.country,
        row.event_id,
        row.event_type,
        row.case_id,
        row.source_country,
        _aware(row.occurred_at),
        _aware(row.received_at),
        bytes(row.value),
    )


def _stored_event(row: Any) -> StoredEvent:
    return StoredEvent(
        row.seq,
        row.event_id,
        row.event_type,
        row.case_id,
        row.source_country,
        _aware(row.occurred_at),
        bytes(row.value),
    )
