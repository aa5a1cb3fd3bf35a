"""`cls-shipper upload` (files into a topic) and `cls-shipper logs tail` (follow a topic),
both against a running server over the legacy API, signed like the official SDK."""

from __future__ import annotations

import io
import socket
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, cast

import lz4.block
import orjson
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from cls_shipper.cli.client import Uploader
from cls_shipper.cli.common import (
    CaFile,
    ClientCert,
    CredentialsDir,
    Endpoint,
    signed_client,
    signed_uploader,
)
from cls_shipper.errors import ClientError, LineError
from cls_shipper.ingest.lines import Mode, batches

console = Console(stderr=True)
app = typer.Typer(no_args_is_help=True, help="Read a topic's logs from a running server.")

TopicId = Annotated[str, typer.Option("--topic-id", help="The topic.")]

# Uploads in flight at once: the next batch is encoded while the server stores the last
# ones, and memory stays bounded (each holds one batch, at most ~5 MiB).
MAX_PARALLEL = 8
# A 5xx, a 429 or a broken connection is retried, after 0.5, 1, 2, 4 s; then the upload fails.
RETRIES = 4
RETRY_BASE_SECONDS = 0.5


def _post(uploader: Uploader, topic_id: str, payload: bytes) -> None:
    """One batch, retried while the server is busy or unreachable; a refusal (4xx) at once.
    A retry after an answer was lost may store the batch twice (at-least-once)."""
    body = lz4.block.compress(payload, store_size=False)  # a raw block, as the SDKs send
    for attempt in range(RETRIES + 1):
        try:
            uploader.post("/structuredlog", {"topic_id": topic_id}, body,
                          {"Content-Type": "application/x-protobuf",
                           "x-cls-compress-type": "lz4"})
            return
        except ClientError as exc:
            busy = exc.status == 429 or exc.status >= 500 or exc.code == "ConnectionFailed"
            if attempt == RETRIES or not busy:
                raise
        time.sleep(RETRY_BASE_SECONDS * 2 ** attempt)


def upload(
    files: Annotated[list[Path], typer.Argument(help="Files to upload, one log a line; "
                                                "'-' reads standard input.")],
    topic_id: TopicId,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
    fmt: Annotated[str, typer.Option("--format", help="auto: JSON-object lines become "
                                     "their fields, other lines __CONTENT__; raw: every line "
                                     "is __CONTENT__; json: every line must be a JSON object."
                                     )] = "auto",
    batch_size: Annotated[int, typer.Option(min=1, max=10_000,
                                            help="Logs per upload.")] = 1000,
    parallel: Annotated[int, typer.Option(min=1, max=MAX_PARALLEL,
                                          help="Uploads in flight at once. With more than "
                                          "one, a file's batches may be stored out of "
                                          "order.")] = 3,
) -> None:
    """Upload files into a topic (POST /structuredlog, protobuf + lz4), with progress."""
    if fmt not in ("auto", "raw", "json"):
        raise typer.BadParameter("--format must be auto, raw or json")
    mode = cast(Mode, fmt)
    for path in files:
        if str(path) != "-" and not path.is_file():
            raise typer.BadParameter(f"{path} is not a readable file")
    client = signed_uploader(endpoint, data_dir, ca_file, client_cert)
    hostname = socket.gethostname()
    total_logs = total_uploads = 0
    sizes = {p: (0 if str(p) == "-" else p.stat().st_size) for p in files}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="upload")
    in_flight: deque[tuple[Future[None], int, int]] = deque()  # (upload, logs, file bytes)
    try:
        with Progress(*columns, console=console) as progress:
            for path in files:
                task = progress.add_task(str(path)[-40:], total=sizes[path] or None)
                logs = uploads = 0

                def settle(keep: int, task: TaskID = task) -> None:
                    """Wait for the oldest uploads until at most `keep` are in flight."""
                    nonlocal logs, uploads
                    while len(in_flight) > keep:
                        future, count, file_bytes = in_flight.popleft()
                        future.result()
                        logs += count
                        uploads += 1
                        progress.advance(task, file_bytes)

                stdin = str(path) == "-"
                stream = cast(io.BufferedIOBase, sys.stdin.buffer if stdin else path.open("rb"))
                try:
                    name = "<stdin>" if stdin else str(path.resolve())
                    for batch in batches(stream, name, hostname, mode, batch_size):
                        if not batch.logs:
                            progress.advance(task, batch.file_bytes)
                            continue
                        settle(parallel - 1)
                        in_flight.append((pool.submit(_post, client, topic_id, batch.payload),
                                          batch.logs, batch.file_bytes))
                    settle(0)
                finally:
                    if not stdin:
                        stream.close()
                total_logs += logs
                total_uploads += uploads
                progress.console.print(f"{path}: {logs} logs accepted in {uploads} uploads")
    except LineError as exc:
        raise typer.BadParameter(exc.message) from None
    except ClientError as exc:
        accepted = total_logs + logs + sum(count for future, count, _ in in_flight
                                           if future.done() and future.exception() is None)
        console.print(f"[red]upload refused: {exc}[/red]\n{accepted} logs were accepted "
                      "before that.")
        raise typer.Exit(1) from None
    finally:
        for future, _, _ in in_flight:
            future.cancel()
        pool.shutdown(wait=True)
        client.close()
    console.print(f"[green]{total_logs} logs accepted into topic {topic_id} "
                  f"({total_uploads} uploads).[/green]")


def _record_json(group: Any, log: Any) -> bytes:
    record: dict[str, Any] = {"time": log.time,
                              "contents": {c.key: c.value for c in log.contents}}
    for name in ("source", "filename", "hostname"):
        if group.HasField(name):
            record[name] = getattr(group, name)
    if len(group.logTags):
        record["tags"] = {t.key: t.value for t in group.logTags}
    return orjson.dumps(record)


@app.command("tail")
def tail(
    topic_id: TopicId,
    endpoint: Endpoint = "http://127.0.0.1:9400",
    data_dir: CredentialsDir = None,
    ca_file: CaFile = None,
    client_cert: ClientCert = None,
    start: Annotated[str | None, typer.Option(help="Where to begin: 'YYYY-mm-dd HH:MM:SS' "
                                              "(server zone) or epoch seconds/ms. Default: "
                                              "now (only new records).")] = None,
    from_start: Annotated[bool, typer.Option("--from-start",
                                             help="Begin with the oldest record.")] = False,
    follow: Annotated[bool, typer.Option(help="Keep waiting for new records.")] = True,
    interval: Annotated[float, typer.Option(min=0.05, help="Poll interval (s).")] = 1.0,
) -> None:
    """Print a topic's records as JSON lines (GET /cursor, then GET /log), following new ones."""
    from cls_shipper.ingest import cls_pb

    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    begin = "0" if from_start else (start or str(time.time_ns() // 1_000_000))
    out = sys.stdout.buffer
    try:
        cursor = client.call("GET", "/cursor", {"topic_id": topic_id, "start": begin})["cursor"]
        while True:
            resp = client.request("GET", "/log", {"topic_id": topic_id, "cursor": cursor,
                                                  "count": "1000"})
            cursor = resp.headers["x-cls-cursor"]
            if resp.headers.get("x-cls-count", "0") == "0":
                if not follow:
                    return
                time.sleep(interval)
                continue
            for group in cls_pb.LogGroupList.FromString(resp.content).logGroupList:
                for log in group.logs:
                    out.write(_record_json(group, log) + b"\n")
            out.flush()
    except ClientError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        return
    finally:
        client.close()
