"""The passwords of the SCRAM principals: one file per principal, readable by its owner only.

A directory of ``<principal>.password`` files, so that a deployment hands each process only its own
(``docker/compose.yaml`` mounts them as secrets) and the embedded broker keeps them in its home.
On a managed cluster the passwords live in the deployment's secret store instead.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from hub.errors import BrokerError

__all__ = ["CredentialStore", "new_password"]

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_password() -> str:
    """A random password (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class CredentialStore:
    """``<directory>/<principal>.password`` files (0600; the directory 0700)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:  # never the passwords
        return f"CredentialStore({str(self.directory)!r})"

    def file(self, user: str) -> Path:
        if not _NAME.match(user):
            raise BrokerError(f"principal name {user!r}: letters, digits, '.', '_' and '-' only")
        return self.directory / f"{user}.password"

    def get(self, user: str) -> str | None:
        try:
            return self.file(user).read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BrokerError(f"unreadable password of {user!r} in {self.directory}: {exc}") from exc

    def require(self, user: str) -> str:
        password = self.get(user)
        if password is None:
            raise BrokerError(f"no password for Kafka principal {user!r} in {self.directory}")
        return password

    def ensure(self, user: str) -> str:
        """The password of ``user``, created if there is none yet."""
        return self.get(user) or self.put(user, new_password())

    def users(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(path.name.removesuffix(".password") for path in self.directory.glob("*.password"))

    def put(self, user: str, password: str) -> str:
        target = self.file(user)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        tmp.replace(target)  # atomic: a reader sees the old password or the new one
        self._marker(user).unlink(missing_ok=True)
        return password

    def revoke(self, user: str) -> None:
        """Forget the password and remember the revocation: principals the layout makes on their own
        (``hub.broker.layout``) are not made again for a revoked one, until ``put`` gives it a new
        password (``lintas acl add``)."""
        self.remove(user)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._marker(user).touch()

    def revoked(self, user: str) -> bool:
        return self._marker(user).is_file()

    def _marker(self, user: str) -> Path:
        return self.file(user).with_suffix(".revoked")

    def remove(self, user: str) -> bool:
        try:
            self.file(user).unlink()
        except FileNotFoundError:
            return False
        return True
