"""`cls-shipper shippers list|show|create|modify|delete`, over API 3.0's shipper actions
(which carry every option, Parquet and historical shipping included). Structured options
(`FilterRules`, CSV/JSON/Parquet `Content`) go through `--params`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cls_shipper.cli.common import (
    AsJson,
    CredentialsDir,
    Endpoint,
    Params,
    Tz,
    fail,
    given,
    parse_params,
    render,
    render_one,
    session,
    shown_time,
    zone_named,
)

app = typer.Typer(no_args_is_help=True, help="Shippers: rules that ship a topic to a bucket.")
ShipperId = Annotated[str, typer.Argument(help="The shipper's id.")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9400"

Interval = Annotated[int | None, typer.Option(help="Interval: seconds per window.")]
MaxSize = Annotated[int | None, typer.Option(help="MaxSize: MB per object.")]
Partition = Annotated[str | None, typer.Option(help="Partition: strftime path, e.g. "
                                                    "%Y/%m/%d/%H/.")]
Compress = Annotated[str | None, typer.Option(help="Compress.Format: gzip, lzop, snappy, "
                                                   "zstd, lz4, none.")]
Format = Annotated[str | None, typer.Option("--format", help="Content.Format: json, csv or "
                                                             "parquet (their options: --params "
                                                             "'{\"Content\": {...}}').")]
FilenameMode = Annotated[int | None, typer.Option(help="FilenameMode: 0 or 1.")]
StorageClass = Annotated[str | None, typer.Option("--storage-type",
                                                  help="StorageType: the S3 storage class.")]
RoleArn = Annotated[str | None, typer.Option(help="RoleArn (stored).")]
ExternalId = Annotated[str | None, typer.Option(help="ExternalId (stored).")]
TimeZone = Annotated[str | None, typer.Option("--time-zone",
                                              help="TimeZone of partition paths, e.g. "
                                                   "UTC+08:00.")]
StartTime = Annotated[int | None, typer.Option(help="StartTime (Unix seconds; in the past: "
                                                    "ship history from there).")]
EndTime = Annotated[int | None, typer.Option(help="EndTime (Unix seconds).")]


def _options(interval: int | None, max_size: int | None, partition: str | None,
             compress: str | None, fmt: str | None, filename_mode: int | None,
             storage_type: str | None, role_arn: str | None, external_id: str | None,
             time_zone: str | None) -> dict[str, Any]:
    return given(Interval=interval, MaxSize=max_size, Partition=partition,
                 Compress=None if compress is None else {"Format": compress},
                 Content=None if fmt is None else {"Format": fmt}, FilenameMode=filename_mode,
                 StorageType=storage_type, RoleArn=role_arn, ExternalId=external_id,
                 TimeZone=time_zone)


def _in_zone(item: dict[str, Any], tz: str | None) -> dict[str, Any]:
    return {**item, "CreateTime": shown_time(item.get("CreateTime"), zone_named(tz))}


def _state(row: dict[str, Any]) -> str:
    if not row["Status"]:
        return "off"
    return {0: "stopped", 1: "running", 2: "exception"}.get(row["TaskStatus"], "?")


@app.command("list")
def list_shippers(
    topic_id: Annotated[str | None, typer.Option(help="Shippers of this topic.")] = None,
    name: Annotated[str | None, typer.Option(help="Names containing this.")] = None,
    as_json: AsJson = False, tz: Tz = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """List shippers with their state (DescribeShippers, every page)."""
    filters = [{"Key": key, "Values": [value]} for key, value in
               (("topicId", topic_id), ("shipperName", name)) if value]
    items: list[dict[str, Any]] = []
    with session(endpoint, data_dir) as client:
        while True:
            page = client.action("DescribeShippers", {"Filters": filters,
                                                      "Offset": len(items), "Limit": 100})
            items += page["Shippers"]
            if not page["Shippers"] or len(items) >= page["TotalCount"]:
                break
    render([_in_zone(i, tz) for i in items], [
        ("ShipperId", lambda r: r["ShipperId"]), ("ShipperName", lambda r: r["ShipperName"]),
        ("TopicId", lambda r: r["TopicId"]), ("Bucket", lambda r: r["Bucket"]),
        ("Prefix", lambda r: r["Prefix"]), ("Interval", lambda r: r["Interval"]),
        ("Format", lambda r: r["Content"]["Format"]), ("State", _state),
        ("CreateTime", lambda r: r["CreateTime"])], as_json)


@app.command("show")
def show(shipper_id: ShipperId, as_json: AsJson = False, tz: Tz = None,
         endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None) -> None:
    """Show one shipper with every option and its progress."""
    with session(endpoint, data_dir) as client:
        found = client.action("DescribeShippers", {"Filters": [
            {"Key": "shipperId", "Values": [shipper_id]}]})["Shippers"]
        if not found:
            raise fail(f"shipper {shipper_id!r} does not exist")
    render_one(_in_zone(found[0], tz), as_json)


@app.command("create")
def create(
    topic_id: Annotated[str, typer.Option(help="The topic to ship.")],
    bucket: Annotated[str, typer.Option(help="The destination bucket.")],
    prefix: Annotated[str, typer.Option(help="Key prefix in the bucket.")],
    name: Annotated[str, typer.Option(help="The shipper's name.")],
    interval: Interval = None, max_size: MaxSize = None, partition: Partition = None,
    compress: Compress = None, fmt: Format = None, filename_mode: FilenameMode = None,
    storage_type: StorageClass = None, role_arn: RoleArn = None,
    external_id: ExternalId = None, time_zone: TimeZone = None,
    start_time: StartTime = None, end_time: EndTime = None, params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Create a shipper (CreateShipper) and print its id."""
    request = {**given(TopicId=topic_id, Bucket=bucket, Prefix=prefix, ShipperName=name,
                       StartTime=start_time, EndTime=end_time),
               **_options(interval, max_size, partition, compress, fmt, filename_mode,
                          storage_type, role_arn, external_id, time_zone),
               **parse_params(params)}
    with session(endpoint, data_dir) as client:
        print(client.action("CreateShipper", request)["ShipperId"])


@app.command("modify")
def modify(
    shipper_id: ShipperId,
    bucket: Annotated[str | None, typer.Option(help="A new bucket.")] = None,
    prefix: Annotated[str | None, typer.Option(help="A new prefix.")] = None,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    status: Annotated[bool | None, typer.Option("--enable/--disable",
                                                help="Status: switch it on or off.")] = None,
    interval: Interval = None, max_size: MaxSize = None, partition: Partition = None,
    compress: Compress = None, fmt: Format = None, filename_mode: FilenameMode = None,
    storage_type: StorageClass = None, role_arn: RoleArn = None,
    external_id: ExternalId = None, time_zone: TimeZone = None, params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Change a shipper (ModifyShipper)."""
    request = {**given(ShipperId=shipper_id, Bucket=bucket, Prefix=prefix, ShipperName=name,
                       Status=status),
               **_options(interval, max_size, partition, compress, fmt, filename_mode,
                          storage_type, role_arn, external_id, time_zone),
               **parse_params(params)}
    with session(endpoint, data_dir) as client:
        client.action("ModifyShipper", request)
    print(f"shipper {shipper_id} modified")


@app.command("delete")
def delete(shipper_id: ShipperId, endpoint: Endpoint = DEFAULT_ENDPOINT,
           data_dir: CredentialsDir = None) -> None:
    """Delete a shipper and its ledger; shipped objects stay (DeleteShipper)."""
    with session(endpoint, data_dir) as client:
        client.action("DeleteShipper", {"ShipperId": shipper_id})
    print(f"shipper {shipper_id} deleted")
