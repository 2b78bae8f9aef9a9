"""Principals and their credentials: a country plus a role, one bearer token each.

A token is shown once when issued and stored only as a SHA-256 digest (the secret is 256 random bits,
so a slow password hash buys nothing); it is compared in constant time, expires, and can be revoked."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from connectors.readstore.store import ReadStore

TOKEN_PREFIX = "lintas_"  # noqa: S105 - a prefix, not a secret
_TOKEN = re.compile(r"^lintas_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
DEFAULT_VALIDITY = timedelta(days=90)


class Role(StrEnum):
    #: an NRM agency's system: publishes its country's events, reads its own receipts
    NATIONAL_SYSTEM = "national-system"
    #: a focal point (liaison officer): its country's inbox, case threads, alerts and agendas
    FOCAL_POINT = "focal-point"
    #: the regional body: the disclosure-controlled statistics, never a case
    REGIONAL = "regional"
    #: runs the hub: health and lag, never a case's content
    OPERATOR = "operator"


credentials = sa.Table(
    "credentials",
    sa.MetaData(),
    sa.Column("credential_id", sa.String(16), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("agency", sa.String(48)),
    sa.Column("label", sa.String(200)),
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True, slots=True)
class Principal:
    credential_id: str
    country: str
    role: Role
    agency: str | None = None

    @property
    def name(self) -> str:
        return f"{self.country}/{self.role.value}/{self.agency or '-'}/{self.credential_id}"


@dataclass(frozen=True, slots=True)
class Issued:
    principal: Principal
    token: str
    expires_at: datetime


class CredentialError(Exception):
    """Why a credential is refused; the message never contains the secret."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Credentials:
    """The credential table of a store's database."""

    def __init__(self, store: ReadStore) -> None:
        self.engine = store.engine
        credentials.metadata.create_all(self.engine)

    def issue(
        self,
        country: str,
        role: Role,
        *,
        agency: str | None = None,
        label: str | None = None,
        validity: timedelta = DEFAULT_VALIDITY,
        now: datetime | None = None,
    ) -> Issued:
        if not re.fullmatch(r"[A-Z]{2}", country):
            raise CredentialError(f"country: {country!r} is not a two-letter code")
        if agency is not None and not agency.startswith(f"{country}-"):
            raise CredentialError(f"agency: {agency!r} is not an agency of {country}")
        moment = now or datetime.now(UTC)
        credential_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        expires_at = moment + validity
        with self.engine.begin() as connection:
            connection.execute(
                credentials.insert().values(
                    credential_id=credential_id,
                    digest=_digest(secret),
                    country=country,
                    role=role.value,
                    agency=agency,
                    label=label,
                    issued_at=moment,
                    expires_at=expires_at,
                )
            )
        principal = Principal(credential_id, country, role, agency)
        return Issued(principal, f"{TOKEN_PREFIX}{credential_id}_{secret}", expires_at)

    def authenticate(self, token: str, *, now: datetime | None = None) -> Principal:
        found = _TOKEN.match(token)
        if found is None:
            raise CredentialError("the credential is not a Lintas token")
        credential_id, secret = found.groups()
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(credentials).where(credentials.c.credential_id == credential_id)
            ).first()
        # Compared even when unknown, so that timing does not tell which ids exist.
        expected = row.digest if row is not None else _digest("")
        if not hmac.compare_digest(expected, _digest(secret)) or row is None:
            raise CredentialError("unknown credential")
        if row.revoked_at is not None:
            raise CredentialError("the credential was revoked")
        if _aware(row.expires_at) <= (now or datetime.now(UTC)):
            raise CredentialError("the credential has expired")
        return Principal(row.credential_id, row.country, Role(row.role), row.agency)

    def active(self, credential_id: str, *, now: datetime | None = None) -> Principal:
        """The principal of a credential authenticated before (a dashboard session), if it still
        holds: revoking or expiry ends every session made with it."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(credentials).where(credentials.c.credential_id == credential_id)
            ).first()
        if row is None:
            raise CredentialError("unknown credential")
        if row.revoked_at is not None:
            raise CredentialError("the credential was revoked")
        if _aware(row.expires_at) <= (now or datetime.now(UTC)):
            raise CredentialError("the credential has expired")
        return Principal(row.credential_id, row.country, Role(row.role), row.agency)

    def revoke(self, credential_id: str, *, now: datetime | None = None) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                credentials.update()
                .where(credentials.c.credential_id == credential_id, credentials.c.revoked_at.is_(None))
                .values(revoked_at=now or datetime.now(UTC))
            )
        return bool(result.rowcount)

    def listing(self) -> list[dict[str, object]]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(credentials).order_by(credentials.c.country, credentials.c.issued_at)
            ).all()
        return [
            {
                "credential_id": row.credential_id,
                "country": row.country,
                "role": row.role,
                "agency": row.agency,
                "label": row.label,
                "issued_at": _aware(row.issued_at).isoformat(),
                "expires_at": _aware(row.expires_at).isoformat(),
                "revoked_at": None if row.revoked_at is None else _aware(row.revoked_at).isoformat(),
            }
            for row in rows
        ]
