"""``lintas webhooks``: make a signing secret, run the worker, read the attempts, replay, re-enable."""

from __future__ import annotations

import asyncio
import random
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from connectors.webhooks.outbox import Outbox
from connectors.webhooks.settings import WebhookSettings
from connectors.webhooks.signing import new_secret
from connectors.webhooks.subscriptions import Subscription, resolve_secret, subscriptions
from hub.errors import ConfigError, LintasError
from hub.options import BootstrapOption

app = typer.Typer(help="Signed webhooks to focal points (Standard Webhooks).", no_args_is_help=True)

DatabaseOption = Annotated[
    Path | None,
    typer.Option("--database", help="The outbox (LINTAS_WEBHOOKS__DATABASE, or the state directory's)."),
]
DirectoryOption = Annotated[
    Path | None, typer.Option("--directory", help="The focal-point directory; the configured one by default.")
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _settings(database: Path | None) -> WebhookSettings:
    settings = WebhookSettings()
    return settings if database is None else settings.model_copy(update={"database": database})


def _subscriptions(directory: Path | None) -> tuple[Subscription, ...]:
    from hub.agreements import load_directory
    from hub.settings import Settings

    return subscriptions(load_directory(directory or Settings().directory_path))


def _since(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--since: {value!r} is not an ISO 8601 time (2026-12-01T00:00)") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@app.command("secret")
def secret() -> None:
    """Print a new signing secret (whsec_...), to keep where the directory's secret reference points."""
    typer.echo(new_secret())


@app.command("list")
def list_subscriptions(directory: DirectoryOption = None, database: DatabaseOption = None) -> None:
    """The directory's webhook subscriptions, and whether a receiver disabled them (410 Gone)."""
    try:
        found = _subscriptions(directory)
    except LintasError as exc:
        raise _fail(exc) from exc
    outbox = Outbox(_settings(database).database)
    try:
        disabled = outbox.disabled()
    finally:
        outbox.close()
    for s in found:
        state = f"disabled ({disabled[s.id]})" if s.id in disabled else "enabled"
        typer.echo(f"{s.id}  {s.url}  feeds={','.join(sorted(s.feeds))}  secret={s.secret_ref}  {state}")


@app.command("run")
def run(
    bootstrap_servers: BootstrapOption = None,
    directory: DirectoryOption = None,
    database: DatabaseOption = None,
) -> None:
    """Deliver the alerts and inbox of every country with subscriptions, until interrupted."""
    from connectors.webhooks.worker import serve
    from hub.cli import _bootstrap
    from hub.kafka import client_options
    from hub.logging import configure_logging
    from hub.security.principals import WEBHOOKS
    from hub.settings import Settings

    hub_settings = Settings()
    configure_logging(hub_settings.log_format)
    settings = _settings(database)
    try:
        found = _subscriptions(directory)
        secrets = {s.id: resolve_secret(s.secret_ref) for s in found}
        bootstrap = _bootstrap(hub_settings, bootstrap_servers, WEBHOOKS)
    except LintasError as exc:
        raise _fail(exc) from exc
    if not found:
        raise _fail(ConfigError("directory: alert_channels: no webhook channel to deliver"))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(
            bootstrap,
            found,
            secrets,
            settings,
            stop=stop,
            clock=_utc_now,
            rng=random.SystemRandom(),
            partitions=hub_settings.topics.partitions,
            options=client_options(hub_settings),
        )

    asyncio.run(main())


@app.command("log")
def show_log(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many attempts.")] = 50,
    database: DatabaseOption = None,
) -> None:
    """The latest delivery attempts, newest first."""
    outbox = Outbox(_settings(database).database)
    try:
        attempts = outbox.recent(limit)
    finally:
        outbox.close()
    for a in attempts:
        status = str(a.status_code) if a.status_code is not None else "-"
        typer.echo(
            f"{a.at.isoformat()}  {a.webhook_id}  {a.subscription_id}  attempt={a.attempt}  "
            f"status={status}  {a.error or 'delivered'}  {a.latency_ms:.0f} ms"
        )


@app.command("replay")
def replay(
    since: Annotated[str, typer.Option("--since", help="ISO 8601 time, UTC unless it names a zone.")],
    database: DatabaseOption = None,
) -> None:
    """Send again, with the same webhook ids, every message delivered or attempted since a time."""
    try:
        start = _since(since)
    except LintasError as exc:
        raise _fail(exc) from exc
    outbox = Outbox(_settings(database).database)
    try:
        count = outbox.replay(start, _utc_now())
    finally:
        outbox.close()
    typer.echo(f"{count} messages due again")


@app.command("enable")
def enable(
    subscription: Annotated[str, typer.Argument(help="The subscription id (see `lintas webhooks list`).")],
    database: DatabaseOption = None,
) -> None:
    """Deliver again to a subscription a receiver disabled (410 Gone), with what it missed."""
    outbox = Outbox(_settings(database).database)
    try:
        count = outbox.enable(subscription, _utc_now())
    finally:
        outbox.close()
    typer.echo(f"{subscription}: enabled, {count} messages due")
