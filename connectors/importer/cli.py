"""``lintas import FILE --country TH --mapping mapping.yaml``: a national system's export into Lintas.

Exit codes: 0 every row was valid (and published, unless ``--dry-run``); 1 some rows were rejected (the
valid ones were still published; the report lists the others); 2 the command, the mapping or the file
cannot be used (nothing was published); 3 publishing failed part way (importing again is safe: the
events keep their ids, and the hub absorbs what it already has).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from connectors.importer.mapping import ImportMapping, load_mapping
from connectors.importer.report import default_report_path, summary
from connectors.importer.run import ImportResult, PublishFailed, run_import
from hub.codec import Codec
from hub.contract import CountryCode
from hub.crypto.signing import Signer, demo_signer
from hub.errors import ConfigError, LintasError
from hub.kafka import client_options
from hub.logging import configure_logging
from hub.options import BootstrapOption
from hub.settings import Settings
from hub.wire.codec import Wire
from hub.wire.national import NationalSystems, key_directory

__all__ = ["EXIT_PUBLISH_FAILED", "EXIT_REJECTED", "EXIT_USAGE", "import_command"]

EXIT_REJECTED: Final = 1
EXIT_USAGE: Final = 2
EXIT_PUBLISH_FAILED: Final = 3


def _stop(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=code)


def _country(given: str) -> str:
    code = given.strip().upper()
    if code not in CountryCode.__members__ or code == CountryCode.ZZ:
        raise _stop(f"--country: {given!r} is not a country of the contract (ISO 3166-1 alpha-2)", EXIT_USAGE)
    return code


def _signer(settings: Settings, country: str, path: Path | None) -> Signer:
    """The key the country's events are signed with: the one given, else its demo key where allowed."""
    if path is None:
        if not settings.keys.allow_demo:
            raise ConfigError("--signing-key: required where demo keys are not allowed (keys.allow_demo)")
        return demo_signer(country)
    signer = Signer.load(path)
    if signer.signer != country:
        raise ConfigError(f"--signing-key: {path} signs as {signer.signer}, and the rows are {country}'s")
    return signer


def _warn_unlisted(settings: Settings, signer: Signer) -> None:
    if key_directory(settings).key(signer.signer, signer.key_id) is None:
        typer.secho(
            f"warning: key {signer.key_id} of {signer.signer} is not in this machine's key directory; "
            "the hub rejects events whose key its directory lacks",
            err=True,
            fg=typer.colors.YELLOW,
        )


def import_command(
    file: Annotated[Path, typer.Argument(help="The export to import: .csv, .jsonl or .xlsx.")],
    country: Annotated[
        str, typer.Option("--country", "-c", help="The importing country, e.g. TH: every row's source.")
    ],
    mapping: Annotated[
        Path, typer.Option("--mapping", "-m", help="The mapping file (YAML): config/mappings/htcds.yaml")
    ],
    report: Annotated[
        Path | None, typer.Option("--report", help="The CSV report of rejected rows [<FILE>.report.csv].")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate every row; publish nothing.")] = False,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key", help="The country's Ed25519 key (PEM); its demo key where demo keys are allowed."
        ),
    ] = None,
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Import a national system's export: every valid row is published as a contract event, every
    other row is reported with its line, column, field and reason."""
    settings = Settings()
    # The key store logs each case's new data key: on a console that is noise around the progress bar.
    configure_logging(settings.log_format, logging.INFO if settings.log_format == "json" else logging.WARNING)
    code = _country(country)
    try:
        loaded: ImportMapping = load_mapping(mapping)
        signer = _signer(settings, code, signing_key) if signing_key or not dry_run else None
    except LintasError as exc:
        raise _stop(str(exc), EXIT_USAGE) from exc
    writer: NationalSystems | None = None
    bootstrap: str | None = None
    if signer is not None:
        _warn_unlisted(settings, signer)
    if not dry_run:
        assert signer is not None
        from hub.cli import _bootstrap, open_keys  # hub.cli registers this command: import when run
        from hub.security.principals import national_system

        try:
            writer = NationalSystems(
                Wire(Codec(), directory=key_directory(settings)),
                open_keys(settings),
                signer_of=lambda _: signer,
            )
            bootstrap = _bootstrap(settings, bootstrap_servers, national_system(code))
        except LintasError as exc:
            raise _stop(str(exc), EXIT_PUBLISH_FAILED if exc.retriable else EXIT_USAGE) from exc
    report_path = report or default_report_path(file)
    console = Console()
    try:
        result = asyncio.run(
            run_import(
                file,
                loaded,
                country=code,
                now=datetime.now(UTC),
                report_path=report_path,
                bootstrap=bootstrap,
                writer=writer,
                client_options=client_options(settings),
                partitions=settings.topics.partitions,
                replication_factor=settings.topics.replication_factor,
                console=console,
            )
        )
    except PublishFailed as exc:
        _print(console, exc.result, report_path)
        raise _stop(str(exc), EXIT_PUBLISH_FAILED) from exc
    except ConfigError as exc:  # the mapping does not fit the file
        raise _stop(str(exc), EXIT_USAGE) from exc
    except LintasError as exc:
        raise _stop(str(exc), EXIT_PUBLISH_FAILED if exc.retriable else EXIT_USAGE) from exc
    _print(console, result, report_path)
    raise typer.Exit(code=EXIT_REJECTED if result.counts.rejected else 0)


def _print(console: Console, result: ImportResult, report_path: Path) -> None:
    console.print(summary(result.counts, result.shown, report=report_path, topic=result.topic))
