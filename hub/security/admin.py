"""The Kafka side of :mod:`hub.security`: SCRAM credentials and ACLs through confluent-kafka's
``AdminClient``.

The connection is the caller's librdkafka configuration (``bootstrap.servers``, ``security.protocol``,
``sasl.mechanism``, ``sasl.username``, ``sasl.password``, ``ssl.ca.location``), normally the operator's.
Passwords are made here (``secrets.token_urlsafe(32)``), returned to the caller once and never logged.
Kafka's errors become :class:`SecurityError` naming the principal and Kafka's reason.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from confluent_kafka.admin import ResourceType as KafkaResourceType  # type: ignore[attr-defined]

from hub.security.principals import (
    Binding,
    Operation,
    PatternType,
    ResourceType,
    SecurityError,
    diff,
    layout,
    managed_principals,
    render_table,
)

__all__ = [
    "ITERATIONS",
    "ApplyReport",
    "Revoked",
    "apply",
    "connect",
    "create_user",
    "current_bindings",
    "delete_bindings",
    "describe_users",
    "new_password",
    "render_table",
    "revoke",
    "rotate",
]

log = structlog.get_logger("lintas.security")

#: SCRAM-SHA-512 iterations: Kafka's own tools use 4096; twice that costs a login a few ms more.
ITERATIONS = 8192
#: How long one admin request may take.
TIMEOUT_S = 30.0
_MECHANISM = ScramMechanism.SCRAM_SHA_512
_T = TypeVar("_T")

_RESOURCE = {
    ResourceType.TOPIC: KafkaResourceType.TOPIC,
    ResourceType.GROUP: KafkaResourceType.GROUP,
    ResourceType.TRANSACTIONAL_ID: KafkaResourceType.TRANSACTIONAL_ID,
    ResourceType.CLUSTER: KafkaResourceType.BROKER,  # librdkafka's name for the cluster resource
}
_RESOURCE_BACK: dict[object, ResourceType] = {kafka: ours for ours, kafka in _RESOURCE.items()}
_PATTERN = {
    PatternType.LITERAL: ResourcePatternType.LITERAL,
    PatternType.PREFIXED: ResourcePatternType.PREFIXED,
}
_PATTERN_BACK: dict[object, PatternType] = {kafka: ours for ours, kafka in _PATTERN.items()}
_PERMISSION = {"ALLOW": AclPermissionType.ALLOW, "DENY": AclPermissionType.DENY}


def new_password() -> str:
    """A random password: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def connect(config: Mapping[str, Any]) -> AdminClient:
    """An admin client on the caller's librdkafka connection settings."""
    if not config.get("bootstrap.servers"):
        raise SecurityError(str(config.get("sasl.username", "?")), "no bootstrap.servers to connect to")
    return AdminClient(dict(config))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        error: KafkaError = exc.args[0]
        return f"{error.name()}: {error.str()}"
    return f"{type(exc).__name__}: {exc}"


def _result(future: Future[_T], principal: str, doing: str) -> _T:
    try:
        return future.result(timeout=TIMEOUT_S)
    except (KafkaException, TimeoutError) as exc:
        raise SecurityError(principal, f"{doing}: {_reason(exc)}") from exc


# -- SCRAM credentials -------------------------------------------------------------------------------


def _upsert(admin: AdminClient, name: str, password: str) -> None:
    upsertion = UserScramCredentialUpsertion(
        name, ScramCredentialInfo(_MECHANISM, ITERATIONS), password.encode(), secrets.token_bytes(32)
    )
    futures = admin.alter_user_scram_credentials([upsertion], request_timeout=TIMEOUT_S)
    _result(futures[name], name, "setting the SCRAM-SHA-512 credential")


def create_user(admin: AdminClient, name: str, password: str | None = None) -> str:
    """Give ``name`` a SCRAM-SHA-512 credential (a new random password unless one is given, replacing
    any it had); returns the password."""
    password = password or new_password()
    _upsert(admin, name, password)
    log.info("scram_credential_set", principal=name)
    return password


def rotate(admin: AdminClient, name: str) -> str:
    """A new password for ``name``, who must have a credential already; returns it. Connections made
    with the old one stay open until they re-authenticate (``connections.max.reauth.ms``)."""
    if name not in describe_users(admin):
        raise SecurityError(name, "has no SCRAM credential to rotate (create it with lintas acl add)")
    password = new_password()
    _upsert(admin, name, password)
    log.info("scram_credential_rotated", principal=name)
    return password


@dataclass(frozen=True)
class Revoked:
    principal: str
    #: Whether a credential existed and was deleted.
    credential: bool
    #: The ACLs deleted with it.
    bindings: tuple[Binding, ...]


def revoke(admin: AdminClient, name: str) -> Revoked:
    """Delete ``name``'s SCRAM credential and every ACL of ``User:<name>``. A principal with neither
    is no error (revoking twice is harmless)."""
    had = name in describe_users(admin)
    if had:
        futures = admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion(name, _MECHANISM)], request_timeout=TIMEOUT_S
        )
        _result(futures[name], name, "deleting the SCRAM-SHA-512 credential")
    acls = [binding for binding in current_bindings(admin) if binding.principal == name]
    delete_bindings(admin, acls)
    log.info("principal_revoked", principal=name, credential=had, acls=len(acls))
    return Revoked(name, had, tuple(sorted(acls)))


def describe_users(admin: AdminClient) -> dict[str, list[tuple[str, int]]]:
    """Every user with a SCRAM credential: its mechanisms and iterations."""
    future = admin.describe_user_scram_credentials(request_timeout=TIMEOUT_S)
    assert isinstance(future, Future)  # without users: one future for all
    described = _result(future, "*", "describing the SCRAM credentials")
    return {
        user: sorted((info.mechanism.name, info.iterations) for info in description.scram_credential_infos)
        for user, description in sorted(described.items())
    }


# -- ACLs ----------------------------------------------------------------------------------------------


def _to_kafka(binding: Binding) -> AclBinding:
    return AclBinding(
        _RESOURCE[binding.resource_type],
        binding.resource_name,
        _PATTERN[binding.pattern_type],
        binding.kafka_principal,
        binding.host,
        AclOperation[binding.operation.value],
        _PERMISSION[binding.permission],
    )


def _exactly(binding: Binding) -> AclBindingFilter:
    acl = _to_kafka(binding)
    return AclBindingFilter(
        acl.restype,
        acl.name,
        acl.resource_pattern_type,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission_type,
    )


def _from_kafka(acl: AclBinding) -> Binding | None:
    """Ours, or None for an ACL this model has no words for (never one of ours)."""
    kind = _RESOURCE_BACK.get(acl.restype)
    pattern = _PATTERN_BACK.get(acl.resource_pattern_type)
    # Described ACLs carry the enums (the constructor's ``str | int`` is for building them).
    operation = getattr(acl.operation, "name", str(acl.operation))
    permission = getattr(acl.permission_type, "name", str(acl.permission_type))
    if kind is None or pattern is None or operation not in Operation.__members__:
        return None
    return Binding(
        acl.principal.removeprefix("User:"),
        kind,
        acl.name,
        pattern,
        Operation[operation],
        permission,
        acl.host,
    )


def current_bindings(admin: AdminClient) -> set[Binding]:
    """Every ACL the cluster has."""
    everything = AclBindingFilter(
        KafkaResourceType.ANY,
        None,  # type: ignore[arg-type]  # None matches any name, principal and host
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    acls = _result(admin.describe_acls(everything, request_timeout=TIMEOUT_S), "*", "describing the ACLs")
    return {binding for acl in acls if (binding := _from_kafka(acl)) is not None}


def create_bindings(admin: AdminClient, bindings: Iterable[Binding]) -> None:
    ours = sorted(set(bindings))
    if not ours:
        return
    futures = admin.create_acls([_to_kafka(b) for b in ours], request_timeout=TIMEOUT_S)
    for binding, future in zip(ours, futures.values(), strict=True):
        _result(future, binding.principal, f"creating the ACL {_describe(binding)}")


def delete_bindings(admin: AdminClient, bindings: Iterable[Binding]) -> None:
    ours = sorted(set(bindings))
    if not ours:
        return
    futures = admin.delete_acls([_exactly(b) for b in ours], request_timeout=TIMEOUT_S)
    for binding, future in zip(ours, futures.values(), strict=True):
        _result(future, binding.principal, f"deleting the ACL {_describe(binding)}")


def _describe(binding: Binding) -> str:
    star = "*" if binding.pattern_type is PatternType.PREFIXED else ""
    return (
        f"{binding.permission} {binding.operation.value} on {binding.resource_type.value} "
        f"{binding.resource_name}{star}"
    )


@dataclass(frozen=True)
class ApplyReport:
    created: tuple[Binding, ...]
    deleted: tuple[Binding, ...]
    #: Wanted bindings that were there already.
    kept: int


def apply(admin: AdminClient, countries: Iterable[str]) -> ApplyReport:
    """Make the cluster's ACLs those of :func:`layout` for ``countries``: create what is missing,
    delete the stale ACLs of the hub's principals; others' ACLs are left alone. Idempotent."""
    found = list(countries)
    wanted = set(layout(found))
    current = current_bindings(admin)
    to_create, to_delete = diff(current, wanted, managed_principals(found, current))
    create_bindings(admin, to_create)
    delete_bindings(admin, to_delete)
    log.info("acls_applied", created=len(to_create), deleted=len(to_delete))
    return ApplyReport(tuple(sorted(to_create)), tuple(sorted(to_delete)), len(wanted) - len(to_create))
