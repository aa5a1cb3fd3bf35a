"""`cls-shipper upload` (files into a topic) and `cls-shipper logs tail` (follow a topic),
both against a running server over the legacy API, signed like the official SDK."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from cls_shipper.cli.common import (
    CaFile,
    ClientCert,
    CredentialsDir,
    Endpoint,
    signed_client,
)
from cls_shipper.errors import ClientError
from cls_shipper.ingest import cls_pb
from cls_shipper.ingest.decode import compress_lz4
from cls_shipper.ingest.schema import MAX_GROUP_VALUE_BYTES

console = Console(stderr=True)
app = typer.Typer(no_args_is_help=True, help="Read a topic's logs from a running server.")

TopicId = Annotated[str, typer.Option("--topic-id", help="The topic.")]

# Stay clear of the 5 MiB-per-LogGroup limit with the keys and framing on top of the values.
BATCH_VALUE_BYTES = MAX_GROUP_VALUE_BYTES - (512 << 10)


def _contents(line: str, fmt: str) -> dict[str, str]:
    """A line's contents: a JSON object's fields (non-string values as JSON text), or the
    whole line under CLS's own `__CONTENT__` key."""
    if fmt != "raw" and line.startswith("{"):
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data:
            return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                    for k, v in data.items()}
    if fmt == "json":
        raise typer.BadParameter(f"not a JSON object: {line[:80]!r}")
    return {"__CONTENT__": line}


@dataclass
class _Batch:
    group: Any
    logs: int = 0
    value_bytes: int = 0
    file_bytes: int = 0


def _batches(stream: IO[bytes], filename: str, hostname: str, fmt: str,
             batch_size: int) -> Iterator[_Batch]:
    def fresh() -> _Batch:
        group = cls_pb.LogGroup()
        group.filename, group.hostname = filename, hostname
        return _Batch(group)

    batch = fresh()
    consumed = 0  # file bytes behind the current batch, for the progress bar
    for raw in stream:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line.strip():
            consumed += len(raw)
            continue
        contents = _contents(line, fmt)
        size = sum(len(v.encode()) for v in contents.values())
        if batch.logs and (batch.logs >= batch_size
                           or batch.value_bytes + size > BATCH_VALUE_BYTES):
            batch.file_bytes = consumed
            yield batch
            batch, consumed = fresh(), 0
        consumed += len(raw)
        log = batch.group.logs.add()
        log.time = time.time_ns() // 1_000_000
        for key, value in contents.items():
            item = log.contents.add()
            item.key, item.value = key, value
        batch.logs += 1
        batch.value_bytes += size
    batch.file_bytes = consumed
    if batch.logs or consumed:
        yield batch


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
) -> None:
    """Upload files into a topic (POST /structuredlog, protobuf + lz4), with progress."""
    if fmt not in ("auto", "raw", "json"):
        raise typer.BadParameter("--format must be auto, raw or json")
    for path in files:
        if str(path) != "-" and not path.is_file():
            raise typer.BadParameter(f"{path} is not a readable file")
    client = signed_client(endpoint, data_dir, ca_file, client_cert)
    hostname = socket.gethostname()
    total_logs = total_uploads = 0
    sizes = {p: (0 if str(p) == "-" else p.stat().st_size) for p in files}
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=console) as progress:
            for path in files:
                task = progress.add_task(str(path)[-40:], total=sizes[path] or None)
                logs = uploads = 0
                stdin = str(path) == "-"
                stream = sys.stdin.buffer if stdin else path.open("rb")
                try:
                    name = "<stdin>" if stdin else str(path.resolve())
                    for batch in _batches(stream, name, hostname, fmt, batch_size):
                        if batch.logs:
                            group_list = cls_pb.LogGroupList()
                            group_list.logGroupList.add().CopyFrom(batch.group)
                            client.request(
                                "POST", "/structuredlog", {"topic_id": topic_id},
                                compress_lz4(group_list.SerializeToString()),
                                {"Content-Type": "application/x-protobuf",
                                 "x-cls-compress-type": "lz4"})
                            logs += batch.logs
                            uploads += 1
                        progress.advance(task, batch.file_bytes)
                finally:
                    if not stdin:
                        stream.close()
                total_logs += logs
                total_uploads += uploads
                progress.console.print(f"{path}: {logs} logs accepted in {uploads} uploads")
    except ClientError as exc:
        console.print(f"[red]upload refused: {exc}[/red]\n{total_logs} logs were accepted "
                      "before that.")
        raise typer.Exit(1) from None
    finally:
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
