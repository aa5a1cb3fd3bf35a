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
