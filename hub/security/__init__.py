"""Kafka principals and ACLs: the layout (pure, :mod:`hub.security.principals`), the adapter that
applies it and manages SCRAM credentials (:mod:`hub.security.admin`) and ``lintas acl``
(:mod:`hub.security.cli`). See ``docs/security.md``."""

from __future__ import annotations

from hub.security.principals import (
    OPERATOR,
    Binding,
    Operation,
    PatternType,
    Principal,
    ResourceType,
    Role,
    SecurityError,
    diff,
    layout,
    permits,
    principals,
    render_table,
)

__all__ = [
    "OPERATOR",
    "Binding",
    "Operation",
    "PatternType",
    "Principal",
    "ResourceType",
    "Role",
    "SecurityError",
    "diff",
    "layout",
    "permits",
    "principals",
    "render_table",
]
