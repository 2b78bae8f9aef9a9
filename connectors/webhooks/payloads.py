"""What a webhook says (pure). Thin by design (Do No Harm): ids, codes and times only, never a name,
a document or a contact; the receiver reads the case itself through the audited API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from hub.contract import Alert

MessageType = Literal["alert.raised", "inbox.delivered"]
ALERT_RAISED: Final = "alert.raised"
INBOX_DELIVERED: Final = "inbox.delivered"


@dataclass(frozen=True)
class Message:
    """One thing to tell a focal point: ``message_id`` is what the webhook id is made from."""

    message_id: str
    type: MessageType
    body: bytes


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _body(type_: MessageType, timestamp: datetime, data: Mapping[str, Any]) -> bytes:
    # Compact and key-sorted: the same message always has the same bytes.
    envelope = {"type": type_, "timestamp": _time(timestamp), "data": data}
    return json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def alert_message(alert: Alert) -> Message:
    """``alert.raised``: the alert's fields, without its free-text detail."""
    data = {
        "alert_id": alert.alert_id,
        "obligation_id": alert.obligation_id,
        "kind": alert.kind.value,
        "level": alert.level.value,
        "case_id": alert.case_id,
        "due": _time(alert.due),
        "owner": alert.owner.value,
        "waiting": alert.waiting.value,
    }
    return Message(f"alert:{alert.alert_id}", "alert.raised", _body("alert.raised", alert.raised_at, data))


def case_link(case_id: str) -> str:
    """Where the full thread is read, through the audited API (relative to the hub's base URL)."""
    return f"/v1/cases/{case_id}"


def inbox_message(envelope: Mapping[str, Any]) -> Message:
    """``inbox.delivered``: an event's envelope facts (a decoded header's, or a model's) and the link to
    its case; nothing of its sections."""
    event_id = str(envelope["event_id"])
    case_id = str(envelope["case_id"])
    data = {
        "event_id": event_id,
        "event_type": str(envelope["event_type"]),
        "case_id": case_id,
        "source_country": str(envelope["source_country"]),
        "occurred_at": _time(envelope["occurred_at"]),
        "link": case_link(case_id),
    }
    return Message(
        f"event:{event_id}", "inbox.delivered", _body("inbox.delivered", envelope["recorded_at"], data)
    )
