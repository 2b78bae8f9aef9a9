"""AES-256-GCM sealing of event sections under a case's data key.

A sealed section is ``nonce || ciphertext || tag``. Its associated data (:func:`section_aad`) binds it to
the event, the case, the category and the section's schema, so a sealed section cannot be cut out of one
event and pasted into another, nor read as a different schema, without failing to open.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import LintasError

NONCE_SIZE = 12
TAG_SIZE = 16
KEY_SIZE = 32
AAD_DOMAIN = b"lintas/v2/section"

#: Distinct data keys kept ready; a router works on a few hundred open cases at a time.
_CACHE_SIZE = 1024


class SealError(LintasError):
    """A section that cannot be sealed or opened: wrong key, tampered or truncated bytes, bad key size."""


class _AeadCache:
    """A small LRU of AESGCM objects: building one costs more than sealing a 300-byte section."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> AESGCM:
        with self._lock:
            aead = self._entries.get(key)
            if aead is not None:
                self._entries.move_to_end(key)
                return aead
        if len(key) != KEY_SIZE:
            raise SealError(f"key: AES-256 needs a {KEY_SIZE}-byte key, got {len(key)} bytes")
        aead = AESGCM(key)
        with self._lock:
            self._entries[key] = aead
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return aead

    def forget(self, key: bytes) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _AeadCache(_CACHE_SIZE)


def forget_key(key: bytes) -> None:
    """Drop a key from the cache, so a shredded case's key does not linger in memory."""
    _cache.forget(key)


def clear_cache() -> None:
    _cache.clear()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _cache.get(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise SealError(
            f"sealed section: truncated, {len(sealed)} bytes is shorter than nonce and tag "
            f"({NONCE_SIZE + TAG_SIZE} bytes)"
        )
    try:
        return _cache.get(key).decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad)
    except InvalidTag:
        # GCM cannot tell these apart, so the message names every cause.
        raise SealError(
            "sealed section: authentication failed: wrong data key, tampered or truncated bytes, "
            "or sealed for another event, case, category or schema"
        ) from None


def _field(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def section_aad(event_id: str, case_id: str, category: str, schema_fingerprint: bytes) -> bytes:
    """Associated data of a sealed section: the domain, then each field length-prefixed (4 bytes, big end)."""
    return AAD_DOMAIN + b"".join(
        _field(part) for part in (event_id.encode(), case_id.encode(), category.encode(), schema_fingerprint)
    )
