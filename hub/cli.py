"""The ``lintas`` command."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated

import structlog
import typer

from hub import localkafka
from hub.codec import Codec
from hub.codegen import CONTRACT_MODULE, generate
from hub.codes import labels_for
from hub.compatibility import check_contract
from hub.errors import LintasError
from hub.kafka import client_options, ensure_topics, producer, publish_events, read_all
from hub.logging import configure_logging
from hub.schema_registry import default_contract
from hub.settings import Settings
from hub.synthetic import synthetic_stream
from hub.topics import all_topics, nrm_events

app = typer.Typer(help="Lintas: transnational referral message hub.", no_args_is_help=True)
schemas_app = typer.Typer(help="The Avro contract in schemas/avro.", no_args_is_help=True)
broker_app = typer.Typer(help="The embedded single-node Apache Kafka.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")

log = structlog.get_logger("lintas.cli")

BootstrapOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        envvar="LINTAS_BOOTSTRAP_SERVERS",
        help="An existing Kafka cluster; without it the embedded local broker is started.",
    ),
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _local_broker(settings: Settings) -> localkafka.LocalBroker:
    return localkafka.LocalBroker(home=settings.broker.home)


def _bootstrap(settings: Settings, given: str | None) -> str:
    """The cluster to talk to: the one given, else the embedded broker (started if needed)."""
    if given:
        return given
    broker = _local_broker(settings)
    broker.libs = localkafka.provision(settings.broker.cache_dir)
    return broker.start(timeout=settings.broker.start_timeout)


# -- schemas -----------------------------------------------------------------------------------


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a contract version breaks compatibility with the one before, or the generated
    models differ from the schemas."""
    try:
        contract = default_contract()
        problems = check_contract(contract)
    except LintasError as exc:
        raise _fail(exc) from exc
    for problem in problems:
        typer.secho(str(problem), err=True, fg=typer.colors.RED)
    if CONTRACT_MODULE.read_text(encoding="utf-8") != generate(contract.latest):
        typer.secho(
            f"{CONTRACT_MODULE}: out of date; run `lintas schemas codegen`",
            err=True,
            fg=typer.colors.RED,
        )
        problems.append(None)  # type: ignore[arg-type]
    if problems:
        raise typer.Exit(code=1)
    versions = ", ".join(f"v{version.version}" for version in contract.versions)
    typer.echo(f"contract {versions}: compatible; models up to date")


@schemas_app.command("codegen")
def schemas_codegen() -> None:
    """Regenerate hub/contract.py from the newest schema version."""
    CONTRACT_MODULE.write_text(generate(default_contract().latest), encoding="utf-8")
    typer.echo(f"wrote {CONTRACT_MODULE}")


@schemas_app.command("list")
def schemas_list() -> None:
    """Every published event schema with its fingerprint."""
    for schema in default_contract().all_event_schemas():
        typer.echo(f"v{schema.version}  {schema.fingerprint.hex()}  {schema.event_type}")


# -- broker ------------------------------------------------------------------------------------


@broker_app.command("provision")
def broker_provision() -> None:
    """Download Apache Kafka's jars from Maven Central into the cache (no-op when cached)."""
    try:
        libs = localkafka.provision(Settings().broker.cache_dir)
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(str(libs))


@broker_app.command("start")
def broker_start() -> None:
    """Start the local broker (or find it running) and print its bootstrap address."""
    try:
        typer.echo(_bootstrap(Settings(), None))
    except LintasError as exc:
        raise _fail(exc) from exc


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker this command started, and nothing else."""
    stopped = _local_broker(Settings()).stop()
    typer.echo("stopped" if stopped else "not running")


@broker_app.command("status")
def broker_status() -> None:
    status = _local_broker(Settings()).status()
    if status is None or not status.alive:
        typer.echo("not running")
        raise typer.Exit(code=1)
    typer.echo(f"running pid={status.pid} bootstrap={status.bootstrap}")


# -- topics ------------------------------------------------------------------------------------


@topics_app.command("init")
def topics_init(
    bootstrap_servers: BootstrapOption = None,
    partitions: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create every per-country topic that is missing (idempotent)."""
    settings = Settings()
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers)
        report = asyncio.run(
            ensure_topics(
                bootstrap,
                all_topics(settings.topics.countries),
                partitions=partitions or settings.topics.partitions,
                replication_factor=settings.topics.replication_factor,
                options=client_options(settings),
            )
        )
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(f"created {len(report.created)}, already present {len(report.existing)}")


# -- demo --------------------------------------------------------------------------------------


async def _demo(settings: Settings, bootstrap: str, cases: int, language: str) -> None:
    options = client_options(settings)
    countries = settings.topics.countries
    await ensure_topics(
        bootstrap, all_topics(countries), partitions=settings.topics.partitions, options=options
    )
    now = datetime.now(UTC)
    codec = Codec()
    events = list(synthetic_stream(seed=2026, cases=cases, start=now - timedelta(days=540), until=now))
    kafka_producer = producer(bootstrap, **options)
    await kafka_producer.start()
    try:
        published = await publish_events(kafka_producer, codec, events)
    finally:
        await kafka_producer.stop()
    log.info("demo_published", events=published, cases=cases)

    publishers = sorted({event.envelope.source_country.value for event in events})
    records = await read_all(bootstrap, [nrm_events(cc) for cc in publishers], **options)
    decoded = [codec.decode(record.value) for record in records]
    labels = labels_for(language)
    typer.echo(f"\n{len(decoded)} events read back from {len(publishers)} national topics")
    by_country = Counter(event.envelope.source_country for event in decoded)
    for country, count in by_country.most_common():
        typer.echo(f"  {labels.label(country):<28} {count:>6}")
    typer.echo("")
    for event in decoded[:5]:
        envelope = event.envelope
        destination = envelope.destination_country
        typer.echo(
            f"  {envelope.case_id:<16} {labels.label(envelope.event_type):<30} "
            f"{labels.label(envelope.source_country)} -> "
            f"{labels.label(destination) if destination else '-'}"
        )


@app.command()
def demo(
    bootstrap_servers: BootstrapOption = None,
    cases: Annotated[int, typer.Option(min=1, help="Synthetic cases to publish.")] = 300,
    lang: Annotated[str, typer.Option(help="Language of the labels shown.")] = "en",
) -> None:
    """Start the hub on the embedded broker and run national systems of several countries."""
    settings = Settings()
    configure_logging(settings.log_format)
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers)
        log.info("broker_ready", bootstrap=bootstrap)
        asyncio.run(_demo(settings, bootstrap, cases, lang))
    except LintasError as exc:
        raise _fail(exc) from exc


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
