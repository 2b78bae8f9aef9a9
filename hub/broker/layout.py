"""The embedded broker's principals and ACLs kept in step with the configured countries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hub.broker.secrets import CredentialStore
from hub.security.admin import apply, connect, create_user, describe_users
from hub.security.principals import principals

__all__ = ["ensure_layout"]


def ensure_layout(
    bootstrap: str, config: Mapping[str, Any], countries: Iterable[str], store: CredentialStore
) -> tuple[int, int]:
    """Create the principals the broker lacks (a country added since it was formatted), with their
    passwords kept in ``store``, then apply the ACL layout; returns (users created, ACLs created).
    A principal revoked on purpose stays revoked."""
    found = list(countries)
    admin = connect({**config, "bootstrap.servers": bootstrap})
    present = set(describe_users(admin))
    created = 0
    for principal in principals(found):
        if principal.name not in present and not store.revoked(principal.name):
            create_user(admin, principal.name, store.ensure(principal.name))
            created += 1
    report = apply(admin, found)
    return created, len(report.created)
