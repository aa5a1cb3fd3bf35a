"""Legacy logsets and topics (spec §5.1, §5.2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from cls_shipper.api.legacy.common import (
    authenticate,
    context,
    empty_response,
    json_response,
    query,
    read_json,
    run,
)
from cls_shipper.errors import missing
from cls_shipper.service import logsets, topics
from cls_shipper.timefmt import format_legacy

router = APIRouter(dependencies=[Depends(authenticate)])


def _logset_json(item: logsets.Logset, zone: Any) -> dict[str, Any]:
    return {"logset_id": item.logset_id, "logset_name": item.logset_name,
            "period": item.period, "create_time": format_legacy(item.created_ms, zone)}


def _topic_json(item: topics.Topic, zone: Any) -> dict[str, Any]:
    return {
        "logset_id": item.logset_id, "topic_id": item.topic_id, "topic_name": item.topic_name,
        "partition_count": item.partition_count, "path": item.path,
        "wild_path": item.wild_path, "collection": item.collection, "index": item.index,
        "log_type": item.log_type, "extract_rule": item.extract_rule, "machine_group": [],
        "create_time": format_legacy(item.created_ms, zone),
    }


def _required_query(request: Request, name: str) -> str:
    fields = query(request, {name})
    value = fields.get(name)
    if not value:
        raise missing(name)
    return str(value)


@router.post("/logset")
async def create_logset(request: Request) -> Response:
    body = await read_json(request, {"logset_name", "period"})
    new = await run(logsets.create, context(request), body.get("logset_name", required=True),
                    body.get("period", required=True))
    return json_response({"logset_id": new})


@router.get("/logset")
async def get_logset(request: Request) -> Response:
    ctx = context(request)
    item = await run(logsets.get, ctx, _required_query(request, "logset_id"))
    return json_response(_logset_json(item, ctx.zone))


@router.get("/logsets")
async def list_logsets(request: Request) -> Response:
    ctx = context(request)
    query(request, set())
    items = await run(logsets.list_all, ctx)
    return json_response({"logsets": [_logset_json(i, ctx.zone) for i in items]})


@router.put("/logset")
async def modify_logset(request: Request) -> Response:
    body = await read_json(request, {"logset_id", "logset_name", "period"})
    await run(logsets.modify, context(request), body.get("logset_id", str, required=True),
              body.get("logset_name"), body.get("period"))
    return empty_response()


@router.delete("/logset")
async def delete_logset(request: Request) -> Response:
    await run(logsets.delete_logset, context(request), _required_query(request, "logset_id"))
    return empty_response()


TOPIC_CREATE_FIELDS = {"logset_id", "topic_name", "partition_count", "path", "wild_path",
                       "log_type", "extract_rule", "collection"}


@router.post("/topic")
async def create_topic(request: Request) -> Response:
    body = await read_json(request, TOPIC_CREATE_FIELDS)
    new = await run(
        topics.create, context(request), body.get("logset_id", str, required=True),
        body.get("topic_name", required=True),
        partition_count=body.get("partition_count", default=1),
        path=body.get("path", default=""), wild_path=body.get("wild_path", default=""),
        log_type=body.get("log_type", default="minimalist_log"),
        extract_rule=body.get("extract_rule"), collection=body.get("collection", default=True))
    return json_response({"topic_id": new})


@router.get("/topic")
async def get_topic(request: Request) -> Response:
    ctx = context(request)
    item = await run(topics.get, ctx, _required_query(request, "topic_id"))
    return json_response(_topic_json(item, ctx.zone))


@router.get("/topics")
async def list_topics(request: Request) -> Response:
    ctx = context(request)
    items = await run(topics.list_topics, ctx, _required_query(request, "logset_id"))
    return json_response({"topics": [_topic_json(i, ctx.zone) for i in items]})


@router.put("/topic")
async def modify_topic(request: Request) -> Response:
    body = await read_json(request, {"topic_id", "topic_name", "path", "wild_path", "collection",
                                     "log_type", "extract_rule"})
    changes = {k: v for k, v in body.data.items() if k != "topic_id"}
    await run(topics.modify, context(request), body.get("topic_id", str, required=True),
              **changes)
    return empty_response()


@router.delete("/topic")
async def delete_topic(request: Request) -> Response:
    await run(topics.delete_topic, context(request), _required_query(request, "topic_id"))
    return empty_response()
