"""Webhook subscriptions, from the focal-point directory (pure, but for reading secrets)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hub.agreements import Directory, WebhookFeed
from hub.errors import ConfigError


@dataclass(frozen=True)
class Subscription:
    """One webhook channel of one focal point."""

    id: str
    country: str
    agency_id: str
    url: str
    feeds: frozenset[WebhookFeed]
    #: Where the signing secret is (``env:VAR`` or ``file:/path``), never the secret.
    secret_ref: str

    def carries(self, feed: WebhookFeed) -> bool:
        return feed in self.feeds


def subscriptions(directory: Directory) -> tuple[Subscription, ...]:
    """Every webhook channel of the directory; an unnamed one is ``<agency_id>:<index of the channel>``.
    Raises :class:`ConfigError` when two share an id."""
    found: list[Subscription] = []
    for entry in directory.countries:
        for point in entry.focal_points:
            for index, channel in enumerate(point.alert_channels):
                if channel.kind != "webhook" or channel.secret is None:
                    continue
                found.append(
                    Subscription(
                        id=channel.id or f"{point.agency_id}:{index}",
                        country=entry.country.value,
                        agency_id=point.agency_id,
                        url=channel.target,
                        feeds=channel.feeds,
                        secret_ref=channel.secret,
                    )
                )
    ids = [subscription.id for subscription in found]
    twice = sorted({name for name in ids if ids.count(name) > 1})
    if twice:
        raise ConfigError(f"directory: alert_channels.id: {', '.join(twice)} used by more than one webhook")
    return tuple(found)


def for_feed(found: Sequence[Subscription], country: str, feed: WebhookFeed) -> tuple[Subscription, ...]:
    return tuple(s for s in found if s.country == country and s.carries(feed))


def resolve_secret(
    ref: str,
    *,
    environ: Mapping[str, str] | None = None,
    read: Callable[[Path], str] = lambda path: path.read_text(encoding="utf-8"),
) -> str:
    """The secret a reference points to; raises :class:`ConfigError` naming the reference and why."""
    environ = os.environ if environ is None else environ
    kind, _, where = ref.partition(":")
    if kind == "env":
        value = environ.get(where, "")
        if not value:
            raise ConfigError(f"secret {ref}: environment variable {where} is not set")
    elif kind == "file":
        try:
            value = read(Path(where)).strip()
        except OSError as exc:
            raise ConfigError(f"secret {ref}: cannot be read: {exc.strerror}") from exc
    else:
        raise ConfigError(f"secret {ref}: must be env:VAR_NAME or file:/path")
    if not value.startswith("whsec_"):
        raise ConfigError(f"secret {ref}: not a whsec_ secret (make one with `lintas webhooks secret`)")
    return value
