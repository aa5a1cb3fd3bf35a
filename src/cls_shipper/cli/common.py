"""Options shared by the commands that open the server's data."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cls_shipper.cli.client import ClsClient, find_credentials, tls_context
from cls_shipper.errors import ClientError, SettingsError
from cls_shipper.settings import DATABASE_FILE, Settings, load_settings

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory "
                                              "(database, keys, local buckets).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", envvar="CLS_SHIPPER_CONFIG",
                                                 help="TOML settings file.")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url",
                                                 help="postgresql://... (default: SQLite in "
                                                 "the data dir).")]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except SettingsError as exc:
        raise typer.BadParameter(exc.message) from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read the settings file: {exc}") from None


def require_database(settings: Settings) -> None:
    """Commands that work on an existing server's data refuse a data directory without a
    database: opening it would create a new, empty one that no server uses."""
    if settings.database_url is None and not (settings.data_dir / DATABASE_FILE).exists():
        raise typer.BadParameter(f"no database in {settings.data_dir.resolve()} "
                                 "(give --data-dir or --database-url)")


# ---- client commands (talk to a running server) ----

Endpoint = Annotated[str, typer.Option(help="The cls-shipper server.",
                                       envvar="CLS_SHIPPER_ENDPOINT")]
CaFile = Annotated[Path | None, typer.Option(
    "--ca-file", envvar="CLS_SHIPPER_CA_FILE",
    help="Trust this CA (PEM) for an https endpoint (default: SSL_CERT_FILE, else the "
         "public CAs).")]
ClientCert = Annotated[Path | None, typer.Option(
    "--client-cert", envvar="CLS_SHIPPER_CLIENT_CERT",
    help="Client certificate and its key (one PEM file), for a server that requires one.")]
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


def signed_client(endpoint: str, data_dir: Path | None, ca_file: Path | None = None,
                  client_cert: Path | None = None) -> ClsClient:
    try:
        verify = tls_context(ca_file, client_cert)
    except ClientError as exc:
        Console(stderr=True).print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from None
    return ClsClient(endpoint, *credentials(data_dir), verify=verify)


def recent_span(hours: float, limit_hours: float) -> tuple[str, str]:
    """Legacy start/end strings covering the last `hours` (at most `limit_hours`) whatever
    the server's zone (UTC-12 to UTC+14, unknown here): the span is widened by those offsets,
    so it must stay 26 hours inside the server's own limit."""
    now = time.time()
    start = time.gmtime(now - (min(hours, limit_hours - 26) + 12) * 3600)
    return time.strftime(LEGACY_TIME, start), time.strftime(LEGACY_TIME,
                                                           time.gmtime(now + 14 * 3600))
