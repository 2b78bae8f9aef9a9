"""Command-line options shared by every command group (``hub.cli`` and the connectors' commands)."""

from __future__ import annotations

from typing import Annotated

import typer

BootstrapOption = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        envvar="LINTAS_BOOTSTRAP_SERVERS",
        help="An existing Kafka cluster; without it the embedded local broker is started.",
    ),
]
