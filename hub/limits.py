"""Message size limits at the hub's edges, and dead letters that always fit. Pure.

The limits, from the outside in (see README, "Size limits"):

* national events topics accept messages up to ``INPUT_MAX_BYTES`` (topic ``max.message.bytes``);
* everything the hub writes is at most ``OUTPUT_MAX_BYTES`` (the producer's ``message.max.bytes``),
  and the output topics allow that plus Kafka's batch overhead;
* a routed event whose inbox copy or log record would exceed it is rejected as ``too_large``; a dead
  letter that would exceed it (the original bytes plus their headers plus the hub's) keeps a prefix of
  the payload and as many headers as fit, and says so: ``lintas_truncated``, the original size and
  its SHA-256, so the original can still be found on the source topic at the offset it names.
"""

from __future__ import annotations

import hashlib
from typing import Final

from hub.routing import Outgoing

INPUT_MAX_BYTES: Final = 512 * 1024
OUTPUT_MAX_BYTES: Final = 1_000_000
#: What a topic must allow for the largest output: Kafka's record batch header and record framing.
TOPIC_MAX_BYTES: Final = OUTPUT_MAX_BYTES + 64 * 1024
#: librdkafka counts a message's size with some framing of its own; keep clear of it.
_FRAMING: Final = 512
#: Of a truncated dead letter, at most this share of the limit is original payload.
_PAYLOAD_SHARE: Final = 0.5


def record_size(out: Outgoing) -> int:
    """A message's size as the producer counts it against ``message.max.bytes`` (an upper bound)."""
    headers = sum(len(name) + len(value) + 8 for name, value in out.headers)
    return len(out.value) + len(out.key or b"") + headers + _FRAMING


def fits(out: Outgoing, limit: int = OUTPUT_MAX_BYTES) -> bool:
    return record_size(out) <= limit


def fit_dead_letter(out: Outgoing, limit: int = OUTPUT_MAX_BYTES) -> Outgoing:
    """``out`` itself when it fits; otherwise a copy that fits, saying what was cut."""
    if fits(out, limit):
        return out
    # The hub's own headers (lintas_*) say why and where from: they always stay.
    own = [(name, value) for name, value in out.headers if name.startswith("lintas_")]
    theirs = [(name, value) for name, value in out.headers if not name.startswith("lintas_")]
    marks = [
        ("lintas_truncated", b"1"),
        ("lintas_original_size", str(len(out.value)).encode()),
        ("lintas_original_sha256", hashlib.sha256(out.value).hexdigest().encode()),
    ]
    budget = limit - _FRAMING - len(out.key or b"") - sum(len(n) + len(v) + 8 for n, v in own + marks)
    payload = out.value[: max(0, min(len(out.value), int(limit * _PAYLOAD_SHARE), budget - 64))]
    budget -= len(payload)
    kept: list[tuple[str, bytes]] = []
    for name, value in theirs:
        size = len(name) + len(value) + 8
        if size > budget - 64:
            continue
        kept.append((name, value))
        budget -= size
    dropped = len(theirs) - len(kept)
    extra = [("lintas_headers_dropped", str(dropped).encode())] if dropped else []
    return Outgoing(out.topic, out.key, payload, [*kept, *own, *marks, *extra])
