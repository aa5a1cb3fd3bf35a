"""How shippers and tasks look in API 3.0: one table per model, in the CamelCase of the
documented output structures (spec §7.4-§7.8), read from requests and rendered back."""

from __future__ import annotations

from typing import Any

from cls_shipper.api.fieldmap import LEGACY_TIME, Field, FieldMap, each, nested, wrapped
from cls_shipper.api.task_view import is_queued
from cls_shipper.model.shipper import ContentInfo, FilterRule, ParquetKey
from cls_shipper.model.task import TaskStatus
from cls_shipper.service.shipper_rules import check_csv, check_json

CONTENT = FieldMap(make=ContentInfo, fields=[
    Field("format", "Format"),
    Field("csv", "Csv", nested(FieldMap(make=check_csv, fields=[
        Field("print_key", "PrintKey"),
        Field("keys", "Keys"),
        Field("delimiter", "Delimiter"),
        Field("escape_char", "EscapeChar"),
        Field("non_existing_field", "NonExistingField"),
    ]))),
    Field("json", "Json", nested(FieldMap(make=check_json, fields=[
        Field("enable_tag", "EnableTag"),
        Field("meta_fields", "MetaFields"),
        Field("json_type", "JsonType"),
    ]))),
    Field("parquet", "Parquet", wrapped("ParquetKeyInfo", each(nested(FieldMap(
        make=ParquetKey, fields=[
            Field("key_name", "KeyName"),
            Field("key_type", "KeyType"),
            Field("key_non_existing_field", "KeyNonExistingField"),
        ]))))),
])


def _seconds(ms: int) -> int:
    # API 3.0 StartTime/EndTime are Unix seconds; 0 = not set (spec §7.4, §7.6).
    return ms // 1000


# Over a service Shipper; the `config.` rows are also what a request sets on its config.
SHIPPER: FieldMap[Any] = FieldMap(fields=[
    Field("shipper_id", "ShipperId"),
    Field("config.topic_id", "TopicId"),
    Field("config.bucket", "Bucket"),
    Field("config.prefix", "Prefix"),
    Field("config.shipper_name", "ShipperName"),
    Field("config.interval", "Interval"),
    Field("config.max_size", "MaxSize"),
    Field("effective", "Status"),
    Field("config.filter_rules", "FilterRules", each(nested(FieldMap(make=FilterRule, fields=[
        Field("key", "Key"), Field("regex", "Regex"), Field("value", "Value")])))),
    Field("config.partition", "Partition"),
    Field("config.compress", "Compress", wrapped("Format")),
    Field("config.content", "Content", nested(CONTENT)),
    Field("created_ms", "CreateTime", LEGACY_TIME),
    Field("config.filename_mode", "FilenameMode"),
    Field(lambda s: _seconds(s.start_ms), "StartTime"),
    Field(lambda s: _seconds(s.end_ms), "EndTime"),
    Field(lambda s: float(s.progress.history.fraction), "Progress"),
    Field("progress.history.remain_s", "RemainTime"),
    Field("progress.history.status", "HistoryStatus"),
    Field("config.storage_type", "StorageType"),
    Field("config.role_arn", "RoleArn"),
    Field("config.external_id", "ExternalId"),
    Field("task_status", "TaskStatus"),
    Field("config.time_zone", "TimeZone"),
    Field("config.dsl_filter", "DSLFilter"),
])


def _status(task: Any) -> Any:
    # API 3.0 has no `wait` (spec §8.6): a queued task is still in progress.
    return TaskStatus.RUNNING if is_queued(task) else task.status


# int64 fields as JSON numbers: the SDK models declare them `int` and the typed SDKs (Go
# *int64, Java Long) decode numbers; only the doc example shows strings (spec §10.16).
TASK: FieldMap[Any] = FieldMap(fields=[
    Field("task_id", "TaskId"),
    Field("shipper_id", "ShipperId"),
    Field("topic_id", "TopicId"),
    Field("range_start_ms", "RangeStart"),
    Field("range_end_ms", "RangeEnd"),
    Field("start_ms", "StartTime"),
    Field(lambda t: t.end_ms or 0, "EndTime"),
    Field(_status, "Status"),
    Field("message", "Message"),
])
