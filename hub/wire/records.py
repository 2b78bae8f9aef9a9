"""What the hub checks of a v2 event without decoding a section (its header), and the signatures of
the records the hub writes itself (receipts, alerts). Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from hub.contract import EVENT_MODELS
from hub.crypto.signing import KeyDirectory, SignatureError, Signer
from hub.errors import InvalidEvent
from hub.events import _check_envelope
from hub.headers import Headers
from hub.wire.schemas import FACT_FIELDS

#: Event types addressed to a partner country (their envelope must name it).
ADDRESSED: Final = frozenset(
    {
        "ReferralRequested",
        "ReferralAnswered",
        "ReturnNoticeIssued",
        "TransitPartyChanged",
        "EventCorrected",
        "EventRetracted",
    }
)
#: Kafka headers of a record the hub signed: its signer, key id and the Ed25519 signature of the value.
SIGNER_HEADER: Final = "lintas_signer"
KEY_ID_HEADER: Final = "lintas_key_id"
SIGNATURE_HEADER: Final = "lintas_signature"
_RECORD_DOMAIN: Final = b"lintas/v2/record\x00"


def check_header(kind: str, envelope: Mapping[str, Any], facts: Mapping[str, Any], *, now: datetime) -> None:
    """The contract's rules on a v2 event's envelope and facts; raises :class:`InvalidEvent`."""
    model = EVENT_MODELS.get(kind)
    if model is None:
        raise InvalidEvent("envelope.event_type", f"{kind} is not an event")
    _check_envelope(envelope, kind, now)
    if kind in ADDRESSED and envelope["destination_country"] is None:
        raise InvalidEvent(
            "envelope.destination_country", f"required for {kind}: it is addressed to a partner country"
        )
    for name in FACT_FIELDS:
        has = name in model.model_fields
        value = facts.get(name)
        if has and value is None and model.model_fields[name].is_required():
            raise InvalidEvent(f"facts.{name}", f"required for {kind}")
        if not has and value is not None:
            raise InvalidEvent(f"facts.{name}", f"{kind} has no {name}: it must be null")


def signed_headers(value: bytes, signer: Signer) -> Headers:
    """The headers that sign ``value`` as ``signer``."""
    return [
        (SIGNER_HEADER, signer.signer.encode()),
        (KEY_ID_HEADER, signer.key_id.encode()),
        (SIGNATURE_HEADER, signer.sign(_RECORD_DOMAIN + value)),
    ]


def verify_signed(
    value: bytes, headers: Sequence[tuple[str, bytes]] | None, directory: KeyDirectory, *, at: datetime
) -> str:
    """The signer of a record the hub wrote, after verifying its signature headers; raises
    :class:`SignatureError`."""
    found = dict(headers or ())
    signer = found.get(SIGNER_HEADER, b"").decode(errors="replace")
    key_id = found.get(KEY_ID_HEADER, b"").decode(errors="replace")
    if SIGNATURE_HEADER not in found:
        raise SignatureError("unknown_key", signer, key_id, "the record carries no signature")
    directory.verify(signer, key_id, found[SIGNATURE_HEADER], _RECORD_DOMAIN + value, at=at)
    return signer
