"""The API 3.0 consumer-group actions, as the legacy SDK's `YunApiLogClient` sends them
(CreateConsumerGroup, ModifyConsumerGroup, DeleteConsumerGroup, DescribeConsumerGroups,
CommitConsumerOffsets, DescribeConsumerOffsets, SendConsumerHeartbeat), and the partition
actions (DescribePartitions, SplitPartition, MergePartition): parameter models and the
mapping onto `service/consumers.py` and `service/topics.py`, where every rule is. Kept apart
from the shipping actions' table, which the transport consults first."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from cls_shipper.api.v3.actions import Action, Call
from cls_shipper.api.v3.params import Int64, Params
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.model.partitions import MAX_PARTITIONS
from cls_shipper.service import consumers, topics
from cls_shipper.timefmt import format_legacy

MAX_TOPICS = consumers.MAX_TOPICS_PER_GROUP
TopicList = Annotated[list[str], Field(max_length=MAX_TOPICS)]


class CreateConsumerGroup(Params):
    LogsetId: str
    ConsumerGroup: str
    Timeout: Int64
    Topics: TopicList


class ModifyConsumerGroup(Params):
    LogsetId: str
    ConsumerGroup: str
    Topics: TopicList | None = None
    Timeout: Int64 | None = None
    # The SDK's update_consumer_group sends a lowercase `timeout` when it has no topics.
    timeout: Int64 | None = None


class DeleteConsumerGroup(Params):
    LogsetId: str
    ConsumerGroup: str


class DescribeConsumerGroups(Params):
    LogsetId: str
    Topics: TopicList | None = None


class PartitionOffset(Params):
    PartitionId: Int64
    Offset: Int64


class TopicPartitionOffsets(Params):
    TopicID: str
    PartitionOffsets: Annotated[list[PartitionOffset], Field(max_length=MAX_PARTITIONS)]


class CommitConsumerOffsets(Params):
    LogsetId: str
    ConsumerGroup: str
    Consumer: str = ""
    TopicPartitionOffsetsInfo: Annotated[list[TopicPartitionOffsets],
                                         Field(max_length=MAX_TOPICS)]


class DescribeConsumerOffsets(Params):
    LogsetId: str
    ConsumerGroup: str
    TopicId: str
    # The SDK sends both as strings: "-1" (every partition), "begin", "end" or Unix seconds.
    PartitionId: str | Int64 = "-1"
    From: str | Int64 = "end"


class TopicPartitions(Params):
    TopicID: str
    Partitions: Annotated[list[Int64], Field(max_length=MAX_PARTITIONS)]


class SendConsumerHeartbeat(Params):
    LogsetId: str
    ConsumerGroup: str
    Consumer: str
    # What the consumer still holds (what it was answered, and what it is still shutting
    # down): a partition moves to another consumer only once its holder stops reporting it.
    TopicPartitionsInfo: Annotated[list[TopicPartitions] | None,
                                   Field(max_length=MAX_TOPICS)] = None
    PartitionStrategy: Int64 | None = None


class DescribePartitions(Params):
    TopicId: str


class SplitPartition(Params):
    TopicId: str
    PartitionId: Int64
    SplitKey: str | None = None
    Number: Int64 | None = None


class MergePartition(Params):
    TopicId: str
    PartitionId: Int64


def describe_partitions(call: Call, q: DescribePartitions) -> dict[str, Any]:
    zone = call.ctx.zone
    return {"Partitions": [{
        "PartitionId": p.partition_id, "Status": "readwrite" if p.writable else "readonly",
        "InclusiveBeginKey": p.begin_key, "ExclusiveEndKey": p.end_key,
        "CreateTime": format_legacy(p.created_ms, zone),
        "LastWriteTime": None if p.last_write_ms is None
        else format_legacy(p.last_write_ms, zone)}
        for p in topics.describe_partitions(call.ctx, q.TopicId)]}


def split_partition(call: Call, q: SplitPartition) -> dict[str, Any]:
    topics.refuse_partition_change(call.ctx, "SplitPartition", q.TopicId)
    return {}


def merge_partition(call: Call, q: MergePartition) -> dict[str, Any]:
    topics.refuse_partition_change(call.ctx, "MergePartition", q.TopicId)
    return {}


def create_consumer_group(call: Call, q: CreateConsumerGroup) -> dict[str, Any]:
    consumers.create_group(call.ctx, q.LogsetId, q.ConsumerGroup, q.Timeout, q.Topics)
    return {}


def modify_consumer_group(call: Call, q: ModifyConsumerGroup) -> dict[str, Any]:
    timeout = q.Timeout if q.Timeout is not None else q.timeout
    consumers.modify_group(call.ctx, q.LogsetId, q.ConsumerGroup, q.Topics, timeout)
    return {}


def delete_consumer_group(call: Call, q: DeleteConsumerGroup) -> dict[str, Any]:
    consumers.delete_group(call.ctx, q.LogsetId, q.ConsumerGroup)
    return {}


def describe_consumer_groups(call: Call, q: DescribeConsumerGroups) -> dict[str, Any]:
    found = consumers.list_groups(call.ctx, q.LogsetId, q.Topics)
    return {"ConsumerGroupsInfo": [
        {"ConsumerGroup": g.group, "Timeout": g.timeout, "Topics": g.topics} for g in found],
        "TotalCount": len(found)}


def commit_consumer_offsets(call: Call, q: CommitConsumerOffsets) -> dict[str, Any]:
    offsets = [(t.TopicID, int(p.PartitionId), int(p.Offset))
               for t in q.TopicPartitionOffsetsInfo for p in t.PartitionOffsets]
    if not offsets:
        raise ServiceError(Kinds.MISSING_PARAM, "TopicPartitionOffsetsInfo holds no offset")
    consumers.commit_offsets(call.ctx, q.LogsetId, q.ConsumerGroup, q.Consumer, offsets)
    return {}


def describe_consumer_offsets(call: Call, q: DescribeConsumerOffsets) -> dict[str, Any]:
    found = consumers.describe_offsets(call.ctx, q.LogsetId, q.ConsumerGroup, q.TopicId,
                                       q.PartitionId, q.From)
    return {"TopicPartitionOffsetsInfo": [{
        "TopicID": q.TopicId,
        "PartitionOffsets": [{"PartitionId": p, "Offset": o} for p, o in found]}]}


def send_consumer_heartbeat(call: Call, q: SendConsumerHeartbeat) -> dict[str, Any]:
    reported = [(t.TopicID, int(p)) for t in q.TopicPartitionsInfo or () for p in t.Partitions]
    held = consumers.heartbeat(call.ctx, q.LogsetId, q.ConsumerGroup, q.Consumer, reported)
    return {"TopicPartitionsInfo": [{"TopicID": t, "Partitions": ps}
                                    for t, ps in sorted(held.items())]}


CONSUMER_ACTIONS: dict[str, Action] = {
    "CreateConsumerGroup": Action(CreateConsumerGroup, create_consumer_group),
    "ModifyConsumerGroup": Action(ModifyConsumerGroup, modify_consumer_group),
    "DeleteConsumerGroup": Action(DeleteConsumerGroup, delete_consumer_group),
    "DescribeConsumerGroups": Action(DescribeConsumerGroups, describe_consumer_groups),
    "CommitConsumerOffsets": Action(CommitConsumerOffsets, commit_consumer_offsets),
    "DescribeConsumerOffsets": Action(DescribeConsumerOffsets, describe_consumer_offsets),
    "SendConsumerHeartbeat": Action(SendConsumerHeartbeat, send_consumer_heartbeat),
    "DescribePartitions": Action(DescribePartitions, describe_partitions),
    "SplitPartition": Action(SplitPartition, split_partition),
    "MergePartition": Action(MergePartition, merge_partition),
}
