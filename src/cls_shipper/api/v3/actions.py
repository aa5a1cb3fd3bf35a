"""The API 3.0 actions: each maps its parameters onto a service call and renders the result
in the documented output structure (spec §7.2-§7.10). No rule lives here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from cls_shipper.api.task_view import RenderedTasks
from cls_shipper.api.v3 import params as p
from cls_shipper.api.v3.fields import SHIPPER, TASK
from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service import Context, logs, logsets, shippers, tasks, topics
from cls_shipper.service.matching import TagFilter
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.timefmt import format_legacy

# CreateLogset has no retention parameter in API 3.0 (topics carry `Period`); a logset's
# period is what its topics inherit. 30 days is CLS's default topic retention.
MAX_FILTERS = 10
MAX_FILTER_VALUES = 100  # the older doc page's figure; the current one says 10 (spec §10.17)
MAX_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets besides its parameters."""

    ctx: Context
    body: bytes
    client_ip: str


# ---- shared parameter handling ----

def _tags(tags: list[p.Tag] | None) -> list[dict[str, str]] | None:
    # Their rules are the service's (service/tags.py).
    if tags is None:
        return None
    return [{"Key": t.Key, "Value": t.Value} for t in tags]


def _tags_out(tags: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"Key": str(t.get("Key", "")), "Value": str(t.get("Value", ""))} for t in tags]


def _page(offset: int, limit: int) -> tuple[int, int]:
    if offset < 0:
        raise invalid("Offset must be >= 0")
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid(f"Limit must be from 1 to {MAX_LIMIT}")
    return offset, limit


def _filters(filters: list[p.Filter] | None, keys: set[str]) -> dict[str, list[str]]:
    """Filters by key; one filter per key, values ORed, keys ANDed."""
    out: dict[str, list[str]] = {}
    if len(filters or []) > MAX_FILTERS:
        raise ServiceError(Kinds.LIMIT_EXCEEDED, f"at most {MAX_FILTERS} Filters")
    for f in filters or []:
        if f.Key not in keys and not (f.Key.startswith("tag:") and "tag:" in keys):
            raise invalid(f"unknown filter key {f.Key!r}; use {', '.join(sorted(keys))}")
        if f.Key in out:
            raise invalid(f"filter key {f.Key!r} is given twice")
        if not f.Values:
            raise invalid(f"filter {f.Key!r} needs at least one value")
        if len(f.Values) > MAX_FILTER_VALUES:
            raise ServiceError(Kinds.LIMIT_EXCEEDED,
                               f"at most {MAX_FILTER_VALUES} values per filter")
        out[f.Key] = f.Values
    return out


def _tag_filter(found: dict[str, list[str]]) -> TagFilter:
    return TagFilter(keys=found.get("tagKey"),
                     values={k[4:]: v for k, v in found.items() if k.startswith("tag:")})


# ---- logsets ----

def _logset_info(item: logsets.Logset, zone: tzinfo) -> dict[str, Any]:
    return {"LogsetId": item.logset_id, "LogsetName": item.logset_name,
            "CreateTime": format_legacy(item.created_ms, zone), "AssumerName": "",
            "Tags": _tags_out(item.tags), "TopicCount": item.topic_count, "RoleName": ""}


def create_logset(call: Call, q: p.CreateLogset) -> dict[str, Any]:
    new = logsets.create(call.ctx, q.LogsetName, tags=_tags(q.Tags),
                         logset_id=q.LogsetId or None)
    return {"LogsetId": new}


def describe_logsets(call: Call, q: p.DescribeLogsets) -> dict[str, Any]:
    offset, limit = _page(q.Offset, q.Limit)
    found = _filters(q.Filters, {"logsetName", "logsetId", "tagKey", "tag:"})
    items = logsets.search(call.ctx, names=found.get("logsetName"), ids=found.get("logsetId"),
                           tags=_tag_filter(found))
    return {"Logsets": [_logset_info(i, call.ctx.zone) for i in items[offset:offset + limit]],
            "TotalCount": len(items)}


def modify_logset(call: Call, q: p.ModifyLogset) -> dict[str, Any]:
    logsets.modify(call.ctx, q.LogsetId, q.LogsetName, None, _tags(q.Tags))
    return {}


def delete_logset(call: Call, q: p.DeleteLogset) -> dict[str, Any]:
    logsets.delete_logset(call.ctx, q.LogsetId)
    return {}


# ---- topics ----

def _topic_info(item: topics.Topic, zone: tzinfo) -> dict[str, Any]:
    # Only TopicInfo's own fields: the SDK warns about any other one (it did about
    # LogsetName). No migration between storage types is ever pending here.
    o = item.options
    anonymous = o.anonymous_access
    return {
        "LogsetId": item.logset_id, "TopicId": item.topic_id, "TopicName": item.topic_name,
        "PartitionCount": item.partition_count, "Index": item.index, "AssumerName": "",
        "CreateTime": format_legacy(item.created_ms, zone), "Status": item.collection,
        "Tags": _tags_out(item.tags), "RoleName": "", "AutoSplit": o.auto_split,
        "MaxSplitPartitions": o.max_split_partitions, "StorageType": o.storage_type,
        "Period": item.period, "SubAssumerName": "", "Describes": o.describes,
        "HotPeriod": o.hot_period, "KeyId": o.kms_key_id if o.encryption else "",
        "CustomKmsInfo": ({"KmsRegion": o.kms_region, "KmsKeyId": o.kms_key_id}
                          if o.kms_region or o.kms_key_id else None),
        "BizType": o.biz_type, "IsWebTracking": o.is_web_tracking,
        "Extends": None if anonymous is None else {"AnonymousAccess": {
            "Operations": anonymous["operations"],
            "Conditions": [{"Attributes": c["attributes"], "Rule": c["rule"],
                            "ConditionValue": c["condition_value"]}
                           for c in anonymous["conditions"]]}},
        "TopicAsyncTaskID": "", "MigrationStatus": None, "EffectiveDate": "",
        "IsSourceFrom": o.is_source_from, "BillingMode": o.billing_mode,
        "NewBillingMode": o.billing_mode,
    }


def _topic_options(q: p.TopicOptions) -> dict[str, Any]:
    """The TopicOptions fields a CreateTopic/ModifyTopic request sets (None: not given)."""
    kms = q.CustomKmsInfo
    anonymous = q.Extends.AnonymousAccess if q.Extends is not None else None
    return {
        "auto_split": q.AutoSplit, "max_split_partitions": q.MaxSplitPartitions,
        "storage_type": q.StorageType, "describes": q.Describes, "hot_period": q.HotPeriod,
        "encryption": q.Encryption,
        "kms_region": kms.KmsRegion if kms is not None else None,
        "kms_key_id": kms.KmsKeyId if kms is not None else None,
        "is_web_tracking": q.IsWebTracking,
        "anonymous_access": None if anonymous is None else {
            "operations": anonymous.Operations or [],
            "conditions": [{"attributes": c.Attributes, "rule": c.Rule,
                            "condition_value": c.ConditionValue}
                           for c in anonymous.Conditions or []]},
        "is_source_from": q.IsSourceFrom, "billing_mode": q.BillingMode,
    }


def create_topic(call: Call, q: p.CreateTopic) -> dict[str, Any]:
    new = topics.create(call.ctx, q.LogsetId, q.TopicName,
                        partition_count=1 if q.PartitionCount is None else q.PartitionCount,
                        period=q.Period, tags=_tags(q.Tags), topic_id=q.TopicId or None,
                        options={**_topic_options(q), "biz_type": q.BizType})
    return {"TopicId": new}


def describe_topics(call: Call, q: p.DescribeTopics) -> dict[str, Any]:
    offset, limit = _page(q.Offset, q.Limit)
    if q.PreciseSearch not in (0, 1, 2, 3):
        raise invalid("PreciseSearch must be 0-3 (bit 1: TopicName exact, bit 2: LogsetName)")
    if q.BizType not in (None, 0, 1):
        raise invalid("BizType must be 0 (log topics) or 1 (metric topics)")
    found = _filters(q.Filters, {"topicName", "logsetName", "topicId", "logsetId", "tagKey",
                                 "tag:", "storageType"})
    items = topics.search(call.ctx, topics.TopicQuery(
        names=found.get("topicName"), exact_names=bool(q.PreciseSearch & 1),
        logset_names=found.get("logsetName"), exact_logset_names=bool(q.PreciseSearch & 2),
        topic_ids=found.get("topicId"), logset_ids=found.get("logsetId"),
        tags=_tag_filter(found), storage_types=found.get("storageType"), biz_type=q.BizType))
    return {"Topics": [_topic_info(t, call.ctx.zone) for t, _ in items[offset:offset + limit]],
            "TotalCount": len(items)}


def modify_topic(call: Call, q: p.ModifyTopic) -> dict[str, Any]:
    if q.CancelTopicAsyncTaskID:
        raise invalid("CancelTopicAsyncTaskID: no storage migration is pending here "
                      "(a StorageType change applies at once)")
    topics.modify(call.ctx, q.TopicId, topic_name=q.TopicName, tags=_tags(q.Tags),
                  collection=q.Status, period=q.Period, partition_count=q.PartitionCount,
                  options=_topic_options(q))
    return {}


def delete_topic(call: Call, q: p.DeleteTopic) -> dict[str, Any]:
    topics.delete_topic(call.ctx, q.TopicId)
    return {}


# ---- shippers ----

def _config_fields(q: p.ShipperOptions) -> dict[str, Any]:
    """The ShipperConfig fields the request sets (a parameter left out is null)."""
    return SHIPPER.read({name: value for name, value in q if value is not None}, under="config")


def create_shipper(call: Call, q: p.CreateShipper) -> dict[str, Any]:
    config = ShipperConfig(**{**defaults("v3"), **_config_fields(q)})
    new = shippers.create(call.ctx, config, "v3",
                          start_ms=(q.StartTime or 0) * 1000, end_ms=(q.EndTime or 0) * 1000)
    return {"ShipperId": new}


def modify_shipper(call: Call, q: p.ModifyShipper) -> dict[str, Any]:
    for name in ("TopicId", "StartTime", "EndTime"):
        if getattr(q, name) is not None:
            raise invalid(f"{name} cannot be modified")
    shippers.modify(call.ctx, q.ShipperId, "v3", _config_fields(q), q.Status)
    return {}


def describe_shippers(call: Call, q: p.DescribeShippers) -> dict[str, Any]:
    offset, limit = _page(q.Offset, q.Limit)
    if q.PreciseSearch not in (0, 1):
        raise invalid("PreciseSearch must be 0 (fuzzy shipperName) or 1 (exact)")
    found = _filters(q.Filters, {"shipperName", "shipperId", "topicId", "taskStatus"})
    for topic_id in found.get("topicId", []):
        topics.get(call.ctx, topic_id)  # ResourceNotFound.TopicNotExist, as documented
    statuses = found.get("taskStatus")
    if statuses is not None and not all(s in ("0", "1", "2") for s in statuses):
        raise invalid("taskStatus must be 0 (stopped), 1 (running) or 2 (exception)")
    items, total = shippers.search(call.ctx, shippers.ShipperQuery(
        topic_ids=found.get("topicId"), shipper_ids=found.get("shipperId"),
        names=found.get("shipperName"), exact_names=q.PreciseSearch == 1,
        task_statuses=None if statuses is None else [int(s) for s in statuses],
        offset=offset, limit=limit))
    return {"Shippers": [SHIPPER.render(i, call.ctx.zone) for i in items], "TotalCount": total}


def delete_shipper(call: Call, q: p.DeleteShipper) -> dict[str, Any]:
    shippers.delete_shipper(call.ctx, q.ShipperId)
    return {}


# ---- tasks ----

_LISTED = RenderedTasks(TASK)


def describe_shipper_tasks(call: Call, q: p.DescribeShipperTasks) -> dict[str, Any]:
    if q.StartTime >= q.EndTime:
        raise invalid("StartTime must be earlier than EndTime (both in milliseconds)")
    # No paging parameters in API 3.0: the first MAX_LISTED tasks (see service.tasks).
    page = tasks.list_tasks(call.ctx, q.ShipperId, q.StartTime, q.EndTime)
    return {"Tasks": _LISTED.array(page.tasks, call.ctx.zone)}


def retry_shipper_task(call: Call, q: p.RetryShipperTask) -> dict[str, Any]:
    tasks.retry(call.ctx, q.ShipperId, q.TaskId)
    return {}


# ---- upload ----

async def upload_log(call: Call, q: p.UploadLog) -> dict[str, Any]:
    # UploadLog's body is always a protobuf LogGroupList; the SDK labels it octet-stream.
    # X-CLS-HashKey (deprecated in the docs, still sent) picks the partition, as on the
    # legacy endpoint.
    await logs.upload(call.ctx, q.TopicId, call.body, "application/x-protobuf",
                      q.CompressType, call.client_ip, q.HashKey)
    return {}


@dataclass(frozen=True, slots=True)
class Action:
    model: type[p.Params]
    handler: Callable[[Call, Any], Any]  # returns the output fields (a dict)
    from_headers: bool = False  # parameters in X-CLS-* headers, body is data
    # A coroutine run on the event loop (the ingest service group-commits there); the other
    # handlers block on the database and run in the thread pool.
    on_loop: bool = False


ACTIONS: dict[str, Action] = {
    "CreateLogset": Action(p.CreateLogset, create_logset),
    "DescribeLogsets": Action(p.DescribeLogsets, describe_logsets),
    "ModifyLogset": Action(p.ModifyLogset, modify_logset),
    "DeleteLogset": Action(p.DeleteLogset, delete_logset),
    "CreateTopic": Action(p.CreateTopic, create_topic),
    "DescribeTopics": Action(p.DescribeTopics, describe_topics),
    "ModifyTopic": Action(p.ModifyTopic, modify_topic),
    "DeleteTopic": Action(p.DeleteTopic, delete_topic),
    "CreateShipper": Action(p.CreateShipper, create_shipper),
    "DescribeShippers": Action(p.DescribeShippers, describe_shippers),
    "ModifyShipper": Action(p.ModifyShipper, modify_shipper),
    "DeleteShipper": Action(p.DeleteShipper, delete_shipper),
    "DescribeShipperTasks": Action(p.DescribeShipperTasks, describe_shipper_tasks),
    "RetryShipperTask": Action(p.RetryShipperTask, retry_shipper_task),
    "UploadLog": Action(p.UploadLog, upload_log, from_headers=True, on_loop=True),
}
