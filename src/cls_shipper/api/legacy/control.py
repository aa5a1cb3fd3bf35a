"""Legacy logsets and topics (spec §5.1, §5.2)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api.http import context, empty_response, json_response, run
from cls_shipper.api.legacy import bodies
from cls_shipper.api.legacy.requests import given, query, read_json, required
from cls_shipper.service import logsets, topics
from cls_shipper.timefmt import format_legacy


def _logset_json(item: logsets.Logset, zone: tzinfo) -> dict[str, Any]:
    return {"logset_id": item.logset_id, "logset_name": item.logset_name,
            "period": item.period, "create_time": format_legacy(item.created_ms, zone)}


def _topic_json(item: topics.Topic, zone: tzinfo) -> dict[str, Any]:
    return {
        "logset_id": item.logset_id, "topic_id": item.topic_id, "topic_name": item.topic_name,
        "partition_count": item.partition_count, "path": item.path,
        "wild_path": item.wild_path, "collection": item.collection, "index": item.index,
        "log_type": item.log_type, "extract_rule": item.extract_rule, "machine_group": [],
        "create_time": format_legacy(item.created_ms, zone),
    }


def _one_id(request: Request, name: str) -> str:
    return required(query(request, {name}), name)


async def create_logset(request: Request) -> Response:
    body = await read_json(request, bodies.NewLogset)
    new = await run(logsets.create, context(request), body.logset_name, body.period)
    return json_response({"logset_id": new})


async def get_logset(request: Request) -> Response:
    ctx = context(request)
    item = await run(logsets.get, ctx, _one_id(request, "logset_id"))
    return json_response(_logset_json(item, ctx.zone))


async def list_logsets(request: Request) -> Response:
    ctx = context(request)
    query(request, set())
    items = await run(logsets.list_all, ctx)
    return json_response({"logsets": [_logset_json(i, ctx.zone) for i in items]})


async def modify_logset(request: Request) -> Response:
    body = await read_json(request, bodies.LogsetChanges)
    await run(logsets.modify, context(request), body.logset_id, body.logset_name, body.period)
    return empty_response()


async def delete_logset(request: Request) -> Response:
    await run(logsets.delete_logset, context(request), _one_id(request, "logset_id"))
    return empty_response()


async def create_topic(request: Request) -> Response:
    body = await read_json(request, bodies.NewTopic)
    new = await run(
        topics.create, context(request), body.logset_id, body.topic_name,
        partition_count=body.partition_count, path=body.path, wild_path=body.wild_path,
        log_type=body.log_type, extract_rule=body.extract_rule, collection=body.collection)
    return json_response({"topic_id": new})


async def get_topic(request: Request) -> Response:
    ctx = context(request)
    item = await run(topics.get, ctx, _one_id(request, "topic_id"))
    return json_response(_topic_json(item, ctx.zone))


async def list_topics(request: Request) -> Response:
    ctx = context(request)
    items = await run(topics.list_topics, ctx, _one_id(request, "logset_id"))
    return json_response({"topics": [_topic_json(i, ctx.zone) for i in items]})


async def modify_topic(request: Request) -> Response:
    body = await read_json(request, bodies.TopicChanges)
    changes = {k: v for k, v in given(body).items() if k != "topic_id"}
    await run(topics.modify, context(request), body.topic_id, **changes)
    return empty_response()


async def delete_topic(request: Request) -> Response:
    await run(topics.delete_topic, context(request), _one_id(request, "topic_id"))
    return empty_response()
