"""Dashboard sessions: a random secret in an HttpOnly, SameSite=Strict cookie, kept only as its
SHA-256 digest beside the credential it was opened with; the bearer credential itself never goes
into a cookie. A session ends after eight idle hours, at sign-out, or with its credential."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from connectors.api.credentials import CredentialError, Credentials, Principal
from connectors.readstore.store import ReadStore

COOKIE = "lintas_session"
IDLE = timedelta(hours=8)

sessions = sa.Table(
    "dashboard_sessions",
    sa.MetaData(),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("credential_id", sa.String(16), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    #: sent back with every form that changes something: a page of another site cannot know it
    csrf: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Sessions:
    def __init__(self, store: ReadStore, credentials: Credentials) -> None:
        self.engine = store.engine
        self.credentials = credentials
        sessions.metadata.create_all(self.engine)

    def open(self, token: str, *, now: datetime) -> tuple[str, Session]:
        """Authenticate ``token`` and open a session: (the cookie's secret, the session)."""
        principal = self.credentials.authenticate(token.strip(), now=now)
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.expires_at < now))
            connection.execute(
                sessions.insert().values(
                    digest=_digest(secret),
                    credential_id=principal.credential_id,
                    csrf=csrf,
                    expires_at=now + IDLE,
                )
            )
        return secret, Session(principal, csrf)

    def find(self, secret: str | None, *, now: datetime) -> Session | None:
        if not secret or len(secret) > 100:
            return None
        digest = _digest(secret)
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(sessions).where(sessions.c.digest == digest)).first()
            if row is None or _aware(row.expires_at) <= now:
                return None
            connection.execute(
                sessions.update().where(sessions.c.digest == digest).values(expires_at=now + IDLE)
            )
        try:
            principal = self.credentials.active(row.credential_id, now=now)
        except CredentialError:
            self.close(secret)
            return None
        return Session(principal, row.csrf)

    def close(self, secret: str | None) -> None:
        if secret:
            with self.engine.begin() as connection:
                connection.execute(sessions.delete().where(sessions.c.digest == _digest(secret)))


def same_token(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())
