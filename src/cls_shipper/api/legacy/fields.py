"""How shippers and tasks look on the legacy surface: one table per model, in snake_case and
in the documented order (spec §4.1, §4.6), read from requests and rendered back."""

from __future__ import annotations

from typing import Any

from cls_shipper.api.fieldmap import (
    LEGACY_TIME,
    Field,
    FieldMap,
    each,
    nested,
    shown_as,
    wrapped,
)
from cls_shipper.api.task_view import config_of, is_queued, objects_of
from cls_shipper.model.shipper import LEGACY_JSON, ContentInfo, FilterRule, ParquetKey
from cls_shipper.service.shipper_rules import check_csv, check_json


def _absent(value: Any) -> bool:
    return value is None


def _legacy_default(value: Any) -> bool:
    # JSON options set through API 3.0 or json_info are shown, so that writing back what was
    # read keeps them; without them, JSON means every meta field and the tags.
    return value is None or value == LEGACY_JSON


CONTENT = FieldMap(make=ContentInfo, fields=[
    Field("format"),
    Field("csv", "csv_info", nested(FieldMap(make=check_csv, fields=[
        Field("print_key"), Field("keys"), Field("delimiter"), Field("escape_char"),
        Field("non_existing_field")])), omit=_absent),
    Field("json", "json_info", nested(FieldMap(make=check_json, fields=[
        Field("enable_tag"), Field("meta_fields"), Field("json_type")])),
        omit=_legacy_default),
    Field("parquet", "parquet_info", wrapped("parquet_key_info", each(nested(FieldMap(
        make=ParquetKey,
        fields=[Field("key_name"), Field("key_type"), Field("key_non_existing_field")])))),
        omit=_absent),
])


def _shipped_until(progress: Any) -> int | None:
    return progress.shipped_until_ms or None  # 0: nothing shipped yet


# Over a service Shipper; the `config.` rows are also what a request sets on its config.
SHIPPER: FieldMap[Any] = FieldMap(fields=[
    Field("shipper_id"),
    Field("config.topic_id"),
    Field("config.bucket"),
    Field("config.prefix"),
    Field("config.shipper_name"),
    Field("config.interval"),
    Field("config.max_size"),
    Field("effective"),
    Field("config.partition"),
    Field("config.compress", conv=wrapped("format")),
    Field("config.content", conv=nested(CONTENT)),
    Field("config.filter_rules", conv=each(nested(FieldMap(
        make=FilterRule, fields=[Field("key"), Field("regex"), Field("value")])))),
    Field("created_ms", "create_time", LEGACY_TIME),
    # Extension: how far the shipper has got.
    Field("progress", conv=nested(FieldMap(fields=[
        Field(_shipped_until, "shipped_until", LEGACY_TIME),
        Field("next_window_ms", "next_window", LEGACY_TIME),
        Field("oldest_failed_ms", "oldest_failed_window", LEGACY_TIME),
        Field("pending", "pending_tasks"),
        Field("failed", "failed_tasks"),
        Field("succeeded", "successful_tasks"),
    ]))),
    # Extension: null, or why the destination refuses the shipper and since when; its
    # windows wait (failed ones included) until a probe finds the destination working.
    Field("blocked", conv=nested(FieldMap(fields=[
        Field("since_ms", "since", LEGACY_TIME),
        Field("reason"),
        Field("code"),
        Field("next_probe_ms", "next_probe", LEGACY_TIME),
    ]))),
])


def _offset(value: int | None) -> int:
    return -1 if value is None else value


def _next_attempt(task: Any) -> int | None:
    return task.next_attempt_ms if is_queued(task) else None


def _or_empty(value: str | None) -> str:
    return value or ""


TASK_FIELDS = [
    Field("task_id"),
    Field("shipper_id"),
    Field("topic_id"),
    Field("range_start_ms", "range_start", LEGACY_TIME),
    Field("range_end_ms", "range_end", LEGACY_TIME),
    Field("start_ms", "start_time", LEGACY_TIME),
    Field("end_ms", "end_time", LEGACY_TIME),
    Field("status"),
    Field("message"),
]
TASK: FieldMap[Any] = FieldMap(fields=TASK_FIELDS)
# Extension: a detailed listing (`detail=true`), each task with the counters GET /task shows
# under the same names, and the number of its objects (rejects object included).
COUNTED_TASK: FieldMap[Any] = FieldMap(fields=[
    *TASK_FIELDS,
    Field("records"),
    Field("records_filtered", "records_filtered_out"),
    Field("records_rejected"),
    Field("bytes_in"),
    Field("bytes_out"),
    Field("objects", "object_count"),
    Field("attempts"),
])
TASK_DETAIL: FieldMap[Any] = FieldMap(fields=[
    *TASK_FIELDS,
    Field("records"),
    Field("records_filtered", "records_filtered_out"),
    # Extension: records the format could not write, in the object of kind "rejects".
    Field("records_rejected"),
    Field("bytes_in"),
    Field("bytes_out"),
    Field("first_offset", conv=shown_as(_offset)),
    Field("last_offset", conv=shown_as(_offset)),
    Field(objects_of, "objects"),
    Field("attempts"),
    Field("last_error"),
    Field("created_ms", "created_time", LEGACY_TIME),
    Field(_next_attempt, "next_attempt_time", LEGACY_TIME),
    Field("lease_owner", conv=shown_as(_or_empty)),
    Field("lease_expires_ms", "lease_expire_time", LEGACY_TIME),
    Field(config_of, "config"),
    # Extension: every run of this task (worker, lease, outcome), oldest first.
    Field("runs", conv=each(nested(FieldMap(fields=[
        Field("attempt"),
        Field("owner", "worker"),
        Field("lease_token"),
        Field("started_ms", "start_time", LEGACY_TIME),
        Field("ended_ms", "end_time", LEGACY_TIME),
        Field("lease_expires_ms", "lease_expire_time", LEGACY_TIME),
        Field("outcome"),
        Field("message"),
    ])))),
])
