"""Options shared by the commands that open the server's data."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from cls_shipper.cli.client import ClsClient, Uploader, find_credentials
from cls_shipper.errors import ClientError, SettingsError

if TYPE_CHECKING:  # the client commands (upload) start without the server's settings stack
    from cls_shipper.settings import Settings

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory "
                                              "(database, keys, local buckets).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", envvar="CLS_SHIPPER_CONFIG",
                                                 help="TOML settings file.")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url",
                                                 help="postgresql://... (default: SQLite in "
                                                 "the data dir).")]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    from cls_shipper.settings import load_settings

    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        raise typer.BadParameter(exc.message) from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read the settings file: {exc}") from None


def require_database(settings: Settings) -> None:
    """Commands that work on an existing server's data refuse a data directory without a
    database: opening it would create a new, empty one that no server uses."""
    from cls_shipper.settings import DATABASE_FILE

    if settings.database_url is None and not (settings.data_dir / DATABASE_FILE).exists():
        raise typer.BadParameter(f"no database in {settings.data_dir.resolve()} "
                                 "(give --data-dir or --database-url)")


# ---- client commands (talk to a running server) ----

Endpoint = Annotated[str, typer.Option(help="The cls-shipper server.",
                                       envvar="CLS_SHIPPER_ENDPOINT")]
CredentialsDir = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="CLS_SHIPPER_DATA_DIR",
    help="Where the server's credentials.toml is (when no key is in the environment).")]
LEGACY_TIME = "%Y-%m-%d %H:%M:%S"


def credentials(data_dir: Path | None) -> tuple[str, str]:
    """The key from CLS_SHIPPER_SECRET_ID/KEY or <data-dir>/credentials.toml; exits with a
    message when there is none."""
    try:
        return find_credentials(os.environ.get("CLS_SHIPPER_SECRET_ID"),
                                os.environ.get("CLS_SHIPPER_SECRET_KEY"), data_dir)
    except ClientError as exc:
        Console(stderr=True).print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None


def signed_client(endpoint: str, data_dir: Path | None) -> ClsClient:
    return ClsClient(endpoint, *credentials(data_dir))


def signed_uploader(endpoint: str, data_dir: Path | None) -> Uploader:
    try:
        return Uploader(endpoint, *credentials(data_dir))
    except ClientError as exc:
        raise typer.BadParameter(exc.message) from None


def recent_span(hours: float, limit_hours: float) -> tuple[str, str]:
    """Legacy start/end strings covering the last `hours` (at most `limit_hours`) whatever
    the server's zone (UTC-12 to UTC+14, unknown here): the span is widened by those offsets,
    so it must stay 26 hours inside the server's own limit."""
    now = time.time()
    start = time.gmtime(now - (min(hours, limit_hours - 26) + 12) * 3600)
    return time.strftime(LEGACY_TIME, start), time.strftime(LEGACY_TIME,
                                                           time.gmtime(now + 14 * 3600))
