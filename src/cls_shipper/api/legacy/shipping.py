"""Legacy shippers and the task ledger (spec §4)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api.http import context, empty_response, json_response, run
from cls_shipper.api.legacy import bodies
from cls_shipper.api.legacy.fields import COUNTED_TASK, SHIPPER, TASK, TASK_DETAIL
from cls_shipper.api.legacy.requests import (
    given,
    query,
    query_bool,
    query_int,
    read_json,
    required,
)
from cls_shipper.api.task_view import RenderedTasks
from cls_shipper.errors import invalid
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service import audit, shippers, tasks
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.timefmt import format_legacy, parse_legacy

_LISTED = RenderedTasks(TASK)
_COUNTED = RenderedTasks(COUNTED_TASK)
# The header of a task listing that has another page: the offset to ask for next.
NEXT_OFFSET = "x-cls-next-offset"


def _config_fields(body: bodies.ShipperFields) -> dict[str, Any]:
    """The ShipperConfig fields a body sets."""
    return SHIPPER.read(given(body), under="config")


async def create_shipper(request: Request) -> Response:
    body = await read_json(request, bodies.NewShipper)
    config = ShipperConfig(**{**defaults("legacy"), **_config_fields(body)})
    new = await run(shippers.create, context(request), config, "legacy")
    return json_response({"shipper_id": new})


async def get_shipper(request: Request) -> Response:
    ctx = context(request)
    shipper_id = required(query(request, {"shipper_id"}), "shipper_id")
    item = await run(shippers.get, ctx, shipper_id)
    return json_response(SHIPPER.render(item, ctx.zone))


async def modify_shipper(request: Request) -> Response:
    body = await read_json(request, bodies.ShipperChanges)
    await run(shippers.modify, context(request), body.shipper_id, "legacy",
              _config_fields(body), given(body).get("effective"))
    return empty_response()


async def delete_shipper(request: Request) -> Response:
    shipper_id = required(query(request, {"shipper_id"}), "shipper_id")
    await run(shippers.delete_shipper, context(request), shipper_id)
    return empty_response()


async def list_shippers(request: Request) -> Response:
    ctx = context(request)
    params = query(request, {"topic_id", "offset", "count"})
    topic_id = required(params, "topic_id")
    offset = query_int(params, "offset", 0, 0, 1 << 31)
    count = query_int(params, "count", 50, 1, 1000)
    items = await run(shippers.list_for_topic, ctx, topic_id, offset, count)
    return json_response({"shippers": [SHIPPER.render(i, ctx.zone) for i in items]})


def _time_range(params: dict[str, str], zone: tzinfo) -> tuple[str, int, int]:
    """The shipper and the [start_time, end_time] of a query; the end bound is inclusive to
    the second: 23:59:59 covers 23:59:59.999."""
    shipper_id = required(params, "shipper_id")
    start, end = (_time_param(params, name, zone) for name in ("start_time", "end_time"))
    return shipper_id, start, end + 999


def _time_param(params: dict[str, str], name: str, zone: tzinfo) -> int:
    text = required(params, name)
    try:
        return parse_legacy(text, zone)
    except ValueError:
        raise invalid(f"{name} must be YYYY-MM-DD HH:MM:SS, got {text!r}") from None


async def list_tasks(request: Request) -> Response:
    """Extension: `offset` and `limit` page the listing; without them it is the first
    MAX_LISTED tasks, all of three days of a 300-second shipper. `x-cls-next-offset` says
    where the next page starts when there is one. `detail=true` adds each task's counters
    (COUNTED_TASK); without it the answer is the CLS fields only."""
    ctx = context(request)
    params = query(request, {"shipper_id", "start_time", "end_time", "offset", "limit",
                             "detail"})
    shipper_id, start, end = _time_range(params, ctx.zone)
    offset = query_int(params, "offset", 0, 0, tasks.MAX_OFFSET)
    limit = query_int(params, "limit", tasks.MAX_LISTED, 1, tasks.MAX_LISTED)
    listed: orjson.Fragment
    if query_bool(params, "detail"):
        counted = await run(tasks.list_counted_tasks, ctx, shipper_id, start, end,
                            offset=offset, limit=limit)
        listed, next_offset = _COUNTED.array(counted.tasks, ctx.zone), counted.next_offset
    else:
        page = await run(tasks.list_tasks, ctx, shipper_id, start, end, offset=offset,
                         limit=limit)
        listed, next_offset = _LISTED.array(page.tasks, ctx.zone), page.next_offset
    headers = {} if next_offset is None else {NEXT_OFFSET: str(next_offset)}
    return json_response({"tasks": listed}, headers)


async def get_task(request: Request) -> Response:
    ctx = context(request)
    params = query(request, {"shipper_id", "task_id"})
    shipper_id, task_id = required(params, "shipper_id"), required(params, "task_id")
    task = await run(tasks.get_task, ctx, shipper_id, task_id)
    return json_response(TASK_DETAIL.render(task, ctx.zone))


async def retry_task(request: Request) -> Response:
    body = await read_json(request, bodies.TaskRetry)
    await run(tasks.retry, context(request), body.shipper_id, body.task_id, body.reload_config)
    return empty_response()


async def retry_failed_tasks(request: Request) -> Response:
    """Extension: retry every failed task of a shipper at once."""
    body = await read_json(request, bodies.FailedTasksRetry)
    retried = await run(tasks.retry_failed, context(request), body.shipper_id,
                        body.reload_config)
    return json_response({"retried": retried})


def _audit_json(report: audit.AuditReport, zone: tzinfo) -> dict[str, Any]:
    return {
        "shipper_id": report.shipper_id,
        "start_time": format_legacy(report.start_ms, zone),
        "end_time": format_legacy(report.end_ms, zone),
        "clean": report.clean,
        "windows": report.windows,
        "shipped_windows": report.shipped_windows,
        "objects": report.objects,
        "records": report.records,
        "records_rejected": report.records_rejected,
        "bytes_out": report.bytes_out,
        "findings": [{"kind": f.kind, "range_start": format_legacy(f.range_start_ms, zone),
                      "range_end": format_legacy(f.range_end_ms, zone), "task_id": f.task_id,
                      "key": f.key, "detail": f.detail} for f in report.findings],
    }


async def audit_shipper(request: Request) -> Response:
    """Extension: the ledger checked against the bucket for windows starting in the range."""
    ctx = context(request)
    params = query(request, {"shipper_id", "start_time", "end_time"})
    shipper_id, start, end = _time_range(params, ctx.zone)
    report = await run(lambda: audit.audit(ctx, ctx.sink(), shipper_id, start, end))
    return json_response(_audit_json(report, ctx.zone))
