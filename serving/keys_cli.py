"""`demandops keys ...`: API keys of the forecast service (serving/api_keys.py), in the profile's database.

A key is shown once, when it is created. The service asks for one on every API request when
DEMANDOPS_SERVING__REQUIRE_KEYS is on (on in the production profile), and rereads the table every
DEMANDOPS_SERVING__KEYS_REFRESH_S seconds: a new key or a revocation reaches it within that time.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from demandops.settings import get_settings
from serving.api_keys import ApiKey, KeyStore

app = typer.Typer(help=__doc__, no_args_is_help=True)
RATE = re.compile(r"(\d+)\s*/\s*s")


def open_keys() -> KeyStore:
    settings = get_settings()
    settings.prepare_state()  # in production, the database and its schema exist before the table is made
    return KeyStore(settings.mlflow_database_url)


def parse_rate(text: str | None) -> int | None:
    """'20/s' -> 20; None -> no rate limit."""
    if text is None:
        return None
    match = RATE.fullmatch(text.strip())
    if match is None or int(match.group(1)) < 1:
        raise typer.BadParameter(f"{text!r} is not a rate; expected whole requests per second, e.g. 20/s")
    return int(match.group(1))


@app.command()
def create(
    name: Annotated[str, typer.Option(help="Who uses the key, e.g. replenishment-eu; unique.")],
    rate: Annotated[str | None, typer.Option(help="Most requests per second, e.g. 20/s; none: no limit.")] = None,
    daily_quota: Annotated[int | None, typer.Option(min=1, help="Most requests per 24 hours; none: no quota.")] = None,
) -> None:
    """Create a key and print it, once: it is stored only as a digest."""
    key, plaintext = open_keys().create(name, rate_per_s=parse_rate(rate), daily_quota=daily_quota)
    typer.echo(plaintext)
    typer.echo(f"key {key.name!r} created ({_limits(key)}); it is not shown again: store it now", err=True)


@app.command("list")
def list_keys(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every key: its name, first characters, limits, and when it was created or revoked."""
    keys = open_keys().list()
    if as_json:
        rows = [
            {
                "name": k.name,
                "shown": k.shown,
                "rate_per_s": k.rate_per_s,
                "daily_quota": k.daily_quota,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in keys
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not keys:
        typer.echo("no API keys; create one with `demandops keys create --name NAME`")
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked else "active"
        typer.echo(f"{k.name:24} {k.shown:16} {_limits(k):36} created {k.created_at:%Y-%m-%d %H:%M}  {state}")


@app.command()
def revoke(name: Annotated[str, typer.Argument(help="The key's name (see `demandops keys list`).")]) -> None:
    """Revoke a key: the service answers it 403 once it has reread the table."""
    key = open_keys().revoke(name)
    typer.echo(f"key {key.name!r} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


def _limits(key: ApiKey) -> str:
    rate = f"{key.rate_per_s}/s" if key.rate_per_s is not None else "no rate limit"
    quota = f"{key.daily_quota}/day" if key.daily_quota is not None else "no quota"
    return f"{rate}, {quota}"
