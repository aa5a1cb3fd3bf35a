"""`cls-shipper topics list|show|create|modify|delete`, over API 3.0's topic actions: every
CreateTopic/ModifyTopic option has a flag (the nested ones also go through `--params`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cls_shipper.cli.common import (
    AsJson,
    CredentialsDir,
    Endpoint,
    Params,
    Tags,
    Tz,
    fail,
    given,
    parse_params,
    parse_tags,
    render,
    render_one,
    session,
    shown_time,
    zone_named,
)

app = typer.Typer(no_args_is_help=True, help="Topics: the logs that uploads go into.")
TopicId = Annotated[str, typer.Argument(help="The topic's id.")]
DEFAULT_ENDPOINT = "http://127.0.0.1:9400"

Partitions = Annotated[int | None, typer.Option("--partitions", help="PartitionCount.")]
AutoSplit = Annotated[bool | None, typer.Option("--auto-split/--no-auto-split",
                                                help="AutoSplit (default on).")]
MaxSplit = Annotated[int | None, typer.Option(help="MaxSplitPartitions (default 50).")]
StorageType = Annotated[str | None, typer.Option(help="StorageType: hot or cold.")]
Period = Annotated[int | None, typer.Option(help="Period: retention in days (3640: "
                                                 "forever).")]
Describes = Annotated[str | None, typer.Option("--describes", help="Describes: a "
                                                                   "description.")]
HotPeriod = Annotated[int | None, typer.Option(help="HotPeriod in days (0: off).")]
Encryption = Annotated[int | None, typer.Option(help="Encryption: 1 for KMS.")]
KmsRegion = Annotated[str | None, typer.Option(help="CustomKmsInfo.KmsRegion.")]
KmsKeyId = Annotated[str | None, typer.Option(help="CustomKmsInfo.KmsKeyId.")]
WebTracking = Annotated[bool | None, typer.Option("--web-tracking/--no-web-tracking",
                                                  help="IsWebTracking.")]
Anonymous = Annotated[list[str] | None, typer.Option(
    "--anonymous-operation", help="Extends.AnonymousAccess.Operations: trackLog or "
                                  "realtimeProducer (repeat).")]
SourceFrom = Annotated[bool | None, typer.Option("--source-from/--no-source-from",
                                                 help="IsSourceFrom.")]
BillingMode = Annotated[int | None, typer.Option(help="BillingMode: 0 or 1.")]


def _options(partitions: int | None, tag: list[str] | None, auto_split: bool | None,
             max_split_partitions: int | None, storage_type: str | None, period: int | None,
             describes: str | None, hot_period: int | None, encryption: int | None,
             kms_region: str | None, kms_key_id: str | None, web_tracking: bool | None,
             anonymous_operation: list[str] | None, source_from: bool | None,
             billing_mode: int | None, params: str | None) -> dict[str, Any]:
    kms = given(KmsRegion=kms_region, KmsKeyId=kms_key_id)
    return {**given(
        PartitionCount=partitions, Tags=parse_tags(tag), AutoSplit=auto_split,
        MaxSplitPartitions=max_split_partitions, StorageType=storage_type, Period=period,
        Describes=describes, HotPeriod=hot_period, Encryption=encryption,
        CustomKmsInfo=kms or None, IsWebTracking=web_tracking,
        Extends=None if anonymous_operation is None else {
            "AnonymousAccess": {"Operations": anonymous_operation}},
        IsSourceFrom=source_from, BillingMode=billing_mode), **parse_params(params)}


def _in_zone(item: dict[str, Any], tz: str | None) -> dict[str, Any]:
    return {**item, "CreateTime": shown_time(item.get("CreateTime"), zone_named(tz))}


@app.command("list")
def list_topics(
    logset_id: Annotated[str | None, typer.Option(help="Topics of this logset.")] = None,
    name: Annotated[str | None, typer.Option(help="Names containing this.")] = None,
    storage_type: StorageType = None,
    as_json: AsJson = False, tz: Tz = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """List topics (DescribeTopics, every page)."""
    filters = [{"Key": key, "Values": [value]} for key, value in
               (("logsetId", logset_id), ("topicName", name), ("storageType", storage_type))
               if value]
    items: list[dict[str, Any]] = []
    with session(endpoint, data_dir) as client:
        while True:
            page = client.action("DescribeTopics", {"Filters": filters, "Offset": len(items),
                                                    "Limit": 100})
            items += page["Topics"]
            if not page["Topics"] or len(items) >= page["TotalCount"]:
                break
    render([_in_zone(i, tz) for i in items], [
        ("TopicId", lambda r: r["TopicId"]), ("TopicName", lambda r: r["TopicName"]),
        ("LogsetId", lambda r: r["LogsetId"]), ("Partitions", lambda r: r["PartitionCount"]),
        ("Period", lambda r: r["Period"]), ("Storage", lambda r: r["StorageType"]),
        ("Status", lambda r: "open" if r["Status"] else "closed"),
        ("CreateTime", lambda r: r["CreateTime"])], as_json)


@app.command("show")
def show(topic_id: TopicId, as_json: AsJson = False, tz: Tz = None,
         endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None) -> None:
    """Show one topic with every option."""
    with session(endpoint, data_dir) as client:
        found = client.action("DescribeTopics", {"Filters": [
            {"Key": "topicId", "Values": [topic_id]}]})["Topics"]
        if not found:
            raise fail(f"topic {topic_id!r} does not exist")
    render_one(_in_zone(found[0], tz), as_json)


@app.command("create")
def create(
    logset_id: Annotated[str, typer.Option(help="The logset it goes in.")],
    name: Annotated[str, typer.Option(help="The topic's name (unique in the logset).")],
    partitions: Partitions = None, tag: Tags = None, auto_split: AutoSplit = None,
    max_split_partitions: MaxSplit = None, storage_type: StorageType = None,
    period: Period = None, describes: Describes = None, hot_period: HotPeriod = None,
    encryption: Encryption = None, kms_region: KmsRegion = None, kms_key_id: KmsKeyId = None,
    web_tracking: WebTracking = None, anonymous_operation: Anonymous = None,
    source_from: SourceFrom = None, billing_mode: BillingMode = None,
    biz_type: Annotated[int | None, typer.Option(help="BizType: 0 logs, 1 metrics.")] = None,
    topic_id: Annotated[str | None, typer.Option(help="A custom id (<name>-<APPID>).")] = None,
    params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Create a topic (CreateTopic) and print its id."""
    options = _options(partitions, tag, auto_split, max_split_partitions, storage_type, period,
                       describes, hot_period, encryption, kms_region, kms_key_id, web_tracking,
                       anonymous_operation, source_from, billing_mode, params)
    request = {**given(LogsetId=logset_id, TopicName=name, BizType=biz_type, TopicId=topic_id),
               **options}
    with session(endpoint, data_dir) as client:
        print(client.action("CreateTopic", request)["TopicId"])


@app.command("modify")
def modify(
    topic_id: TopicId,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    status: Annotated[bool | None, typer.Option("--open/--close",
                                                help="Status: open or close the topic to "
                                                     "uploads.")] = None,
    partitions: Partitions = None, tag: Tags = None, auto_split: AutoSplit = None,
    max_split_partitions: MaxSplit = None, storage_type: StorageType = None,
    period: Period = None, describes: Describes = None, hot_period: HotPeriod = None,
    encryption: Encryption = None, kms_region: KmsRegion = None, kms_key_id: KmsKeyId = None,
    web_tracking: WebTracking = None, anonymous_operation: Anonymous = None,
    source_from: SourceFrom = None, billing_mode: BillingMode = None,
    params: Params = None,
    endpoint: Endpoint = DEFAULT_ENDPOINT, data_dir: CredentialsDir = None,
) -> None:
    """Change a topic (ModifyTopic)."""
    options = _options(partitions, tag, auto_split, max_split_partitions, storage_type, period,
                       describes, hot_period, encryption, kms_region, kms_key_id, web_tracking,
                       anonymous_operation, source_from, billing_mode, params)
    request = {**given(TopicId=topic_id, TopicName=name, Status=status), **options}
    with session(endpoint, data_dir) as client:
        client.action("ModifyTopic", request)
    print(f"topic {topic_id} modified")


@app.command("delete")
def delete(topic_id: TopicId, endpoint: Endpoint = DEFAULT_ENDPOINT,
           data_dir: CredentialsDir = None) -> None:
    """Delete a topic without shippers, and its log (DeleteTopic)."""
    with session(endpoint, data_dir) as client:
        client.action("DeleteTopic", {"TopicId": topic_id})
    print(f"topic {topic_id} deleted")
