"""Options shared by the commands that open the server's data."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cls_shipper.cli.client import ClsClient, Uploader, find_credentials, tls_context
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
CLOCK_AHEAD_S = 300


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a "
                                                   "table.")]
Tz = Annotated[str | None, typer.Option(
    "--tz", help="Time zone of the times shown (default: the server's, CLS_SHIPPER_TIMEZONE "
                 "as the server reads it, else Asia/Shanghai).")]


def fail(message: str) -> typer.Exit:
    """Print one line on stderr; the caller raises what this returns (exit status 1)."""
    Console(stderr=True, soft_wrap=True).print(f"[red]error:[/red] {message}", markup=True,
                                               highlight=False)
    return typer.Exit(1)


def credentials(data_dir: Path | None) -> tuple[str, str]:
    """The key from CLS_SHIPPER_SECRET_ID/KEY or <data-dir>/credentials.toml; exits with a
    message when there is none."""
    try:
        return find_credentials(os.environ.get("CLS_SHIPPER_SECRET_ID"),
                                os.environ.get("CLS_SHIPPER_SECRET_KEY"), data_dir)
    except ClientError as exc:
        raise fail(exc.message) from None


def signed_client(endpoint: str, data_dir: Path | None, ca_file: Path | None = None,
                  client_cert: Path | None = None) -> ClsClient:
    """A client signing with the stored or given key. `ca_file` and `client_cert` default to
    CLS_SHIPPER_CA_FILE and CLS_SHIPPER_CLIENT_CERT, so every command reaches an https server
    the same way."""
    ca_file = ca_file or _path_from_env("CLS_SHIPPER_CA_FILE")
    client_cert = client_cert or _path_from_env("CLS_SHIPPER_CLIENT_CERT")
    try:
        return ClsClient(endpoint, *credentials(data_dir),
                         verify=tls_context(ca_file, client_cert))
    except ClientError as exc:
        raise fail(exc.message) from None


def signed_uploader(endpoint: str, data_dir: Path | None, ca_file: Path | None = None,
                    client_cert: Path | None = None) -> Uploader:
    """The uploader's POSTs, signed and verified as `signed_client`'s."""
    ca_file = ca_file or _path_from_env("CLS_SHIPPER_CA_FILE")
    client_cert = client_cert or _path_from_env("CLS_SHIPPER_CLIENT_CERT")
    try:
        return Uploader(endpoint, *credentials(data_dir), tls_context(ca_file, client_cert))
    except ClientError as exc:
        raise fail(exc.message) from None


def _path_from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@contextmanager
def session(endpoint: str, data_dir: Path | None, ca_file: Path | None = None,
            client_cert: Path | None = None) -> Iterator[ClsClient]:
    """A signed client whose errors (the server's, the network's) end the command with one
    line naming the code, never a traceback."""
    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    try:
        yield client
    except ClientError as exc:
        raise fail(f"{exc.code}: {exc.message}") from None
    finally:
        client.close()


def server_zone() -> ZoneInfo:
    """The zone the server formats times in: its `timezone` setting, which a client on the
    same machine reads from the same variable (else the server's default)."""
    return zone_named(None)


def zone_named(name: str | None) -> ZoneInfo:
    """`--tz`, or the server's zone when it is not given; a bad name exits with a line."""
    from cls_shipper.settings import Settings

    chosen = name or os.environ.get("CLS_SHIPPER_TIMEZONE") or str(
        Settings.model_fields["timezone"].default)
    try:
        return ZoneInfo(chosen)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown time zone {chosen!r} (--tz takes names like UTC or "
                   "Asia/Shanghai)") from None


def show_ms(ms: int | None, zone: ZoneInfo) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=zone).strftime(LEGACY_TIME)


def shown_time(text: str | None, zone: ZoneInfo) -> str:
    """A time the server wrote in its zone (`YYYY-MM-DD HH:MM:SS`), in `zone`."""
    if not text:
        return ""
    try:
        moment = datetime.strptime(text, LEGACY_TIME).replace(tzinfo=server_zone())
    except ValueError:
        return text
    return moment.astimezone(zone).strftime(LEGACY_TIME)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Callable[[Any], Any]]],
           as_json: bool, title: str | None = None) -> None:
    """`rows` as JSON (all of each row) or as a table of `columns` (header, value of a row)."""
    if as_json:
        print(orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(title=title)
    cells = [["" if (v := get(row)) is None else str(v) for _, get in columns] for row in rows]
    for i, (name, _) in enumerate(columns):
        if name.lower().endswith("id"):
            # Ids are whole on every line, however narrow the terminal: they get pasted into
            # other commands (the other columns wrap instead).
            widest = max([len(name)] + [len(r[i]) for r in cells])
            table.add_column(name, no_wrap=True, min_width=widest)
        else:
            table.add_column(name)
    for line in cells:
        table.add_row(*line)
    _console().print(table)


def _console() -> Console:
    # Piped output is not cut to 80 columns: a table row stays one line for grep and awk.
    return Console(soft_wrap=True, width=None if sys.stdout.isatty() else 400)


def render_one(row: dict[str, Any], as_json: bool) -> None:
    """One object: JSON, or `field  value` lines (nested values as compact JSON)."""
    if as_json:
        print(orjson.dumps(row, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("field", "value", show_header=False)
    for key, value in row.items():
        table.add_row(key, value if isinstance(value, str) else orjson.dumps(value).decode())
    _console().print(table)


def parse_tags(tags: list[str] | None) -> list[dict[str, str]] | None:
    """`--tag key=value` options as API 3.0 Tags."""
    if tags is None:
        return None
    out = []
    for tag in tags:
        key, sep, value = tag.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"a tag is key=value, not {tag!r}", param_hint="--tag")
        out.append({"Key": key, "Value": value})
    return out


def parse_params(text: str | None) -> dict[str, Any]:
    """`--params '{...}'`: further API 3.0 parameters as a JSON object, for the options
    without a flag of their own (CSV and Parquet content, anonymous access...)."""
    if text is None:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object", param_hint="--params")
    return value


Params = Annotated[str | None, typer.Option(
    "--params", help="More API 3.0 parameters as a JSON object, merged over the flags.")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="key=value (repeat; replaces "
                                                               "all tags).")]


def given(**values: Any) -> dict[str, Any]:
    """The parameters that were given (None = left out)."""
    return {k: v for k, v in values.items() if v is not None}


def recent_span(hours: float, limit_hours: float, zone: ZoneInfo) -> tuple[str, str, bool]:
    """Legacy start/end strings, in the server's `zone`, covering the last `hours` (at most
    `limit_hours`, less a minute so that the start is still inside the server's limit when
    the request arrives), and whether `hours` was cut to that."""
    now = time.time()
    clamped = hours > limit_hours
    back = min(hours * 3600, limit_hours * 3600 - 60)
    start = datetime.fromtimestamp(now - back, tz=zone).strftime(LEGACY_TIME)
    # The end is ahead of now: the strings have whole seconds, and a task started by a node
    # whose clock is a little ahead must not be missed.
    end = datetime.fromtimestamp(now + CLOCK_AHEAD_S, tz=zone).strftime(LEGACY_TIME)
    return start, end, clamped
