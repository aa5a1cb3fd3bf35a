"""`cls-shipper tasks`: the task ledger of a shipper, from a running server."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cls_shipper.client import ClientError, ClsClient, find_credentials

console = Console()

Endpoint = Annotated[str, typer.Option(help="The cls-shipper server.",
                                       envvar="CLS_SHIPPER_ENDPOINT")]


def tasks(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    hours: Annotated[float, typer.Option(help="How far back (at most 46).")] = 1.0,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where credentials.toml "
                                                  "is (when no key is in the env).")] = None,
) -> None:
    """List a shipper's tasks (GET /tasks) with what each shipped (GET /task)."""
    try:
        secret_id, secret_key = find_credentials(os.environ.get("CLS_SHIPPER_SECRET_ID"),
                                                 os.environ.get("CLS_SHIPPER_SECRET_KEY"),
                                                 data_dir)
        client = ClsClient(endpoint, secret_id, secret_key)
        now = time.time()
        fmt = "%Y-%m-%d %H:%M:%S"
        # The server's zone (UTC-12..UTC+14) is unknown here: ask for a span that covers the
        # last `hours` in any zone while staying inside the three-day query window.
        start = time.strftime(fmt, time.gmtime(now - (min(hours, 46) + 12) * 3600))
        end = time.strftime(fmt, time.gmtime(now + 14 * 3600))
        listed = client.call("GET", "/tasks", {"shipper_id": shipper_id, "start_time": start,
                                               "end_time": end})["tasks"]
        table = Table("task_id", "range_start", "range_end", "status", "records", "objects",
                      "message")
        for task in listed:
            detail = client.call("GET", "/task", {"shipper_id": shipper_id,
                                                  "task_id": task["task_id"]})
            table.add_row(task["task_id"][:8], task["range_start"], task["range_end"],
                          task["status"], str(detail["records"]), str(len(detail["objects"])),
                          task["message"][:60])
        console.print(table)
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def audit(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    hours: Annotated[float, typer.Option(help="Windows that started this many hours back "
                                         "(at most 31 days).")] = 24.0,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where credentials.toml "
                                                  "is (when no key is in the env).")] = None,
) -> None:
    """Check the ledger against the bucket (GET /audit): every recorded object present with
    its size and MD5, nothing extra under the windows' names, no gaps, nothing unshipped.
    Exits 1 when anything is found."""
    try:
        secret_id, secret_key = find_credentials(os.environ.get("CLS_SHIPPER_SECRET_ID"),
                                                 os.environ.get("CLS_SHIPPER_SECRET_KEY"),
                                                 data_dir)
        client = ClsClient(endpoint, secret_id, secret_key)
        now = time.time()
        fmt = "%Y-%m-%d %H:%M:%S"
        # As in `tasks`: a span that covers the request in any server zone.
        start = time.strftime(fmt, time.gmtime(now - (min(hours, 31 * 24 - 26) + 12) * 3600))
        end = time.strftime(fmt, time.gmtime(now + 14 * 3600))
        report = client.call("GET", "/audit", {"shipper_id": shipper_id, "start_time": start,
                                               "end_time": end})
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{report['windows']} windows ({report['shipped_windows']} shipped), "
                  f"{report['objects']} objects, {report['records']} records, "
                  f"{report['bytes_out']} bytes checked")
    if report["clean"]:
        console.print("[green]clean: the bucket holds exactly what the ledger says[/green]")
        return
    table = Table("kind", "window", "key", "detail")
    for finding in report["findings"]:
        table.add_row(finding["kind"], f"{finding['range_start']} - {finding['range_end']}",
                      finding["key"], finding["detail"])
    console.print(table)
    raise typer.Exit(1)
