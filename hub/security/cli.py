"""``lintas acl``: the principals' ACLs and SCRAM credentials, on the embedded broker or a real cluster.

Without ``--bootstrap-servers`` (or ``LINTAS_BOOTSTRAP_SERVERS``) the commands work on the embedded
broker as ``operator`` and keep the passwords they make in its credential store; with it, on that
cluster with the connection of the settings, and a new password is only printed, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from hub.errors import LintasError
from hub.logging import configure_logging
from hub.options import BootstrapOption
from hub.security import admin
from hub.security.principals import (
    OPERATOR,
    Binding,
    PatternType,
    SecurityError,
    is_managed,
    layout,
    normalise_countries,
    principal,
    principals,
    render_table,
)
from hub.settings import Settings

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

    from hub.broker.secrets import CredentialStore

acl_app = typer.Typer(help="Kafka principals (SCRAM users) and their ACLs.", no_args_is_help=True)

NameArgument = Annotated[
    str, typer.Argument(help="The principal: router, nrm-th, fp-mm… (see lintas acl users).")
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _countries(settings: Settings) -> list[str]:
    from hub.cli import _countries as configured  # lazily: hub.cli imports this module

    return configured(settings)


@dataclass(frozen=True)
class _Target:
    """Where the commands act: the cluster's librdkafka connection, and the embedded broker's
    credential store (None on a real cluster)."""

    config: dict[str, Any]
    store: CredentialStore | None

    def admin(self) -> AdminClient:
        return admin.connect(self.config)


def _target(settings: Settings, given: str | None) -> _Target:
    configure_logging(settings.log_format)  # to stderr: stdout has the tables and passwords only
    bootstrap = given or settings.bootstrap_servers
    if bootstrap:
        from hub.kafka import client_options
        from hub.processor import rdkafka_options

        return _Target({"bootstrap.servers": bootstrap, **rdkafka_options(client_options(settings))}, None)
    from hub.broker import local as broker_local
    from hub.cli import _local_broker

    broker = _local_broker(settings)
    libs = broker_local.provision(settings.broker.cache_dir)
    broker.libs = libs
    if isinstance(broker, broker_local.LocalCluster):
        for member in broker.members:
            member.libs = libs
    address = broker.start(timeout=settings.broker.start_timeout)
    return _Target({"bootstrap.servers": address, **broker.rdkafka_config(OPERATOR)}, broker.secrets)


def _country_list(given: str | None, settings: Settings) -> list[str]:
    if given is None:
        return _countries(settings)
    return normalise_countries(code.strip() for code in given.split(",") if code.strip())


def _lines(bindings: Sequence[Binding], sign: str) -> None:
    for binding in bindings:
        star = "*" if binding.pattern_type is PatternType.PREFIXED else ""
        typer.echo(
            f"{sign} {binding.principal} {binding.permission} {binding.operation.value} "
            f"{binding.resource_type.value} {binding.resource_name}{star}"
        )


def _new_password(target: _Target, name: str, password: str, verb: str) -> None:
    """The password once on stdout; where it is kept, on stderr."""
    typer.echo(password)
    if target.store is not None:
        target.store.put(name, password)
        typer.echo(f"{verb} {name}; its password is kept in {target.store.file(name)}", err=True)
    else:
        typer.echo(f"{verb} {name}; the password above is shown once: hand it over now", err=True)


@acl_app.command("show")
def show(
    live: Annotated[bool, typer.Option("--live", help="The ACLs the cluster has, not the layout.")] = False,
    countries: Annotated[
        str | None, typer.Option(help="Comma-separated country codes; the configured ones by default.")
    ] = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """The ACLs of the layout (a Markdown table), or with --live those the cluster has."""
    settings = Settings()
    try:
        if live:
            bindings = sorted(admin.current_bindings(_target(settings, bootstrap_servers).admin()))
        else:
            bindings = layout(_country_list(countries, settings))
    except (LintasError, ValueError) as exc:
        raise _fail(exc) from exc
    typer.echo(render_table(bindings), nl=False)


@acl_app.command("apply")
def apply(bootstrap_servers: BootstrapOption = None) -> None:
    """Make the cluster's ACLs the layout's, idempotently; the embedded broker also gets its users."""
    # Creates what is missing and deletes the stale ACLs of the hub's principals, nobody else's. On the
    # embedded broker the principals it lacks are created too, their passwords kept in its store.
    settings = Settings()
    try:
        countries = _countries(settings)
        target = _target(settings, bootstrap_servers)
        client = target.admin()
        if target.store is not None:
            present = set(admin.describe_users(client))
            for wanted in principals(countries):
                if wanted.name not in present:
                    admin.create_user(client, wanted.name, target.store.ensure(wanted.name))
                    typer.echo(f"+ user {wanted.name}")
        report = admin.apply(client, countries)
    except LintasError as exc:
        raise _fail(exc) from exc
    _lines(report.created, "+")
    _lines(report.deleted, "-")
    typer.echo(f"created {len(report.created)}, deleted {len(report.deleted)}, unchanged {report.kept}")


@acl_app.command("users")
def users(bootstrap_servers: BootstrapOption = None) -> None:
    """Who has a SCRAM credential, and which principals of the layout have none."""
    settings = Settings()
    try:
        countries = _countries(settings)
        found = admin.describe_users(_target(settings, bootstrap_servers).admin())
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo("| principal | role | credential |")
    typer.echo("| --- | --- | --- |")
    known = principals(countries)
    for entry in known:
        credential = found.get(entry.name)
        shown = ", ".join(f"{m} ({i} iterations)" for m, i in credential) if credential else "none"
        typer.echo(f"| {entry.name} | {entry.role.value} | {shown} |")
    for name in sorted(set(found) - {p.name for p in known}):
        role = "not in the layout (a country no longer configured?)" if is_managed(name) else "not the hub's"
        shown = ", ".join(f"{m} ({i} iterations)" for m, i in found[name])
        typer.echo(f"| {name} | {role} | {shown} |")


@acl_app.command("add")
def add(name: NameArgument, bootstrap_servers: BootstrapOption = None) -> None:
    """Give a principal of the layout a SCRAM credential with a new password (printed once)."""
    settings = Settings()
    try:
        principal(name, _countries(settings))  # only the layout's principals
        target = _target(settings, bootstrap_servers)
        client = target.admin()
        if name in admin.describe_users(client):
            raise SecurityError(name, "has a credential already (lintas acl rotate gives it a new password)")
        password = admin.create_user(client, name)
    except LintasError as exc:
        raise _fail(exc) from exc
    _new_password(target, name, password, "added")


@acl_app.command("rotate")
def rotate(name: NameArgument, bootstrap_servers: BootstrapOption = None) -> None:
    """A new password for a principal (printed once); the old one is refused from now on."""
    settings = Settings()
    try:
        target = _target(settings, bootstrap_servers)
        password = admin.rotate(target.admin(), name)
    except LintasError as exc:
        raise _fail(exc) from exc
    _new_password(target, name, password, "rotated")


@acl_app.command("revoke")
def revoke(name: NameArgument, bootstrap_servers: BootstrapOption = None) -> None:
    """Delete a principal's SCRAM credential and every ACL of it."""
    settings = Settings()
    try:
        if name == OPERATOR:
            raise SecurityError(name, "is the super user that manages everyone else; rotate it instead")
        target = _target(settings, bootstrap_servers)
        revoked = admin.revoke(target.admin(), name)
    except LintasError as exc:
        raise _fail(exc) from exc
    if target.store is not None:
        target.store.revoke(name)  # remembered: the embedded broker does not make it again on start
    _lines(revoked.bindings, "-")
    credential = "credential deleted" if revoked.credential else "had no credential"
    typer.echo(f"revoked {name}: {credential}, {len(revoked.bindings)} ACLs deleted")
