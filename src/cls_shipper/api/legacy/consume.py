"""Legacy consumption: `POST /pull_log` (the SDK's `LogClient.pull_logs`). The rules are in
`service/pull.py`; this parses the body and sets the headers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api.http import context, run
from cls_shipper.api.legacy import bodies
from cls_shipper.api.legacy.requests import query, read_json
from cls_shipper.service import pull


async def pull_log(request: Request) -> Response:
    ctx = context(request)
    params = query(request, {"topic_id"})
    body = await read_json(request, bodies.PullLog)
    q = pull.PullQuery(body.PartitionId, body.StartOffset, body.StartTime, body.Size,
                       body.CompressType, body.EndTime, body.Query)
    done = await run(pull.pull, ctx, params.get("topic_id"), q)
    media = "application/json" if done.compress_type == "none" else "application/octet-stream"
    return Response(done.body, media_type=media, headers={
        "x-cls-compress-type": done.compress_type,
        "x-cls-body-raw-size": str(done.raw_size),
        "x-cls-count": str(done.count),
        "x-cls-next-offset": str(done.next_offset),
    })
