"""The national systems' side of contract v2, for the demo, the benchmarks and the tests: each
country's signing key and the shared key store, so that an event is written as that country's system
writes it (sectioned, sealed under the case's data key, signed with the country's key)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

from hub.contract import DataCategory
from hub.crypto.keystore import KeysDestroyed, KeyStore
from hub.crypto.policy import SEALED_CATEGORIES
from hub.crypto.signing import KeyDirectory, Signer, demo_signer, load_key_directory
from hub.errors import ConfigError
from hub.events import Event
from hub.minimise import minimise
from hub.settings import Settings
from hub.wire.codec import HUB_SIGNER, Wire


class NationalSystems:
    """Writes each event as its source country's system would: ``encode`` is what
    :func:`hub.kafka.publish_events` calls."""

    def __init__(
        self,
        wire: Wire,
        keys: KeyStore,
        *,
        signer_of: Callable[[str], Signer] = demo_signer,
        sensitive: Collection[str] = (),
        omit_erased: bool = False,
    ) -> None:
        self.wire = wire
        self.keys = keys
        #: Send an event of a case whose keys were destroyed without its personal data, as a national
        #: system that knows of the withdrawal does (else :class:`KeysDestroyed` is raised).
        self.omit_erased = omit_erased
        self._signer_of = signer_of
        self._signers: dict[str, Signer] = {}
        self.sensitive = sensitive

    def signer(self, country: str) -> Signer:
        signer = self._signers.get(country)
        if signer is None:
            signer = self._signers[country] = self._signer_of(country)
        return signer

    def encode(self, event: Event) -> bytes:
        signer = self.signer(event.envelope.source_country.value)
        try:
            return self.wire.seal(event, signer, keys=self.keys, sensitive=self.sensitive)
        except KeysDestroyed:
            if not self.omit_erased:
                raise
        kept = [
            category
            for category in DataCategory
            if category.value not in (*SEALED_CATEGORIES, *self.sensitive)
        ]
        return self.wire.seal(minimise(event, kept)[0], signer, keys=self.keys, sensitive=self.sensitive)


def key_directory(settings: Settings) -> KeyDirectory:
    return load_key_directory(settings.keys.directory, allow_demo=settings.keys.allow_demo)


def hub_signer(settings: Settings) -> Signer:
    """The hub's signing key: the configured one, else (only where demo keys are allowed) the demo key."""
    path: Path | None = settings.keys.hub_key
    if path is not None:
        return Signer.load(path)
    if not settings.keys.allow_demo:
        raise ConfigError("keys.hub_key: required when demo keys are not allowed (LINTAS_KEYS__HUB_KEY)")
    return demo_signer(HUB_SIGNER)
