"""Topic names: the one place they are made. Never derived from function names."""

from __future__ import annotations

import re
from collections.abc import Iterable

DEADLETTER = "lintas.deadletter"
#: Every accepted event, as submitted: the hub's own log, which the projections fold.
ACCEPTED_EVENTS = "lintas.hub.accepted"
#: The router's case state, compacted; co-partitioned with the national events topics.
ROUTER_STATE = "lintas.router.state"
#: The projections' case states and the alerts already sent, compacted, co-partitioned.
PROJECTION_STATE = "lintas.projections.state"
#: Claims of event ids by cases (key: event id, value: case id); the first claim of an id wins.
ROUTER_IDS = "lintas.router.ids"
#: Topics whose latest value per key is all that matters.
COMPACTED = frozenset({ROUTER_STATE, PROJECTION_STATE})
#: National events topics, for subscription by pattern.
NRM_EVENTS_PATTERN = r"^lintas\.nrm\.[a-z]{2}\.events$"
REGIONAL_STATS = "lintas.regional.stats"
#: Who read which personal data or case thread through the API, written before the response is sent.
AUDIT = "lintas.audit"
#: Every attempt to deliver a webhook: subscription, attempt, status, latency.
WEBHOOK_DELIVERIES = "lintas.webhooks.deliveries"

_COUNTRY = re.compile(r"^[A-Z]{2}$")


def _cc(country: str) -> str:
    if not _COUNTRY.match(country):
        raise ValueError(f"country code {country!r} is not ISO 3166-1 alpha-2 (two capitals)")
    return country.lower()


def nrm_events(country: str) -> str:
    """Where a country's national systems publish their events."""
    return f"lintas.nrm.{_cc(country)}.events"


def nrm_receipts(country: str) -> str:
    """Where a country's national systems learn whether each event was accepted."""
    return f"lintas.nrm.{_cc(country)}.receipts"


def focal_inbox(country: str) -> str:
    """What partner countries sent to a country's focal points."""
    return f"lintas.focal.{_cc(country)}.inbox"


def alerts(country: str) -> str:
    return f"lintas.alerts.{_cc(country)}"


def country_topics(country: str) -> list[str]:
    return [nrm_events(country), nrm_receipts(country), focal_inbox(country), alerts(country)]


def all_topics(countries: Iterable[str]) -> list[str]:
    names = [name for country in countries for name in country_topics(country)]
    return [
        *names,
        DEADLETTER,
        REGIONAL_STATS,
        ROUTER_STATE,
        ROUTER_IDS,
        ACCEPTED_EVENTS,
        PROJECTION_STATE,
        AUDIT,
        WEBHOOK_DELIVERIES,
    ]
