"""`cls-shipper tasks`: the task ledger of a shipper, from a running server."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cls_shipper.cli.common import (
    CaFile,
    ClientCert,
    CredentialsDir,
    Endpoint,
    recent_span,
    signed_client,
)
from cls_shipper.errors import ClientError

console = Console()


def tasks(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    hours: Annotated[float, typer.Option(help="How far back (at most 46).")] = 1.0,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """List a shipper's tasks (GET /tasks) with what each shipped (GET /task)."""
    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    start, end = recent_span(hours, 72)  # GET /tasks looks back three days at most
    try:
        listed = client.call("GET", "/tasks", {"shipper_id": shipper_id, "start_time": start,
                                               "end_time": end})["tasks"]
        table = Table("task_id", "range_start", "range_end", "status", "records", "rejected",
                      "objects", "message")
        for task in listed:
            detail = client.call("GET", "/task", {"shipper_id": shipper_id,
                                                  "task_id": task["task_id"]})
            table.add_row(task["task_id"][:8], task["range_start"], task["range_end"],
                          task["status"], str(detail["records"]),
                          str(detail["records_rejected"]), str(len(detail["objects"])),
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
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """Check the ledger against the bucket (GET /audit): every recorded object present with
    its size and MD5, nothing extra under the windows' names, no gaps, nothing unshipped.
    Exits 1 when anything is found."""
    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    start, end = recent_span(hours, 31 * 24)  # an audit covers 31 days at most
    try:
        report = client.call("GET", "/audit", {"shipper_id": shipper_id, "start_time": start,
                                               "end_time": end})
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{report['windows']} windows ({report['shipped_windows']} shipped), "
                  f"{report['objects']} objects, {report['records']} records, "
                  f"{report['records_rejected']} rejected, {report['bytes_out']} bytes checked")
    if report["clean"]:
        console.print("[green]clean: the bucket holds exactly what the ledger says[/green]")
        return
    table = Table("kind", "window", "key", "detail")
    for finding in report["findings"]:
        table.add_row(finding["kind"], f"{finding['range_start']} - {finding['range_end']}",
                      finding["key"], finding["detail"])
    console.print(table)
    raise typer.Exit(1)


def retry(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    reload_config: Annotated[bool, typer.Option(
        help="Ship with the shipper's current config (after fixing a config mistake) "
             "instead of each task's own snapshot.")] = False,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """Retry every failed task of a shipper (PUT /tasks)."""
    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    try:
        result = client.call("PUT", "/tasks", json={"shipper_id": shipper_id,
                                                    "reload_config": reload_config})
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(f"{result['retried']} failed task(s) queued again")
