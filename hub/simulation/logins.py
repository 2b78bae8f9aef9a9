"""The demo hub's logins: where its API and dashboard are, and one credential per country and role.
Written by ``lintas up``, read by the simulation (the national systems' tokens) and by people trying
the dashboard. The file holds bearer tokens: it is written owner-only (0600) and atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from hub.errors import ConfigError

__all__ = ["DemoLogins", "Login"]


class Login(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str
    role: str
    agency: str | None = None
    token: str
    label: str


class DemoLogins(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str
    dashboard_url: str
    logins: list[Login]
    #: The settings every process of this hub shares (its clock, stores, broker's home; never a
    #: secret), so that a command started by hand joins the running hub: :meth:`join`.
    environment: dict[str, str] = Field(default_factory=dict)

    def join(self, environ: dict[str, str] | None = None) -> None:
        """Take the hub's shared settings where the environment does not set them itself."""
        target = os.environ if environ is None else environ
        for name, value in self.environment.items():
            target.setdefault(name, value)

    def token_of(self, country: str, role: str) -> str:
        """The token of ``country``'s first login of ``role``."""
        return self.login_of(country, role).token

    def login_of(self, country: str, role: str) -> Login:
        for login in self.logins:
            if login.country == country and login.role == role:
                return login
        raise ConfigError(f"logins: no {role} login of {country}")

    def save(self, path: Path) -> None:
        """Write to ``path`` with mode 0600, replacing any file there at once (never half written)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            # mkstemp creates the file 0600 already; said again, in case of an unusual umask policy.
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(self.model_dump_json(indent=2) + "\n")
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(name, path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> DemoLogins:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
        try:
            return cls.model_validate_json(text)
        except ValueError as exc:
            raise ConfigError(f"{path}: not a logins file: {exc}") from exc
