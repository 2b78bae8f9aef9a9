"""The ``lintas`` command."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
from pydantic import SecretStr

from connectors.api.cli import credentials_app, openapi_text, write_openapi
from connectors.importer.cli import import_command
from connectors.webhooks.cli import app as webhooks_app
from hub.agreements import config_root, load_agreements, load_directory
from hub.broker import local as broker_local
from hub.broker.config import OPERATOR, SCRAM_MECHANISM
from hub.broker.layout import ensure_layout
from hub.clock import make_clock
from hub.codec import Codec
from hub.codegen import CONTRACT_MODULE, generate
from hub.codes import labels_for
from hub.compatibility import check_contract
from hub.contract import CountryCode, ReceiptStatus
from hub.crypto.keystore import KeyStore, open_key_store
from hub.crypto.signing import load_key_directory
from hub.errors import BrokerError, LintasError
from hub.kafka import client_options, ensure_topics, producer, publish_events, read_all
from hub.logging import configure_logging
from hub.options import BootstrapOption
from hub.processor import ProcessorConfig, rdkafka_options, read_health
from hub.routing import Router
from hub.schema_registry import default_contract
from hub.security.cli import acl_app
from hub.security.principals import ALERTS, API, ROUTER, STATS, national_system, principals
from hub.settings import Settings
from hub.simulation.cli import simulate_app
from hub.synthetic import causal_rounds, synthetic_stream
from hub.topics import ACCEPTED_EVENTS, REGIONAL_STATS, all_topics, focal_inbox, nrm_events, nrm_receipts
from hub.up import up as up_command
from hub.wire.codec import Wire
from hub.wire.evidence import LoggedEvent, Verdict, export_case, verify_evidence
from hub.wire.national import NationalSystems, hub_signer, key_directory
from hub.wire.retention import expired_cases
from hub.wire.schemas import WIRE_VERSION, write_section_files
from hub.worker import GROUP_ID as ROUTER_GROUP
from hub.worker import RouterWorker
from projections.agenda.build import build_agenda
from projections.agenda.render import to_html, to_markdown, to_pdf
from projections.alerts.worker import GROUP_ID as ALERTS_GROUP
from projections.alerts.worker import AlertWorker
from projections.cases.fold import CaseState
from projections.obligations.rules import alerts_for, deadlines_for, obligations
from projections.replay import replay_cases
from projections.stats.aggregate import Check, month_of, regional_statistics, to_table
from projections.stats.kafka import publish_document, read_publications
from projections.stats.protection import InconsistentPublication, ProtectionFailed
from projections.stats.publication import from_document, next_period, to_csv, to_document, to_xlsx
from projections.stats.rules import StatisticsRules, load_rules

app = typer.Typer(help="Lintas: transnational referral message hub.", no_args_is_help=True)
schemas_app = typer.Typer(help="The Avro contract in schemas/avro.", no_args_is_help=True)
broker_app = typer.Typer(help="The embedded single-node Apache Kafka.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
evidence_app = typer.Typer(help="Signed evidence of who sent what, when.", no_args_is_help=True)
keys_app = typer.Typer(help="The cases' data keys (crypto-shredding).", no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")
app.add_typer(keys_app, name="keys")
app.add_typer(schemas_app, name="schemas")
app.add_typer(broker_app, name="broker")
app.add_typer(topics_app, name="topics")
app.add_typer(credentials_app, name="credentials")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(acl_app, name="acl")
app.add_typer(simulate_app, name="simulate")
app.command("import")(import_command)
app.command("up")(up_command)

log = structlog.get_logger("lintas.cli")


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


LocalKafka = broker_local.LocalBroker | broker_local.LocalCluster


def _local_broker(settings: Settings, nodes: int | None = None, *, libs: Path | None = None) -> LocalKafka:
    """The embedded broker in ``settings.broker.home``: a cluster if one was made there (or
    ``nodes`` > 1 asks for one), else a single node. Formatted with every principal of the layout;
    run from ``libs`` (else the default jar cache, provisioned on start)."""
    home = settings.broker.home
    nodes = nodes or settings.broker.nodes
    users = tuple(principal.name for principal in principals(_countries(settings)))
    if nodes > 1 or (home / "cluster.json").is_file():
        if (home / "broker.json").is_file():
            raise BrokerError(f"{home} holds a single broker: stop it and delete the folder for a cluster")
        return broker_local.LocalCluster(home, libs, nodes=max(nodes, 1), users=users)
    return broker_local.LocalBroker(home=home, libs=libs, users=users)


def _bootstrap(settings: Settings, given: str | None, user: str = OPERATOR) -> str:
    """The cluster to talk to: the one given, else the embedded broker (started if needed), whose
    connection as ``user`` is then written into ``settings``."""
    given = given or settings.bootstrap_servers
    if given:
        return given
    broker = _local_broker(settings, libs=broker_local.provision(settings.broker.cache_dir))
    bootstrap = broker.start(timeout=settings.broker.start_timeout)
    connect_as(settings, broker, OPERATOR)
    # Principals of countries added since the storage was formatted, and the ACLs of everyone.
    ensure_layout(bootstrap, rdkafka_options(client_options(settings)), _countries(settings), broker.secrets)
    connect_as(settings, broker, user)
    return bootstrap


def connect_as(settings: Settings, broker: LocalKafka, user: str) -> None:
    """Point ``settings`` at the embedded broker as ``user`` (SASL_SSL, its CA, its password)."""
    settings.security_protocol = "SASL_SSL"
    settings.sasl_mechanism = SCRAM_MECHANISM
    settings.sasl_username = user
    settings.sasl_password = SecretStr(broker.secrets.require(user))
    settings.ssl_cafile = broker.ca_file


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
    latest = default_contract().latest
    CONTRACT_MODULE.write_text(generate(latest), encoding="utf-8")
    typer.echo(f"wrote {CONTRACT_MODULE}")
    if latest.version >= WIRE_VERSION:
        written = write_section_files(latest)
        typer.echo(f"wrote {len(written)} section schemas to {latest.directory / 'sections'}")


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
        libs = broker_local.provision(Settings().broker.cache_dir)
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(str(libs))


@broker_app.command("start")
def broker_start(
    nodes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="KRaft nodes: 3 for a cluster that loses one without losing data (LINTAS_BROKER__NODES).",
        ),
    ] = None,
) -> None:
    """Start the local broker (or cluster, or find it running) and print its bootstrap address."""
    settings = Settings()
    if nodes is not None:
        settings.broker.nodes = nodes
    try:
        bootstrap = _bootstrap(settings, None)
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(bootstrap)
    typer.echo(
        f"SASL_SSL, SCRAM-SHA-512; CA {settings.ssl_cafile}; passwords in "
        f"{_local_broker(settings).secrets.directory}",
        err=True,
    )


@broker_app.command("stop")
def broker_stop() -> None:
    """Stop the local broker (every node of a local cluster) this command started, and nothing else."""
    broker = _local_broker(Settings())
    stopped = broker.stop()
    typer.echo("stopped" if stopped else "not running")


@broker_app.command("status")
def broker_status() -> None:
    broker = _local_broker(Settings())
    members = broker.members if isinstance(broker, broker_local.LocalCluster) else [broker]
    running = 0
    for member in members:
        status = member.status()
        if status is not None and status.alive:
            running += 1
            typer.echo(f"node {member.node_id} running pid={status.pid} bootstrap={status.bootstrap}")
        else:
            typer.echo(f"node {member.node_id} not running")
    if running < len(members):
        raise typer.Exit(code=1)


@broker_app.command("secrets")
def broker_secrets(
    out: Annotated[Path, typer.Option(help="Where the CA, node certificates and passwords go.")],
    nodes: Annotated[int, typer.Option(min=1)] = 3,
    host: Annotated[str, typer.Option(help="Host name of node {id}.")] = "kafka-{id}",
) -> None:
    """Make a deployment's CA, node certificates and principals' passwords (keeps what exists)."""
    from hub.broker.node import write_secrets

    settings = Settings()
    written = write_secrets(out, nodes, host, [p.name for p in principals(_countries(settings))])
    typer.echo(f"wrote {len(written)} files to {out}")


@broker_app.command("node")
def broker_node(
    node_id: Annotated[int, typer.Option(min=1, help="This node's id (one of the voters).")],
    voters: Annotated[str, typer.Option(help="Every node: 1@kafka-1,2@kafka-2,3@kafka-3.")],
    secrets: Annotated[Path, typer.Option(help="What `lintas broker secrets` wrote.")],
    data: Annotated[Path, typer.Option(help="This node's storage.")],
    bind: Annotated[str, typer.Option(help="Address the listeners bind to.")] = "0.0.0.0",  # noqa: S104
) -> None:
    """Run one node of a deployed cluster in the foreground (the containers of docker/compose.yaml)."""
    from hub.broker.node import node_config, parse_voters, run_node

    try:
        config = node_config(node_id, parse_voters(voters), secrets, data, bind)
        run_node(config, secrets, data)
    except LintasError as exc:
        raise _fail(exc) from exc


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
                all_topics(_countries(settings)),
                partitions=partitions or settings.topics.partitions,
                replication_factor=settings.topics.replication_factor,
                options=client_options(settings),
            )
        )
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(f"created {len(report.created)}, already present {len(report.existing)}")


# -- worker ------------------------------------------------------------------------------------


def make_router(settings: Settings, codec: Codec | None = None) -> Router:
    """The v2 router: verifies signatures against the directory of public keys, signs its receipts
    with the hub's key, converts v1 events of the countries the directory lets it sign for."""
    agreements = load_agreements(settings.agreements_path)
    directory = load_directory(settings.directory_path, agreements=agreements)
    codec = codec or Codec(clock=make_clock(settings.clock))
    wire = Wire(codec, directory=key_directory(settings), keys=open_keys(settings))
    signs_for = frozenset(
        entry.country.value for entry in directory.countries if getattr(entry, "hub_signs_v1", False)
    )
    return Router(
        codec=codec,
        agreements=agreements,
        wire=wire,
        hub_signer=hub_signer(settings),
        hub_signs_for=signs_for,
    )


def open_keys(settings: Settings) -> KeyStore:
    """The key store of the cases' data keys (created on first use)."""
    store = settings.keys.store
    if "://" not in store:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    return open_key_store(store)


def national_systems(settings: Settings, codec: Codec | None = None) -> NationalSystems:
    """Every demo country's national system (their published demo keys)."""
    return NationalSystems(
        Wire(codec or Codec(), directory=key_directory(settings)), open_keys(settings), omit_erased=True
    )


def _countries(settings: Settings) -> list[str]:
    """The configured countries and every party to an agreement: each needs its topics."""
    parties = {
        country.value
        for corridor in load_agreements(settings.agreements_path).corridors
        for country in corridor.countries
    }
    return sorted(set(settings.topics.countries) | parties)


async def _ensure_all_topics(settings: Settings, bootstrap: str) -> None:
    """Create the missing topics, unless running as one of the hub's own principals: they may not
    create topics (nor see those they do not use); the operator does (``lintas topics init``)."""
    if settings.sasl_username not in (None, OPERATOR):
        return
    await ensure_topics(
        bootstrap,
        all_topics(_countries(settings)),
        partitions=settings.topics.partitions,
        replication_factor=settings.topics.replication_factor,
        options=client_options(settings),
    )


def _processor_options(settings: Settings, group: str, instance: str) -> dict[str, Any]:
    """What every stream worker takes from the settings: client options, timeouts, health file."""
    processor = settings.processor
    status_dir = processor.status_dir
    return {
        "instance": instance,
        "client_options": client_options(settings),
        "max_batch": processor.max_batch,
        "config": ProcessorConfig(
            session_timeout_ms=processor.session_timeout_ms,
            transaction_timeout_ms=processor.transaction_timeout_ms,
            commit_interval_ms=processor.commit_interval_ms,
        ),
        "status_file": status_dir / f"{group}-{instance}.json" if status_dir is not None else None,
    }


async def _run_worker(settings: Settings, bootstrap: str, instance: str, group: str) -> None:
    await _ensure_all_topics(settings, bootstrap)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    router = make_router(settings)
    worker = RouterWorker(
        bootstrap,
        router,
        group_id=group,
        keys=router.wire.keys if router.wire else None,
        **_processor_options(settings, group, instance),
    )
    await worker.run(stop)


@app.command()
def worker(
    bootstrap_servers: BootstrapOption = None,
    instance: Annotated[
        str,
        typer.Option(
            envvar="LINTAS_INSTANCE", help="Stable id of this worker; a restart with the same id takes over."
        ),
    ] = "0",
    group: Annotated[
        str, typer.Option(help="Consumer group; workers of one group share the partitions.")
    ] = ROUTER_GROUP,
) -> None:
    """Run the routing worker: validate, authorise, minimise and route every national event."""
    settings = Settings()
    configure_logging(settings.log_format)
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers, ROUTER)
        asyncio.run(_run_worker(settings, bootstrap, instance, group))
    except LintasError as exc:
        raise _fail(exc) from exc


@app.command()
def health(
    status_file: Annotated[
        Path, typer.Argument(help="A worker's health file (LINTAS_PROCESSOR__STATUS_DIR).")
    ],
    stale_after: Annotated[
        float, typer.Option(help="Seconds after which a silent worker is not live.")
    ] = 30.0,
) -> None:
    """Print a worker's health; exit 0 when it is live and ready, 1 when live only, 2 when not live."""
    live, ready, body = read_health(status_file, stale_after=stale_after)
    typer.echo(json.dumps(body, indent=1) if body else f"{status_file}: no health file")
    raise typer.Exit(0 if ready else 1 if live else 2)


# -- projections ---------------------------------------------------------------------------------


@app.command()
def alerts(
    bootstrap_servers: BootstrapOption = None,
    instance: Annotated[str, typer.Option(envvar="LINTAS_INSTANCE", help="Stable id of this worker.")] = "0",
    every: Annotated[float, typer.Option(help="Seconds between deadline checks.")] = 10.0,
) -> None:
    """Run the alert feed: fold accepted events and send due-soon and overdue alerts."""
    settings = Settings()
    configure_logging(settings.log_format)

    async def run(bootstrap: str) -> None:
        await _ensure_all_topics(settings, bootstrap)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        clock = make_clock(settings.clock)
        worker = AlertWorker(
            bootstrap,
            Codec(clock=clock),
            load_agreements(settings.agreements_path),
            clock=clock,
            signer=hub_signer(settings),
            **_processor_options(settings, ALERTS_GROUP, instance),
        )
        await worker.run(stop, tick_every=every)

    try:
        asyncio.run(run(_bootstrap(settings, bootstrap_servers, ALERTS)))
    except LintasError as exc:
        raise _fail(exc) from exc


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:  # a bare date means the end of that day, UTC
        moment = moment.replace(tzinfo=UTC)
        if len(value) == 10:
            moment += timedelta(days=1, milliseconds=-1)
    return moment


AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Show it as it stood then (ISO date or date-time).")
]


def _replayed(
    settings: Settings, bootstrap_servers: str | None, moment: datetime | None, user: str = OPERATOR
) -> tuple[str, dict[str, CaseState]]:
    """The cluster's address and every case rebuilt from the hub's log (as of ``moment``)."""
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers, user)
        states = asyncio.run(replay_cases(bootstrap, Codec(), as_of=moment, **client_options(settings)))
    except LintasError as exc:
        raise _fail(exc) from exc
    return bootstrap, states


@app.command()
def replay(
    bootstrap_servers: BootstrapOption = None,
    as_of: AsOfOption = None,
    into: Annotated[
        str | None,
        typer.Option(help="Rebuild this read store (a path or URL) from offset 0 instead."),
    ] = None,
) -> None:
    """Rebuild every projection from offset 0 of the hub's log and summarise the cases."""
    settings = Settings()
    if into is not None:
        from connectors.readstore.projector import replay_into
        from connectors.readstore.store import ReadStore

        bootstrap = _bootstrap(settings, bootstrap_servers)
        store = ReadStore(into)
        applied = asyncio.run(
            replay_into(bootstrap, store, Codec(), _countries(settings), **client_options(settings))
        )
        typer.echo(f"rebuilt {store.url.split('@')[-1]} from {applied} records")
        return
    _, states = _replayed(settings, bootstrap_servers, _as_of(as_of))
    typer.echo(f"{len(states)} cases")
    for stage, count in Counter(state.stage for state in states.values()).most_common():
        typer.echo(f"  {stage.value:<16} {count:>7}")


@app.command()
def case(
    case_id: str,
    bootstrap_servers: BootstrapOption = None,
    as_of: AsOfOption = None,
    lang: Annotated[str, typer.Option(help="Language of the labels.")] = "en",
) -> None:
    """One case's state, now or as of a past date (for a dispute at a CMM)."""

    settings = Settings()
    _, states = _replayed(settings, bootstrap_servers, _as_of(as_of))
    state = states.get(case_id)
    if state is None:
        typer.echo(f"no case {case_id}" + (f" as of {as_of}" if as_of else ""), err=True)
        raise typer.Exit(code=1)
    labels = labels_for(lang)
    typer.echo(
        f"{state.case_id}: {state.stage.value}, next action by "
        f"{labels.label(state.next_action_by) if state.next_action_by else '-'}"
    )
    typer.echo(
        f"  {labels.label(state.host)} -> {labels.label(state.home) if state.home else '-'}"
        f"; {labels.label(state.status)}; {labels.label(state.age_band)}"
    )
    for owed in obligations(state, deadlines_for(state, load_agreements(settings.agreements_path))):
        typer.echo(
            f"  owes {labels.label(owed.kind)} by {owed.due:%Y-%m-%d}: "
            f"{labels.label(owed.owner)} (waiting: {labels.label(owed.waiting)})"
        )


# -- evidence and keys ------------------------------------------------------------------------------


@evidence_app.command("export")
def evidence_export(
    case_id: str,
    out: Annotated[Path, typer.Option("--out", "-o", help="The evidence file to write (JSON).")],
    bootstrap_servers: BootstrapOption = None,
) -> None:
    """Export a case's events as accepted, with their signatures and the keys that verify them."""
    settings = Settings()
    codec = Codec()
    directory = key_directory(settings)
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers)
        records = asyncio.run(read_all(bootstrap, [ACCEPTED_EVENTS], **client_options(settings)))
    except LintasError as exc:
        raise _fail(exc) from exc
    logged = [
        LoggedEvent(r.topic, r.partition, r.offset, r.timestamp, r.value)
        for r in records
        if r.key == case_id.encode()
    ]
    document = export_case(
        case_id, logged, Wire(codec, directory=directory), directory, now=datetime.now(UTC)
    )
    _write_text(out, json.dumps(document, indent=2) + "\n")
    verdicts = verify_evidence(document, Wire(codec))
    _print_verdicts(verdicts)
    typer.echo(f"wrote {out}: {len(verdicts)} events of case {case_id}")
    if not all(verdict.verified for verdict in verdicts):
        raise typer.Exit(code=1)


@evidence_app.command("verify")
def evidence_verify(
    path: Path,
    keys: Annotated[
        Path | None,
        typer.Option(help="Verify against this directory of public keys instead of the file's own."),
    ] = None,
) -> None:
    """Verify an evidence file offline: every event's signature and section digests."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        directory = load_key_directory(keys) if keys is not None else None
        verdicts = verify_evidence(document, Wire(Codec()), directory=directory)
    except (OSError, ValueError, LintasError) as exc:
        raise _fail(exc) from exc
    _print_verdicts(verdicts)
    bad = [verdict for verdict in verdicts if not verdict.verified]
    typer.echo(f"{len(verdicts) - len(bad)} of {len(verdicts)} events verified")
    if bad:
        raise typer.Exit(code=1)


def _print_verdicts(verdicts: Sequence[Verdict]) -> None:
    for verdict in verdicts:
        mark = "ok " if verdict.verified else "BAD"
        typer.echo(
            f"{mark} {verdict.recorded_at} {verdict.event_type:<22} {verdict.event_id} "
            f"from {verdict.source_country} signed {verdict.signer}/{verdict.key_id}: {verdict.detail}"
        )


@keys_app.command("readers")
def keys_readers(case_id: str) -> None:
    """The countries that may open a case's sealed data, or when its keys were destroyed."""
    store = open_keys(Settings())
    tombstone = store.destroyed(case_id)
    if tombstone is not None:
        typer.echo(f"{case_id}: keys destroyed {tombstone.destroyed_at.isoformat()} ({tombstone.reason})")
        return
    readers = sorted(store.readers(case_id))
    typer.echo(f"{case_id}: " + (", ".join(readers) if readers else "no data key"))


@keys_app.command("shred")
def keys_shred(
    case_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept with the tombstone).")] = "retention ended",
) -> None:
    """Destroy a case's data keys: every copy of its personal data in Kafka becomes unreadable."""
    destroyed = open_keys(Settings()).destroy(case_id, reason=reason, at=datetime.now(UTC))
    typer.echo(f"{case_id}: keys destroyed" if destroyed else f"{case_id}: nothing left to destroy")


@keys_app.command("expire")
def keys_expire(bootstrap_servers: BootstrapOption = None, as_of: AsOfOption = None) -> None:
    """Destroy the keys of every case whose retention period under its agreement has ended."""
    settings = Settings()
    moment = _as_of(as_of) or datetime.now(UTC)
    _, states = _replayed(settings, bootstrap_servers, None)
    agreements = load_agreements(settings.agreements_path)
    store = open_keys(settings)
    expired = expired_cases(states.values(), agreements, moment)
    for case_id in expired:
        store.destroy(case_id, reason="retention ended", at=moment)
    typer.echo(f"{len(expired)} cases past their retention period; their keys are destroyed")


class AgendaFormat(StrEnum):
    markdown = "markdown"
    html = "html"
    pdf = "pdf"


@app.command()
def agenda(
    country_a: Annotated[str, typer.Argument(help="One country of the corridor, e.g. TH.")],
    country_b: Annotated[str, typer.Argument(help="The other, e.g. MM.")],
    bootstrap_servers: BootstrapOption = None,
    as_of: AsOfOption = None,
    lang: Annotated[str, typer.Option(help="Language of the agenda (en, th, my, km, lo, vi, ...).")] = "en",
    output_format: Annotated[AgendaFormat, typer.Option("--format")] = AgendaFormat.markdown,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")] = None,
) -> None:
    """The Case Management Meeting agenda of a corridor, as of a date, in the reader's language."""
    settings = Settings()
    agreements = load_agreements(settings.agreements_path)
    corridor = agreements.corridor(country_a.upper(), country_b.upper())
    if corridor is None:
        raise _fail(LintasError(f"no agreement joins {country_a.upper()} and {country_b.upper()}"))
    moment = _as_of(as_of) or datetime.now(UTC)
    _, states = _replayed(settings, bootstrap_servers, moment)
    try:
        built = build_agenda(states, corridor, as_of=moment)
        labels_for(lang)  # an unknown language fails here, before rendering
    except LintasError as exc:
        raise _fail(exc) from exc
    if output_format is AgendaFormat.pdf:
        document = to_pdf(built, lang)
        target = output or Path(f"agenda-{corridor.id}-{moment:%Y-%m-%d}-{lang}.pdf")
        target.write_bytes(document)
        typer.echo(str(target))
        return
    text = to_html(built, lang) if output_format is AgendaFormat.html else to_markdown(built, lang)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(str(output))


def _statistics_rules(settings: Settings, given: Path | None) -> StatisticsRules:
    return load_rules(given or settings.statistics_path or config_root() / "statistics.yaml")


def _check_line(check: Check) -> str:
    narrowest = "-" if check.narrowest is None else f"{check.narrowest:g}"
    return (
        f"check: {check.cells} cells, {check.withheld} withheld ({check.primary} primary, "
        f"{check.secondary} secondary), narrowest interval {narrowest}, "
        f"linked with {', '.join(check.linked) or 'none'}"
    )


@app.command()
def stats(
    bootstrap_servers: BootstrapOption = None,
    as_of: AsOfOption = None,
    rules_path: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="The safety rules (YAML); LINTAS_STATISTICS_PATH, else config/statistics.yaml."
        ),
    ] = None,
    first: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="YYYY-MM",
            help="First month; by default the month after the last one published, else the first case's.",
        ),
    ] = None,
    last: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="YYYY-MM", help="Last month; by default that of --as-of or the last event."
        ),
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of the labels.")] = "en",
    publish: Annotated[bool, typer.Option(help=f"Publish the document to {REGIONAL_STATS}.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write the figures as CSV.")] = None,
    xlsx_path: Annotated[Path | None, typer.Option("--xlsx", help="Write the figures as a workbook.")] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the publication's document.")
    ] = None,
) -> None:
    """Anonymised regional statistics, protected together with every earlier publication; with
    --publish, the next publication (by default the months since the last one)."""
    settings = Settings()
    moment = _as_of(as_of)
    try:
        rules = _statistics_rules(settings, rules_path)
        agreements = load_agreements(settings.agreements_path)
        labels_for(lang)  # an unknown language fails here, before anything is computed
    except LintasError as exc:
        raise _fail(exc) from exc
    bootstrap, states = _replayed(settings, bootstrap_servers, moment, STATS)
    try:
        documents = asyncio.run(read_publications(bootstrap, **client_options(settings)))
    except LintasError as exc:
        raise _fail(exc) from exc
    earlier = [from_document(document) for document in documents]
    cases = [state for state in states.values() if not state.void]
    latest = moment or max((state.last_event_at for state in cases), default=None)
    through = month_of(latest.date()) if latest is not None else None
    try:
        period = next_period(
            (state.identified_on for state in cases),
            earlier,
            through=through,
            unit=rules.period,
            first=first,
            last=last,
        )
        figures = regional_statistics(
            states.values(),
            agreements,
            rules=rules,
            as_of=moment.date() if moment else None,
            period=period,
            earlier=earlier,
        )
        wanted = publish or csv_path or xlsx_path or json_path
        document = to_document(figures, published=month_of(datetime.now(UTC).date())) if wanted else None
    except (InconsistentPublication, ProtectionFailed, ValueError) as exc:
        typer.secho(f"not published: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from exc
    typer.echo(to_table(figures, lang))
    typer.echo(_check_line(figures.check), err=True)
    if document is None:
        return
    try:
        if json_path is not None:
            _write_text(json_path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")
        if csv_path is not None:
            csv_path.parent.mkdir(parents=True, exist_ok=True)
            with csv_path.open("w", encoding="utf-8", newline="") as stream:
                to_csv(document, stream)
        if xlsx_path is not None:
            to_xlsx(document, xlsx_path, lang)
    except OSError as exc:
        raise _fail(exc) from exc
    if not publish:
        return
    label = figures.period.label if figures.period else "-"
    if document["id"] in {entry.id for entry in earlier}:
        typer.echo(f"{document['id']} ({label}) is published already on {REGIONAL_STATS}")
        return
    try:
        asyncio.run(_publish(settings, bootstrap, document))
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(f"published {document['id']} ({label}) to {REGIONAL_STATS}")


async def _publish(settings: Settings, bootstrap: str, document: Mapping[str, Any]) -> None:
    await ensure_topics(
        bootstrap,
        [REGIONAL_STATS],
        partitions=settings.topics.partitions,
        replication_factor=settings.topics.replication_factor,
        options=client_options(settings),
    )
    await publish_document(bootstrap, document, **client_options(settings))


# -- demo --------------------------------------------------------------------------------------


class _DemoConnections:
    """Client options per principal: each party's own on the embedded broker, the configured
    connection for everyone on a cluster given by ``--bootstrap-servers``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        local = settings.sasl_username == OPERATOR and settings.bootstrap_servers is None
        # Made once: building the broker's handle loads the agreements for its principals.
        self.broker = _local_broker(settings) if local else None

    def options(self, user: str) -> dict[str, Any]:
        if self.broker is None:
            return client_options(self.settings)
        return self.broker.client_options(user)


async def _demo(settings: Settings, bootstrap: str, cases: int, language: str) -> None:
    await _ensure_all_topics(settings, bootstrap)
    now = datetime.now(UTC)
    codec = Codec()
    # A tag per run keeps this run's cases apart from those of earlier runs on the same broker.
    run_tag = f"D{int(now.timestamp()) % 100_000:05d}-"
    events = list(
        synthetic_stream(
            seed=int(now.timestamp()),
            cases=cases,
            start=now - timedelta(days=540),
            until=now,
            run_tag=run_tag,
        )
    )
    # On the embedded broker every party connects as itself: the router as ``router``, each
    # national system as ``nrm-<cc>``; the ACLs let none of them do more than its job.
    connections = _DemoConnections(settings)
    # The hub: one routing worker in this process, reading from now on (earlier runs' events on
    # this broker were routed then; their case state is restored from the changelog).
    stop, started = asyncio.Event(), asyncio.Event()
    router = make_router(settings, codec)
    systems = national_systems(settings, codec)
    router_worker = RouterWorker(
        bootstrap,
        router,
        keys=systems.keys,
        group_id=ROUTER_GROUP,
        instance=f"demo-{run_tag.strip('-')}",
        client_options=connections.options(ROUTER),
        auto_offset_reset="latest",
    )
    worker_task = asyncio.create_task(router_worker.run(stop, started))
    await asyncio.wait_for(started.wait(), 60)

    async def routed(count: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        # The worker reports progress in counters; polling them is the simplest wait.
        while sum(router_worker.stats.outcomes.values()) < count and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    producers: dict[str, Any] = {}

    async def producer_of(country: str) -> Any:
        if country not in producers:
            producers[country] = producer(bootstrap, **connections.options(national_system(country)))
            await producers[country].start()
        return producers[country]

    async def publish(batch: Sequence[Any]) -> int:
        by_country: dict[str, list[Any]] = {}
        for event in batch:
            by_country.setdefault(event.envelope.source_country.value, []).append(event)
        counts = [
            await publish_events(await producer_of(country), systems, country_events)
            for country, country_events in by_country.items()
        ]
        return sum(counts)

    published = 0
    try:
        for round_events in causal_rounds(events):
            published += await publish(round_events)
            await routed(published)
        # What national systems get wrong: a resubmission, a corridor no agreement covers, and
        # bytes that are no event at all. Each gets a receipt saying so.
        first = events[0]
        stray = first.model_copy(
            update={
                "envelope": first.envelope.model_copy(
                    update={
                        "event_id": uuid.uuid4(),
                        "case_id": f"{first.envelope.source_country.value}-{run_tag}STRAY",
                        "destination_country": CountryCode.SG,
                    }
                )
            }
        )
        published += await publish([first, stray])
        junk_key = f"TH-{run_tag}JUNK".encode()
        await (await producer_of("TH")).send_and_wait(nrm_events("TH"), b"not an event", key=junk_key)
        published += 1
        await routed(published)
    finally:
        for kafka_producer in producers.values():
            await kafka_producer.stop()
    log.info("demo_published", events=published, cases=cases)
    stop.set()
    await worker_task
    options = client_options(settings)  # the report reads every country's topics: the operator's

    publishers = sorted({event.envelope.source_country.value for event in events})
    receivers = sorted(
        {e.envelope.destination_country.value for e in events if e.envelope.destination_country}
    )
    ours = run_tag.encode()
    receipts = [
        codec.decode_receipt(record.value)
        for record in await read_all(bootstrap, [nrm_receipts(cc) for cc in publishers], **options)
        if record.key is not None and ours in record.key
    ]
    inbox = [
        record
        for record in await read_all(bootstrap, [focal_inbox(cc) for cc in receivers], **options)
        if record.key is not None and ours in record.key
    ]
    labels = labels_for(language)
    typer.echo(f"\n{published} events published by {len(publishers)} national systems")
    status_counts = Counter(receipt.status for receipt in receipts)
    typer.echo("receipts: " + ", ".join(f"{labels.label(s)} {n}" for s, n in status_counts.most_common()))
    for receipt in receipts:
        if receipt.status != ReceiptStatus.Accepted:
            typer.echo(f"  {labels.label(receipt.status)}: {receipt.message}")
    typer.echo(f"\n{len(inbox)} events delivered to focal-point inboxes:")
    for topic, count in Counter(record.topic for record in inbox).most_common():
        country = CountryCode(topic.split(".")[2].upper())
        typer.echo(f"  {labels.label(country):<28} {count:>6}")
    withheld = [r for r in receipts if r.withheld]
    if withheld:
        sample = withheld[0]
        kind = labels.label(sample.event_type) if sample.event_type else "?"
        typer.echo(
            f"\nminimised per agreement and consent: {len(withheld)} events, e.g. case "
            f"{sample.case_id} ({kind}) sent without {', '.join(sample.withheld)}"
        )

    # The projections, rebuilt from the hub's log: what is owed now, and the next TH-MM meeting.
    agreements = load_agreements(settings.agreements_path)
    states = {
        case_id: state
        for case_id, state in (await replay_cases(bootstrap, codec, **options)).items()
        if run_tag in case_id
    }
    owed = Counter(
        (alert.obligation.kind, alert.level)
        for state in states.values()
        for alert in alerts_for(state, deadlines_for(state, agreements), now)
    )
    typer.echo(f"\n{len(states)} cases in the projections; alerts open now:")
    for (kind, level), count in sorted(owed.items(), key=lambda item: -item[1]):
        typer.echo(f"  {labels.label(kind):<44} {labels.label(level):<14} {count:>5}")
    corridor = agreements.corridor("TH", "MM")
    if corridor is not None:
        target = Path(".lintas") / f"agenda-{corridor.id}-{now:%Y-%m-%d}-{language}.md"
        text = to_markdown(build_agenda(states, corridor, as_of=now), language)
        await asyncio.to_thread(_write_text, target, text)
        typer.echo(f"\nagenda of the next Thailand-Myanmar case management meeting: {target}")


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@app.command()
def api(
    bootstrap_servers: BootstrapOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (LINTAS_API__HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (LINTAS_API__PORT).")] = None,
    projector: Annotated[
        bool | None,
        typer.Option(help="Keep the read store current in this process (one per store)."),
    ] = None,
) -> None:
    """Serve the HTTP API (/v1) for national systems, focal points and the regional body."""
    from connectors.api.server import build, serve

    settings = Settings()
    configure_logging(settings.log_format)
    try:
        bootstrap = _bootstrap(settings, bootstrap_servers, API)
        asyncio.run(_ensure_all_topics(settings, bootstrap))
        running = build(
            settings,
            bootstrap,
            open_keys(settings),
            _countries(settings),
            projector=projector,
            clock=make_clock(settings.clock),
            **client_options(settings),
        )
    except LintasError as exc:
        raise _fail(exc) from exc
    listen_host, listen_port = host or settings.api.host, settings.api.port if port is None else port
    typer.echo(f"Lintas API on http://{listen_host}:{listen_port}/v1 (OpenAPI: /v1/openapi.json)", err=True)
    serve(running, listen_host, listen_port)


@app.command()
def openapi(
    write: Annotated[bool, typer.Option(help="Write docs/api/openapi.json instead of printing.")] = False,
) -> None:
    """The API's OpenAPI document (the committed copy is docs/api/openapi.json)."""
    if write:
        typer.echo(str(write_openapi()))
    else:
        typer.echo(openapi_text(), nl=False)


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
