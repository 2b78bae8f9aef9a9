"""``lintas simulate``: the region's national systems publishing a live plan, or a mass release, on
the hub's clock (``LINTAS_CLOCK__START``/``__ORIGIN``/``__SPEED``, or ``--speed``)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import structlog
import typer

from hub.clock import Clock, make_clock, simulated
from hub.errors import LintasError
from hub.events import Event
from hub.logging import configure_logging
from hub.options import BootstrapOption
from hub.settings import Settings
from hub.simulation.logins import DemoLogins
from hub.simulation.mass_release import mass_release
from hub.simulation.plan import Scheduled, live_plan
from hub.simulation.run import Doors, EventDoor, RegionWriter, run

__all__ = ["simulate_app"]

simulate_app = typer.Typer(
    help="National systems of the region publishing on the hub's clock.", no_args_is_help=True
)
log = structlog.get_logger("lintas.simulation")

LoginsOption = Annotated[
    Path, typer.Option("--logins", help="The demo logins (written by lintas up): the API and its tokens.")
]
SeedOption = Annotated[int, typer.Option(help="The seed: the same seed and start give the same events.")]
SpeedOption = Annotated[
    float | None,
    typer.Option(min=0.001, help="Simulated seconds per real second, from now (default: LINTAS_CLOCK__*)."),
]


def _fail(error: Exception) -> typer.Exit:
    typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=1)


def _joined(path: Path) -> DemoLogins:
    """The logins of a running hub, its shared settings taken into this process's environment
    (before the settings are read): its clock, broker and stores, as ``lintas up`` gave its children."""
    try:
        logins = DemoLogins.load(path)
    except LintasError as exc:
        raise _fail(exc) from exc
    logins.join()
    return logins


def _clock(settings: Settings, speed: float | None) -> Clock:
    clock = make_clock(settings.clock)
    return clock if speed is None else make_clock(simulated(clock(), speed))


def _tag(now: datetime) -> str:
    """A tag per run keeps its cases apart from earlier runs' on the same hub."""
    return f"S{int(now.timestamp()) % 100_000:05d}-"


class _Counting:
    """A door that counts what it published per country other than ``host``: events, and cases."""

    def __init__(self, door: EventDoor, host: str, counts: Counter[str], cases: dict[str, set[str]]) -> None:
        self.door, self.host, self.counts, self.cases = door, host, counts, cases

    async def publish(self, events: Sequence[Event]) -> int:
        count = await self.door.publish(events)
        for event in events:
            envelope = event.envelope
            source = envelope.source_country.value
            other = (
                envelope.destination_country.value
                if source == self.host and envelope.destination_country
                else source
            )
            self.counts[other] += 1
            self.cases.setdefault(other, set()).add(envelope.case_id)
        return count

    async def close(self) -> None:
        await self.door.close()


async def _publish(
    settings: Settings,
    bootstrap: str,
    logins: DemoLogins,
    clock: Clock,
    plans: Callable[[datetime], list[Scheduled] | None],
    counts: Counter[str] | None = None,
    cases: dict[str, set[str]] | None = None,
    host: str = "",
) -> int:
    from hub.cli import _DemoConnections, _ensure_all_topics, national_systems  # hub.cli registers this app

    await _ensure_all_topics(settings, bootstrap)
    connections = _DemoConnections(settings)
    doors = Doors.of(
        settings,
        bootstrap,
        logins,
        options_of=connections.options,
        writer=RegionWriter(national_systems(settings)),
        clock=clock,
    )
    if counts is not None and cases is not None:
        doors = Doors(
            {door: _Counting(each, host, counts, cases) for door, each in doors.doors.items()},
            settle=doors.settle,
            _folder=doors._folder,
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    published = 0
    try:
        while not stop.is_set() and (plan := plans(clock())) is not None:
            typer.echo(
                f"{len(plan)} events planned, to {plan[-1].at:%Y-%m-%d %H:%M} UTC" if plan else "empty plan"
            )
            published += await run(plan, clock=clock, doors=doors, stop=stop)
    finally:
        await doors.close()
    return published


@simulate_app.command("run")
def run_command(
    logins: LoginsOption,
    bootstrap_servers: BootstrapOption = None,
    seed: SeedOption = 1,
    cases: Annotated[int, typer.Option(min=1, help="Cases of the plan.")] = 200,
    speed: SpeedOption = None,
    until_done: Annotated[
        bool,
        typer.Option("--until-done/--forever", help="Exit once the plan is published, or plan again."),
    ] = True,
) -> None:
    """Publish a live plan: cases opened over the last 45 days and the next 30, each event when the
    clock reaches it, through its country's door."""
    from hub.cli import _bootstrap  # hub.cli registers this app: imported when run

    login_file = _joined(logins)
    settings = Settings()
    configure_logging(settings.log_format)
    clock = _clock(settings, speed)
    rounds = 0

    def plans(now: datetime) -> list[Scheduled] | None:
        nonlocal rounds
        if rounds and until_done:
            return None
        rounds += 1
        # Forever: each new plan opens new cases from now on, the earlier ones are the history.
        history = timedelta(days=45) if rounds == 1 else timedelta(0)
        return live_plan(seed + rounds - 1, now, cases=cases, run_tag=_tag(now), history=history)

    try:
        bootstrap = _bootstrap(settings, bootstrap_servers)
        published = asyncio.run(_publish(settings, bootstrap, login_file, clock, plans))
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{published} events published")


@simulate_app.command("mass-release")
def mass_release_command(
    logins: LoginsOption,
    bootstrap_servers: BootstrapOption = None,
    people: Annotated[int, typer.Option(min=1, help="People released.")] = 7000,
    host: Annotated[str, typer.Option(help="The country they cross into.")] = "TH",
    seed: SeedOption = 1,
    days_ago: Annotated[
        float, typer.Option(min=0, help="The release began this many days ago: what is due goes at once.")
    ] = 0.0,
    speed: SpeedOption = None,
) -> None:
    """Publish a scam-compound release: screening, referral to every home country, answers, and the
    returns in waves; prints what was published per home country."""
    from hub.cli import _bootstrap  # hub.cli registers this app: imported when run

    login_file = _joined(logins)
    settings = Settings()
    configure_logging(settings.log_format)
    clock = _clock(settings, speed)
    counts: Counter[str] = Counter()
    cases: dict[str, set[str]] = {}
    done = False

    def plans(now: datetime) -> list[Scheduled] | None:
        nonlocal done
        if done:
            return None
        done = True
        start = now - timedelta(days=days_ago)
        return mass_release(seed, start, people=people, host=host.upper(), run_tag=_tag(now))

    try:
        bootstrap = _bootstrap(settings, bootstrap_servers)
        published = asyncio.run(
            _publish(settings, bootstrap, login_file, clock, plans, counts, cases, host=host.upper())
        )
    except LintasError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{published} events published; per home country, people and events:")
    for country, count in counts.most_common():
        typer.echo(f"  {country}  {len(cases[country]):>6} people  {count:>7} events")
