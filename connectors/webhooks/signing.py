"""Standard Webhooks signatures and message ids (pure)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Final

from standardwebhooks import Webhook

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format's prefix, not a secret
#: 32 random bytes: the key size of HMAC-SHA256.
SECRET_BYTES: Final = 32


def new_secret() -> str:
    """A new signing secret, ``whsec_`` + base64 of 32 random bytes (generated per deployment)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def webhook_id(subscription_id: str, message_id: str) -> str:
    """The id of one message to one subscription: the same on every attempt and every replay, so
    receivers can de-duplicate; different per subscription, so receivers cannot correlate them."""
    digest = hashlib.sha256(f"{subscription_id}\x00{message_id}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def signature(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, the ``webhook-signature`` value."""
    signed: str = Webhook(secret).sign(msg_id, timestamp.astimezone(UTC), body.decode("utf-8"))
    return signed


def signed_headers(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (the timestamp is the attempt's time)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
