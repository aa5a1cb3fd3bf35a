"""Legacy shippers and the task ledger (spec §4)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cls_shipper.api.legacy.common import (
    Fields,
    authenticate,
    context,
    empty_response,
    json_response,
    query,
    query_int,
    read_json,
    run,
)
from cls_shipper.errors import invalid, missing
from cls_shipper.model.shipper import (
    LEGACY_JSON,
    ContentInfo,
    FilterRule,
    ParquetKey,
    ShipperConfig,
)
from cls_shipper.model.task import TaskStatus
from cls_shipper.service import audit, shippers, tasks
from cls_shipper.service.shipper_rules import check_csv, check_json, defaults
from cls_shipper.timefmt import format_legacy, parse_legacy

router = APIRouter(dependencies=[Depends(authenticate)])

CONFIG_FIELDS = {"bucket", "prefix", "shipper_name", "interval", "max_size", "partition",
                 "compress", "content", "filter_rules"}
CREATE_FIELDS = CONFIG_FIELDS | {"topic_id", "custom_uin"}
MODIFY_FIELDS = CONFIG_FIELDS | {"shipper_id", "effective", "custom_uin"}


def _compress(value: Any) -> str:
    obj = Fields(value, {"format"}, "compress object")
    return str(obj.get("format", str, required=True))


def _content(value: Any) -> ContentInfo:
    obj = Fields(value, {"format", "csv_info", "json_info", "parquet_info"}, "content object")
    fmt = obj.get("format", str, required=True)
    csv = json = parquet = None
    if "csv_info" in obj:
        info = Fields(obj.get("csv_info"), {"print_key", "keys", "delimiter", "escape_char",
                                            "non_existing_field"}, "csv_info object")
        csv = check_csv(*(info.get(n, required=True) for n in
                          ("keys", "delimiter", "escape_char", "non_existing_field",
                           "print_key")))
    if "json_info" in obj:  # extension: the API 3.0 JsonInfo in snake_case
        info = Fields(obj.get("json_info"), {"enable_tag", "meta_fields", "json_type"},
                      "json_info object")
        json = check_json(info.get("enable_tag", default=True),
                          info.get("meta_fields", default=[]), info.get("json_type", default=0))
    if "parquet_info" in obj:  # extension: the API 3.0 ParquetInfo in snake_case
        info = Fields(obj.get("parquet_info"), {"parquet_key_info"}, "parquet_info object")
        keys = info.get("parquet_key_info", list, required=True)
        parquet = []
        for item in keys:
            key = Fields(item, {"key_name", "key_type", "key_non_existing_field"},
                         "parquet_key_info item")
            parquet.append(ParquetKey(key.get("key_name", str, required=True),
                                      key.get("key_type", str, required=True),
                                      key.get("key_non_existing_field", str, default="")))
    return ContentInfo(fmt, csv=csv, json=json, parquet=parquet)


def _filter_rules(value: Any) -> list[FilterRule]:
    if not isinstance(value, list):
        raise invalid("filter_rules must be a list")
    rules = []
    for item in value:
        rule = Fields(item, {"key", "regex", "value"}, "filter rule")
        rules.append(FilterRule(rule.get("key", str, required=True),
                                rule.get("regex", str, required=True),
                                rule.get("value", str, required=True)))
    return rules


def _config_changes(body: Fields) -> dict[str, Any]:
    """The ShipperConfig fields a legacy body sets."""
    changes: dict[str, Any] = {}
    for name in ("bucket", "prefix", "shipper_name", "interval", "max_size", "partition"):
        if name in body:
            changes[name] = body.get(name)
    if "compress" in body:
        changes["compress"] = _compress(body.get("compress"))
    if "content" in body:
        changes["content"] = _content(body.get("content"))
    if "filter_rules" in body:
        changes["filter_rules"] = _filter_rules(body.get("filter_rules"))
    return changes


def shipper_json(item: shippers.Shipper, zone: Any) -> dict[str, Any]:
    cfg = item.config
    content: dict[str, Any] = {"format": cfg.content.format}
    if cfg.content.csv is not None:
        csv = cfg.content.csv
        content["csv_info"] = {"print_key": csv.print_key, "keys": csv.keys,
                               "delimiter": csv.delimiter, "escape_char": csv.escape_char,
                               "non_existing_field": csv.non_existing_field}
    if cfg.content.json is not None and cfg.content.json != LEGACY_JSON:
        # Options set through API 3.0 or json_info: shown, so that writing back what was read
        # keeps them (without them, JSON means every meta field and the tags).
        json = cfg.content.json
        content["json_info"] = {"enable_tag": json.enable_tag, "meta_fields": json.meta_fields,
                                "json_type": json.json_type}
    if cfg.content.parquet is not None:
        content["parquet_info"] = {"parquet_key_info": [
            {"key_name": k.key_name, "key_type": k.key_type,
             "key_non_existing_field": k.key_non_existing_field} for k in cfg.content.parquet]}
    progress = item.progress
    return {
        "shipper_id": item.shipper_id,
        "topic_id": cfg.topic_id,
        "bucket": cfg.bucket,
        "prefix": cfg.prefix,
        "shipper_name": cfg.shipper_name,
        "interval": cfg.interval,
        "max_size": cfg.max_size,
        "effective": item.effective,
        "partition": cfg.partition,
        "compress": {"format": cfg.compress},
        "content": content,
        "filter_rules": [{"key": r.key, "regex": r.regex, "value": r.value}
                         for r in cfg.filter_rules],
        "create_time": format_legacy(item.created_ms, zone),
        # Extension: how far the shipper has got.
        "progress": {
            "shipped_until": format_legacy(progress.shipped_until_ms or None, zone),
            "next_window": format_legacy(progress.next_window_ms, zone),
            "oldest_failed_window": format_legacy(progress.oldest_failed_ms, zone),
            "pending_tasks": progress.pending,
            "failed_tasks": progress.failed,
            "successful_tasks": progress.succeeded,
        },
    }


def task_json(task: tasks.Task, zone: Any) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "shipper_id": task.shipper_id,
        "topic_id": task.topic_id,
        "range_start": format_legacy(task.range_start_ms, zone),
        "range_end": format_legacy(task.range_end_ms, zone),
        "start_time": format_legacy(task.start_ms, zone),
        "end_time": format_legacy(task.end_ms, zone),
        "status": task.status,
        "message": task.message,
    }


def task_detail_json(task: tasks.TaskDetail, zone: Any) -> dict[str, Any]:
    return {
        **task_json(task, zone),
        "records": task.records,
        "records_filtered_out": task.records_filtered,
        "bytes_in": task.bytes_in,
        "bytes_out": task.bytes_out,
        "first_offset": task.first_offset if task.first_offset is not None else -1,
        "last_offset": task.last_offset if task.last_offset is not None else -1,
        "objects": [obj.to_dict() for obj in task.objects],
        "attempts": task.attempts,
        "last_error": task.last_error,
        "created_time": format_legacy(task.created_ms, zone),
        "next_attempt_time": format_legacy(task.next_attempt_ms, zone)
        if task.status is TaskStatus.WAIT else "",
        "lease_owner": task.lease_owner or "",
        "lease_expire_time": format_legacy(task.lease_expires_ms, zone),
        "config": task.config.to_dict(),
        # Extension: every run of this task (worker, lease, outcome), oldest first.
        "runs": [{"attempt": r.attempt, "worker": r.owner, "lease_token": r.lease_token,
                  "start_time": format_legacy(r.started_ms, zone),
                  "end_time": format_legacy(r.ended_ms, zone),
                  "lease_expire_time": format_legacy(r.lease_expires_ms, zone),
                  "outcome": r.outcome, "message": r.message} for r in task.runs],
    }


@router.post("/shipper")
async def create_shipper(request: Request) -> Response:
    ctx = context(request)
    body = await read_json(request, CREATE_FIELDS)
    for name in ("topic_id", "bucket", "prefix", "shipper_name"):
        if name not in body:
            raise missing(name)
    values = {**defaults("legacy"), "topic_id": body.get("topic_id", str),
              **_config_changes(body)}
    new = await run(shippers.create, ctx, ShipperConfig(**values), "legacy")
    return json_response({"shipper_id": new})


def _shipper_id_from_query(request: Request) -> str:
    fields = query(request, {"shipper_id"})
    value = fields.get("shipper_id")
    if not value:
        raise missing("shipper_id")
    return str(value)


@router.get("/shipper")
async def get_shipper(request: Request) -> Response:
    ctx = context(request)
    item = await run(shippers.get, ctx, _shipper_id_from_query(request))
    return json_response(shipper_json(item, ctx.zone))


@router.put("/shipper")
async def modify_shipper(request: Request) -> Response:
    ctx = context(request)
    body = await read_json(request, MODIFY_FIELDS)
    shipper_id = body.get("shipper_id", str, required=True)
    effective = body.get("effective", bool)
    await run(shippers.modify, ctx, shipper_id, "legacy", _config_changes(body), effective)
    return empty_response()


@router.delete("/shipper")
async def delete_shipper(request: Request) -> Response:
    await run(shippers.delete_shipper, context(request), _shipper_id_from_query(request))
    return empty_response()


@router.get("/shippers")
async def list_shippers(request: Request) -> Response:
    ctx = context(request)
    fields = query(request, {"topic_id", "offset", "count"})
    topic_id = fields.get("topic_id")
    if not topic_id:
        raise missing("topic_id")
    offset = query_int(fields, "offset", 0, 0, 1 << 31)
    count = query_int(fields, "count", 50, 1, 1000)
    items = await run(shippers.list_for_topic, ctx, str(topic_id), offset, count)
    return json_response({"shippers": [shipper_json(i, ctx.zone) for i in items]})


def _time_param(fields: Fields, name: str, zone: Any) -> int:
    text = fields.get(name)
    if not text:
        raise missing(name)
    try:
        return parse_legacy(str(text), zone)
    except ValueError:
        raise invalid(f"{name} must be YYYY-MM-DD HH:MM:SS, got {text!r}") from None


@router.get("/tasks")
async def list_tasks(request: Request) -> Response:
    ctx = context(request)
    fields = query(request, {"shipper_id", "start_time", "end_time"})
    shipper_id = fields.get("shipper_id")
    if not shipper_id:
        raise missing("shipper_id")
    start = _time_param(fields, "start_time", ctx.zone)
    # The end bound is inclusive to the second: 23:59:59 covers 23:59:59.999.
    end = _time_param(fields, "end_time", ctx.zone) + 999
    found = await run(tasks.list_tasks, ctx, str(shipper_id), start, end)
    return json_response({"tasks": [task_json(t, ctx.zone) for t in found]})


@router.get("/task")
async def get_task(request: Request) -> Response:
    ctx = context(request)
    fields = query(request, {"shipper_id", "task_id"})
    for name in ("shipper_id", "task_id"):
        if not fields.get(name):
            raise missing(name)
    task = await run(tasks.get_task, ctx, str(fields.get("shipper_id")),
                     str(fields.get("task_id")))
    return json_response(task_detail_json(task, ctx.zone))


@router.put("/task")
async def retry_task(request: Request) -> Response:
    body = await read_json(request, {"shipper_id", "task_id", "reload_config"})
    await run(tasks.retry, context(request), body.get("shipper_id", str, required=True),
              body.get("task_id", str, required=True),
              body.get("reload_config", bool, default=False))
    return empty_response()



@router.put("/tasks")
async def retry_failed_tasks(request: Request) -> Response:
    """Extension: retry every failed task of a shipper at once."""
    body = await read_json(request, {"shipper_id", "reload_config"})
    retried = await run(tasks.retry_failed, context(request),
                        body.get("shipper_id", str, required=True),
                        body.get("reload_config", bool, default=False))
    return json_response({"retried": retried})

def audit_json(report: audit.AuditReport, zone: Any) -> dict[str, Any]:
    return {
        "shipper_id": report.shipper_id,
        "start_time": format_legacy(report.start_ms, zone),
        "end_time": format_legacy(report.end_ms, zone),
        "clean": report.clean,
        "windows": report.windows,
        "shipped_windows": report.shipped_windows,
        "objects": report.objects,
        "records": report.records,
        "bytes_out": report.bytes_out,
        "findings": [{"kind": f.kind, "range_start": format_legacy(f.range_start_ms, zone),
                      "range_end": format_legacy(f.range_end_ms, zone), "task_id": f.task_id,
                      "key": f.key, "detail": f.detail} for f in report.findings],
    }


@router.get("/audit")
async def audit_shipper(request: Request) -> Response:
    """Extension: the ledger checked against the bucket for windows starting in the range."""
    ctx = context(request)
    fields = query(request, {"shipper_id", "start_time", "end_time"})
    shipper_id = fields.get("shipper_id")
    if not shipper_id:
        raise missing("shipper_id")
    start = _time_param(fields, "start_time", ctx.zone)
    end = _time_param(fields, "end_time", ctx.zone) + 999
    report = await run(lambda: audit.audit(ctx, ctx.sink(), str(shipper_id), start, end))
    return json_response(audit_json(report, ctx.zone))
