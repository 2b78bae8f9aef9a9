"""Ed25519 signatures of national systems and of the hub, and the directory of their public keys.

Every national system signs what it publishes with its country's key; the hub verifies against the key
directory (``config/keys.yaml``) and signs what it creates (receipts, alerts) with the ``HUB`` key. A key
is named by its signer and key id and is valid for a period: rotating a key adds a new one with a later
``valid_from`` and closes the old one with ``valid_until``, so events signed before the rotation still
verify at the time they were signed.

The demo keys below derive from a published seed: anyone can sign with them. They exist so the demo and
the tests run without a key ceremony; a deployment lists its real keys and sets ``allow_demo`` False.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from hub.agreements import config_root
from hub.errors import ConfigError, LintasError
from hub.validation import first_error

#: Start of validity of the demo keys (and the default of :meth:`Signer.public`).
DEMO_VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)

#: Signers listed in the shipped ``config/keys.yaml``: the countries of the corridors and the hub.
DEMO_SIGNERS = ("TH", "MM", "KH", "LA", "VN", "CN", "MY", "ID", "PH", "JP", "SG", "BN", "HUB")

HUB = "HUB"

_SEED_DOMAIN = b"lintas-demo-signing-key|"
_SIGNATURE_SIZE = 64
_KEY_SIZE = 32


class SignatureError(LintasError):
    """A signature that cannot be accepted. ``reason`` is ``"bad_signature"`` or ``"unknown_key"``."""

    def __init__(self, reason: str, signer: str, key_id: str, message: str) -> None:
        self.reason = reason
        self.signer = signer
        self.key_id = key_id
        super().__init__(message)


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name}: must carry a time zone (got naive {value.isoformat()})")


@dataclass(frozen=True)
class PublicKey:
    """One signer's public key, its id and the period in which it may have signed."""

    signer: str
    key_id: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime | None
    demo: bool = False

    def __post_init__(self) -> None:
        if len(self.public_key) != _KEY_SIZE:
            raise ValueError(f"public_key: an Ed25519 key is {_KEY_SIZE} bytes, got {len(self.public_key)}")
        _require_aware("valid_from", self.valid_from)
        _require_aware("valid_until", self.valid_until)
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError(f"valid_until: {self.valid_until.isoformat()} is not after valid_from")

    def valid_at(self, at: datetime) -> bool:
        _require_aware("at", at)
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)

    def period(self) -> str:
        """The validity period, for messages."""
        until = self.valid_until.isoformat() if self.valid_until else "no end"
        return f"{self.valid_from.isoformat()} to {until}"


class Signer:
    """An Ed25519 private key with the signer and key id it signs as."""

    def __init__(
        self, private_key: Ed25519PrivateKey, signer: str, key_id: str, *, demo: bool = False
    ) -> None:
        self._private_key = private_key
        self.signer = signer
        self.key_id = key_id
        self.demo = demo

    def __repr__(self) -> str:
        return f"Signer(signer={self.signer!r}, key_id={self.key_id!r}, demo={self.demo})"

    @classmethod
    def generate(cls, signer: str, key_id: str) -> Signer:
        return cls(Ed25519PrivateKey.generate(), signer, key_id)

    @classmethod
    def from_seed(cls, signer: str, key_id: str, seed: bytes, *, demo: bool = False) -> Signer:
        if len(seed) != _KEY_SIZE:
            raise ValueError(f"seed: an Ed25519 seed is {_KEY_SIZE} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(seed), signer, key_id, demo=demo)

    def sign(self, message: bytes) -> bytes:
        return self._private_key.sign(message)

    def public_bytes(self) -> bytes:
        return self._private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def public(
        self, valid_from: datetime = DEMO_VALID_FROM, valid_until: datetime | None = None
    ) -> PublicKey:
        return PublicKey(self.signer, self.key_id, self.public_bytes(), valid_from, valid_until, self.demo)

    def save(self, path: Path) -> None:
        """Write the key as PKCS#8 PEM after a ``signer:``/``key_id:`` header, readable by the owner only."""
        pem = self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        header = f"signer: {self.signer}\nkey_id: {self.key_id}\n".encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 from the start: a chmod afterwards would leave a window with the key readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(header + pem)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: Path, *, signer: str | None = None, key_id: str | None = None) -> Signer:
        """Read a key written by :meth:`save`, or a PEM or 32-byte raw seed with ``signer`` and ``key_id``."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
        header: dict[str, str] = {}
        if len(data) == _KEY_SIZE and b"-----BEGIN" not in data:
            private_key = Ed25519PrivateKey.from_private_bytes(data)
        else:
            start = data.find(b"-----BEGIN")
            if start < 0:
                raise ConfigError(f"{path}: not a PEM key nor a {_KEY_SIZE}-byte raw seed")
            for line in data[:start].decode("utf-8", "replace").splitlines():
                field, _, value = line.partition(":")
                if value.strip():
                    header[field.strip()] = value.strip()
            try:
                loaded = serialization.load_pem_private_key(data[start:], password=None)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{path}: not a readable PEM private key: {exc}") from exc
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ConfigError(f"{path}: the key is {type(loaded).__name__}, not Ed25519")
            private_key = loaded
        name: str | None = signer or header.get("signer")
        ident: str | None = key_id or header.get("key_id")
        if not name or not ident:
            missing = "signer" if not name else "key_id"
            raise ConfigError(f"{path}: {missing}: not in the file and not given")
        return cls(private_key, name, ident)


def demo_seed(signer: str, version: int = 1) -> bytes:
    """The published seed of a demo key: public on purpose, never to protect real data."""
    return hashlib.sha256(_SEED_DOMAIN + signer.encode() + b"|" + str(version).encode()).digest()


def demo_signer(signer: str, version: int = 1) -> Signer:
    return Signer.from_seed(signer, f"{signer.lower()}-demo-{version}", demo_seed(signer, version), demo=True)


class KeyDirectory:
    """The public keys of every signer; verifies signatures against the key valid when they were made."""

    def __init__(self, keys: Iterable[PublicKey], *, allow_demo: bool = True) -> None:
        self.allow_demo = allow_demo
        self._keys: dict[tuple[str, str], PublicKey] = {}
        # Parsed once: verification is on the routing hot path.
        self._loaded: dict[tuple[str, str], Ed25519PublicKey] = {}
        for key in keys:
            ident = (key.signer, key.key_id)
            if ident in self._keys:
                raise ValueError(f"key {key.key_id} of signer {key.signer} is listed twice")
            self._keys[ident] = key
            self._loaded[ident] = Ed25519PublicKey.from_public_bytes(key.public_key)

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, signer: str, key_id: str) -> PublicKey | None:
        return self._keys.get((signer, key_id))

    def current(self, signer: str, at: datetime) -> PublicKey | None:
        """The key ``signer`` should sign with at ``at``: the most recent one valid then."""
        valid = [
            key
            for key in self._keys.values()
            if key.signer == signer and key.valid_at(at) and (self.allow_demo or not key.demo)
        ]
        return max(valid, key=lambda key: key.valid_from, default=None)

    def verify(self, signer: str, key_id: str, signature: bytes, message: bytes, *, at: datetime) -> None:
        key = self._keys.get((signer, key_id))
        if key is None:
            known = sorted(k for s, k in self._keys if s == signer)
            detail = f"its keys are {', '.join(known)}" if known else "the signer has no key at all"
            raise SignatureError(
                "unknown_key",
                signer,
                key_id,
                f"signer {signer}: no key {key_id!r} in the key directory; {detail}",
            )
        if key.demo and not self.allow_demo:
            raise SignatureError(
                "unknown_key",
                signer,
                key_id,
                f"signer {signer}: key {key_id} is a public demo key, and demo keys are not allowed here",
            )
        if not key.valid_at(at):
            raise SignatureError(
                "unknown_key",
                signer,
                key_id,
                f"signer {signer}: key {key_id} is valid from {key.period()}, "
                f"not at {at.isoformat()} when the signature was made",
            )
        if len(signature) != _SIGNATURE_SIZE:
            raise SignatureError(
                "bad_signature",
                signer,
                key_id,
                f"signer {signer}: an Ed25519 signature is {_SIGNATURE_SIZE} bytes, got {len(signature)}",
            )
        try:
            self._loaded[(signer, key_id)].verify(signature, message)
        except InvalidSignature:
            raise SignatureError(
                "bad_signature",
                signer,
                key_id,
                f"signer {signer}: signature with key {key_id} does not match the message",
            ) from None


class _Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _KeyEntry(_Config):
    signer: str = Field(pattern=r"^([A-Z]{2}|HUB)$")
    key_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    public_key: bytes
    valid_from: AwareDatetime
    valid_until: AwareDatetime | None = None
    demo: bool = False

    @field_validator("public_key", mode="before")
    @classmethod
    def _base64(cls, value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError(f"must be base64 text (got {type(value).__name__})")
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("not valid base64") from None
        if len(raw) != _KEY_SIZE:
            raise ValueError(f"an Ed25519 public key is {_KEY_SIZE} bytes, this one is {len(raw)}")
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> _KeyEntry:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if not self.demo and any(
            self.public_key == demo_signer(self.signer, v).public_bytes() for v in (1, 2, 3)
        ):
            # Its private seed is published: calling it a real key would defeat allow_demo=False.
            raise ValueError("this is a published demo key; it must be marked demo: true")
        return self


class _KeysFile(_Config):
    keys: tuple[_KeyEntry, ...]


def default_keys_path() -> Path:
    return config_root() / "keys.yaml"


def load_key_directory(path: Path | None = None, *, allow_demo: bool = True) -> KeyDirectory:
    source = path or default_keys_path()
    try:
        raw: Any = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{source}: cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: top level must be a mapping")
    try:
        parsed = _KeysFile.model_validate(raw)
    except ValidationError as exc:
        key, reason = first_error(exc)
        raise ConfigError(f"{source}: {key}: {reason}") from exc
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(parsed.keys):
        if (entry.signer, entry.key_id) in seen:
            raise ConfigError(
                f"{source}: keys.{index}.key_id: {entry.key_id} of {entry.signer} is listed twice"
            )
        seen.add((entry.signer, entry.key_id))
    return KeyDirectory(
        (
            PublicKey(e.signer, e.key_id, e.public_key, e.valid_from, e.valid_until, e.demo)
            for e in parsed.keys
        ),
        allow_demo=allow_demo,
    )


def demo_directory_yaml() -> str:
    """The shipped ``config/keys.yaml``: version 1 of every demo key."""
    lines = [
        "# Public DEMO keys. Their private seeds are published in hub/crypto/signing.py (demo_seed), so",
        "# anyone can sign with them: they only let the demo and the tests run without a key ceremony.",
        "# A deployment replaces this file with its countries' real keys and loads it with allow_demo=False.",
        "# Generated by `python -m hub.crypto.signing`; do not edit by hand.",
        "keys:",
    ]
    for signer in DEMO_SIGNERS:
        key = demo_signer(signer).public()
        lines += [
            f"  - signer: {key.signer}",
            f"    key_id: {key.key_id}",
            f"    public_key: {base64.b64encode(key.public_key).decode()}",
            f"    valid_from: {DEMO_VALID_FROM.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            "    valid_until: null",
            "    demo: true",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    target = Path(argv[0]) if argv else default_keys_path()
    target.write_text(demo_directory_yaml(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
