"""Legacy log upload and read-back: `POST /structuredlog`, `GET /cursor`, `GET /log`
(spec §5.3, §5.5)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api.http import client_ip, context, json_response, read_body, run
from cls_shipper.api.legacy.requests import query, query_int
from cls_shipper.service import logs

_EMPTY = b""


async def structuredlog(request: Request) -> Response:
    ctx = context(request)
    body = await read_body(request, ctx.settings.max_upload_bytes)
    headers = request.headers
    await logs.upload(ctx, request.query_params.get("topic_id"), body,
                      headers.get("content-type"), headers.get("x-cls-compress-type"),
                      client_ip(request), headers.get("x-cls-hashkey"))
    return Response(_EMPTY, status_code=200)


async def get_cursor(request: Request) -> Response:
    ctx = context(request)
    params = query(request, {"topic_id", "start"})
    cursor = await run(logs.cursor_at, ctx, params.get("topic_id"), params.get("start"))
    return json_response({"cursor": cursor})


async def get_log(request: Request) -> Response:
    ctx = context(request)
    params = query(request, {"topic_id", "cursor", "count"})
    count = query_int(params, "count", logs.MAX_READ_COUNT, 1, logs.MAX_READ_COUNT)
    batch = await run(logs.get_logs, ctx, params.get("topic_id"), params.get("cursor"), count)
    return Response(batch.body, media_type="application/x-protobuf",
                    headers={"x-cls-cursor": batch.next_cursor, "x-cls-count": str(batch.count)})
