"""Legacy log upload and read-back: `POST /structuredlog`, `GET /cursor`, `GET /log`
(spec §5.3, §5.5).

These are plain Starlette routes (added to an APIRouter, so the app includes them like the
others): upload is the hot path, and FastAPI's dependency and parameter machinery costs more
than the rest of a small upload's handling.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api.legacy.common import (
    authenticate,
    context,
    json_response,
    query,
    query_int,
    read_body,
    run,
    verify_request,
)
from cls_shipper.service import logs

router = APIRouter()

_EMPTY = b""


async def structuredlog(request: Request) -> Response:
    ctx = context(request)
    verify_request(request)
    body = await read_body(request, ctx.settings.max_upload_bytes)
    headers = request.headers
    await logs.upload(ctx, request.query_params.get("topic_id"), body,
                        headers.get("content-type"), headers.get("x-cls-compress-type"),
                        request.client.host if request.client else "")
    return Response(_EMPTY, status_code=200)


async def get_cursor(request: Request) -> Response:
    await authenticate(request)
    ctx = context(request)
    fields = query(request, {"topic_id", "start"})
    cursor = await run(logs.cursor_at, ctx, fields.get("topic_id"), fields.get("start"))
    return json_response({"cursor": cursor})


async def get_log(request: Request) -> Response:
    await authenticate(request)
    ctx = context(request)
    fields = query(request, {"topic_id", "cursor", "count"})
    count = query_int(fields, "count", logs.MAX_READ_COUNT, 1, logs.MAX_READ_COUNT)
    batch = await run(logs.get_logs, ctx, fields.get("topic_id"), fields.get("cursor"), count)
    return Response(batch.body, media_type="application/x-protobuf",
                    headers={"x-cls-cursor": batch.next_cursor, "x-cls-count": str(batch.count)})


router.add_route("/structuredlog", structuredlog, methods=["POST"])
router.add_route("/cursor", get_cursor, methods=["GET"])
router.add_route("/log", get_log, methods=["GET"])
