"""`cls-shipper tasks`, `audit` and `retry`: a shipper's task ledger on a running server."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cls_shipper.cli.common import (
    AsJson,
    CaFile,
    ClientCert,
    CredentialsDir,
    Endpoint,
    Tz,
    fail,
    recent_span,
    render,
    server_zone,
    session,
    shown_time,
    zone_named,
)

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
TASKS_HOURS = 72  # GET /tasks looks back three days at most
AUDIT_HOURS = 31 * 24  # an audit covers 31 days at most
STATUSES = ("wait", "running", "success", "failed")
TIMES = ("range_start", "range_end", "start_time", "end_time")
NEXT_OFFSET = "x-cls-next-offset"  # on a listing page that has another after it


def tasks(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    hours: Annotated[float, typer.Option(help=f"How far back (at most {TASKS_HOURS}).")] = 1.0,
    status: Annotated[list[str] | None, typer.Option(
        "--status", help="Only tasks in this state: wait, running, success, failed "
                         "(repeat for several).")] = None,
    as_json: AsJson = False, tz: Tz = None,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """List a shipper's tasks with their full ids and what each shipped and rejected
    (GET /tasks?detail=true, one request per page of 1000 tasks)."""
    for wanted in status or []:
        if wanted not in STATUSES:
            raise fail(f"--status {wanted!r} is not one of {', '.join(STATUSES)}")
    zone = zone_named(tz)
    start, end, clamped = recent_span(hours, TASKS_HOURS, server_zone())
    if clamped:
        err.print(f"--hours {hours:g} is more than the server keeps listable: showing the last "
                  f"{TASKS_HOURS} hours")
    listed: list[dict[str, Any]] = []
    with session(endpoint, data_dir, ca_file, client_cert) as client:
        offset: str | None = "0"
        while offset is not None:
            resp = client.request("GET", "/tasks", {
                "shipper_id": shipper_id, "start_time": start, "end_time": end,
                "detail": "true", "offset": offset})
            listed.extend(orjson.loads(resp.content)["tasks"])
            offset = resp.headers.get(NEXT_OFFSET)
    rows = [{**t, **{k: shown_time(t[k], zone) for k in TIMES}} for t in listed
            if not status or t["status"] in status]
    render(rows, [("task_id", lambda r: r["task_id"]),
                  ("range_start", lambda r: r["range_start"]),
                  ("range_end", lambda r: r["range_end"]), ("status", lambda r: r["status"]),
                  ("records", lambda r: str(r["records"])),
                  ("rejected", lambda r: str(r["records_rejected"])),
                  ("objects", lambda r: str(r["object_count"])),
                  ("message", lambda r: r["message"])],
           as_json, title=None if as_json else f"times in {zone.key}")


def audit(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    hours: Annotated[float, typer.Option(help="Windows that started this many hours back "
                                         "(at most 31 days).")] = 24.0,
    as_json: AsJson = False, tz: Tz = None,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """Check the ledger against the bucket (GET /audit): every recorded object present with
    its size and MD5, nothing extra under the windows' names, no gaps, nothing unshipped.
    Exits 1 when anything is found."""
    zone = zone_named(tz)
    start, end, clamped = recent_span(hours, AUDIT_HOURS, server_zone())
    if clamped:
        err.print(f"--hours {hours:g} is more than an audit covers: checking the last "
                  f"{AUDIT_HOURS} hours")
    with session(endpoint, data_dir, ca_file, client_cert) as client:
        report: dict[str, Any] = client.call("GET", "/audit", {
            "shipper_id": shipper_id, "start_time": start, "end_time": end})
    if as_json:
        render([report], [], as_json=True)
    else:
        console.print(f"{report['windows']} windows ({report['shipped_windows']} shipped), "
                      f"{report['objects']} objects, {report['records']} records, "
                      f"{report['records_rejected']} rejected, {report['bytes_out']} bytes "
                      "checked")
        if report["clean"]:
            console.print("[green]clean: the bucket holds exactly what the ledger says[/green]")
        else:
            table = Table("kind", "window", "key", "detail")
            for finding in report["findings"]:
                table.add_row(finding["kind"], f"{shown_time(finding['range_start'], zone)} - "
                              f"{shown_time(finding['range_end'], zone)}", finding["key"],
                              finding["detail"])
            console.print(table)
    if not report["clean"]:
        raise typer.Exit(1)


def retry(
    shipper_id: Annotated[str, typer.Option("--shipper-id", help="The shipper.")],
    task_id: Annotated[str | None, typer.Option(
        "--task-id", help="Retry this failed task only (PUT /task); without it every failed "
                          "task of the shipper (PUT /tasks).")] = None,
    reload_config: Annotated[bool, typer.Option(
        help="Ship with the shipper's current config (after fixing a config mistake) "
             "instead of each task's own snapshot.")] = False,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
) -> None:
    """Queue failed tasks again: one (--task-id) or all of a shipper's."""
    with session(endpoint, data_dir, ca_file, client_cert) as client:
        if task_id is not None:
            client.call("PUT", "/task", json={"shipper_id": shipper_id, "task_id": task_id,
                                              "reload_config": reload_config})
            console.print(f"task {task_id} queued again")
            return
        result = client.call("PUT", "/tasks", json={"shipper_id": shipper_id,
                                                    "reload_config": reload_config})
    console.print(f"{result['retried']} failed task(s) queued again")
