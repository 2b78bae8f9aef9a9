"""``lintas api``, ``lintas credentials ...`` and ``lintas openapi``: the HTTP door's commands."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from connectors.api.credentials import CredentialError, Credentials, Role

credentials_app = typer.Typer(help="Credentials of the API's principals.", no_args_is_help=True)

#: Where the committed OpenAPI document lives (a test compares it with the served one).
OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "api" / "openapi.json"

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="The read store (a path or a URL); LINTAS_API__STORE by default."),
]


def _store(given: str | None) -> object:
    from connectors.readstore.store import ReadStore
    from hub.settings import Settings

    return ReadStore(given or Settings().api.store).create()


@credentials_app.command("issue")
def credentials_issue(
    country: Annotated[str, typer.Argument(help="The principal's country, e.g. TH.")],
    role: Annotated[Role, typer.Option(help="What the principal does.")],
    agency: Annotated[str | None, typer.Option(help="The agency, e.g. TH-DSDW.")] = None,
    label: Annotated[str | None, typer.Option(help="Who holds it (for the listing).")] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Days until it expires.")] = 90,
    store: StoreOption = None,
) -> None:
    """Issue a credential; the token is printed once and stored only as a digest."""
    credentials = Credentials(_store(store))  # type: ignore[arg-type]
    try:
        issued = credentials.issue(
            country.upper(), role, agency=agency, label=label, validity=timedelta(days=days)
        )
    except CredentialError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from error
    principal = issued.principal
    typer.echo(f"credential {principal.credential_id}: {principal.country} {principal.role.value}", err=True)
    typer.echo(f"expires {issued.expires_at:%Y-%m-%d %H:%M} UTC; it is shown only now", err=True)
    typer.echo(issued.token)


@credentials_app.command("list")
def credentials_list(store: StoreOption = None) -> None:
    """Every credential (never a token)."""
    for entry in Credentials(_store(store)).listing():  # type: ignore[arg-type]
        state = "revoked" if entry["revoked_at"] else f"expires {str(entry['expires_at'])[:10]}"
        typer.echo(
            f"{entry['credential_id']}  {entry['country']}  {entry['role']:<15} "
            f"{entry['agency'] or '-':<12} {state}  {entry['label'] or ''}"
        )


@credentials_app.command("revoke")
def credentials_revoke(credential_id: str, store: StoreOption = None) -> None:
    """Revoke a credential at once."""
    if not Credentials(_store(store)).revoke(credential_id):  # type: ignore[arg-type]
        typer.secho(f"error: no live credential {credential_id}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {credential_id}")


def openapi_document() -> dict[str, object]:
    """The API's OpenAPI document, built without connecting to anything."""
    from connectors.api.app import create_app

    app = create_app(None)  # type: ignore[arg-type]
    return app.openapi()


def openapi_text() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def write_openapi(target: Path = OPENAPI_FILE) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(openapi_text(), encoding="utf-8")
    return target
