"""`cls-shipper keys create|list|disable|enable`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cls_shipper.auth import keys as key_store
from cls_shipper.cli.common import (
    ConfigFile,
    DatabaseUrl,
    DataDir,
    require_database,
    settings_from,
)
from cls_shipper.errors import ServiceError
from cls_shipper.store import Database, open_database
from cls_shipper.timefmt import format_legacy

app = typer.Typer(no_args_is_help=True, help="Manage access keys (SecretId/SecretKey).")
console = Console()


def _db(data_dir: DataDir, config: ConfigFile,
        database_url: DatabaseUrl) -> tuple[Database, object]:
    settings = settings_from(config, data_dir=data_dir, database_url=database_url)
    # A key created in a new, empty database would be printed as if it worked, but no
    # server would know it.
    require_database(settings)
    return open_database(settings.db_url), settings.zone


@app.command("create")
def create(description: Annotated[str, typer.Option(help="What the key is for.")] = "",
           data_dir: DataDir = None, config: ConfigFile = None,
           database_url: DatabaseUrl = None) -> None:
    """Create a key pair and print it (the SecretKey is shown only here)."""
    db, _ = _db(data_dir, config, database_url)
    key = key_store.create_key(db, description)
    console.print(f"SecretId:  {key.secret_id}\nSecretKey: {key.secret_key}")


@app.command("list")
def list_keys(data_dir: DataDir = None, config: ConfigFile = None,
              database_url: DatabaseUrl = None) -> None:
    """List keys (SecretKeys are not shown)."""
    db, zone = _db(data_dir, config, database_url)
    table = Table("SecretId", "enabled", "created", "description")
    for key in key_store.list_keys(db):
        table.add_row(key.secret_id, "yes" if key.enabled else "no",
                      format_legacy(key.created_ms, zone), key.description)  # type: ignore[arg-type]
    console.print(table)


def _set(secret_id: str, enabled: bool, data_dir: DataDir, config: ConfigFile,
         database_url: DatabaseUrl) -> None:
    db, _ = _db(data_dir, config, database_url)
    try:
        key_store.set_enabled(db, secret_id, enabled)
    except ServiceError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    # Running servers cache keys; they read this change within their cache's lifetime.
    console.print(f"{secret_id} {'enabled' if enabled else 'disabled'}; running servers apply "
                  f"it within {key_store.KEY_CACHE_TTL_S:g} s")


@app.command("disable")
def disable(secret_id: str, data_dir: DataDir = None, config: ConfigFile = None,
            database_url: DatabaseUrl = None) -> None:
    """Disable a key: requests signed with it get AuthFailure.SecretIdNotFound."""
    _set(secret_id, False, data_dir, config, database_url)


@app.command("enable")
def enable(secret_id: str, data_dir: DataDir = None, config: ConfigFile = None,
           database_url: DatabaseUrl = None) -> None:
    """Enable a disabled key again."""
    _set(secret_id, True, data_dir, config, database_url)
