"""Signed webhooks for focal points (Standard Webhooks, https://www.standardwebhooks.com).

The worker reads a country's alerts and inbox, writes one outbox row per message and subscription in the
same SQLite transaction as the consumed offsets, and the dispatcher sends due rows, signed, with retries.
Pure parts: :mod:`.signing`, :mod:`.payloads`, :mod:`.backoff`, :mod:`.ssrf`, :mod:`.subscriptions`.
Adapters: :mod:`.outbox` (SQLite), :mod:`.dispatcher` (HTTP), :mod:`.worker` (Kafka), :mod:`.cli`.
"""

from __future__ import annotations

from hub.topics import WEBHOOK_DELIVERIES

#: Every delivery attempt, one JSON record each (key: webhook id); named in :mod:`hub.topics`.
DELIVERIES = WEBHOOK_DELIVERIES

__all__ = ["DELIVERIES"]
