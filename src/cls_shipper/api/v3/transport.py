"""The API 3.0 transport (spec §7.1): `POST /` (or `GET /` with the parameters in the query
string, which the SDK sends when `HttpProfile(reqMethod="GET")`), the action in `X-TC-Action`,
TC3-HMAC-SHA256 signatures, and `{"Response": {...}}` envelopes.

Every answer is HTTP 200, errors included, as the real service does: the SDK reads `Error`
from the body and treats any other status as a network failure. Nothing raised in here
reaches the application's (legacy-shaped) exception handlers.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cls_shipper.api.http import (
    ClientGone,
    client_ip,
    context,
    parse_json,
    read_body,
    request_id,
    run,
    secret_for,
)
from cls_shipper.api.v3 import params
from cls_shipper.api.v3.actions import ACTIONS, Action, Call
from cls_shipper.api.v3.consumer_groups import CONSUMER_ACTIONS
from cls_shipper.auth import tc3
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.inputs import check_json
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.api.v3")

VERSION = "2020-10-16"
# Bodies above this have their hash checked in a worker thread (as uploads are decoded).
OFFLOAD_BYTES = 256 * 1024

def _render(body: dict[str, Any]) -> Response:
    # Exactly "application/json": the SDK only looks for an Error in that content type.
    return Response(orjson.dumps({"Response": body}), status_code=200,
                    media_type="application/json")


def error_body(code: str, message: str, rid: str) -> dict[str, Any]:
    return {"Error": {"Code": code, "Message": message}, "RequestId": rid}


async def api3(request: Request) -> Response:
    rid = request_id(request)
    try:
        result = await _handle(request)
    except ServiceError as exc:
        return _render(error_body(exc.kind.v3_code, exc.message, rid))
    except ClientGone:
        raise  # nobody to answer: RequestIdMiddleware notes it quietly
    except Exception:  # a client never sees a stack trace, only the RequestId to look it up
        log.exception("unhandled error in %s (RequestId %s)",
                      request.headers.get("x-tc-action"), rid)
        return _render(error_body("InternalError",
                                  f"internal error; see the server log for {rid}", rid))
    return _render({**result, "RequestId": rid})


async def _handle(request: Request) -> dict[str, Any]:
    ctx = context(request)
    headers = request.headers
    if "x-tc-token" in headers or "x-cls-token" in headers:
        raise ServiceError(Kinds.TOKEN_FAILURE,
                           "temporary credentials (X-TC-Token) are not supported; sign with "
                           "a permanent key from `cls-shipper keys create`")
    # Everything the headers can settle comes before a byte of the body is read, so a
    # client without a valid key, or a wrong timestamp or action, costs no body memory:
    # the Authorization's form, the timestamp window, the key (known and enabled), the
    # action and its size limit (only uploads may be large). TC3 signs the body's hash, so
    # the signature itself can only be checked once the body is in.
    auth, timestamp = tc3.precheck(headers.get("authorization"), headers, now_ms() // 1000,
                                   ctx.settings.clock_skew)
    secret_key = await secret_for(ctx, auth.secret_id)
    if secret_key is None:
        raise tc3.unknown_key(auth.secret_id)
    name = headers.get("x-tc-action", "").strip()
    version = headers.get("x-tc-version", "").strip()
    if not name:
        raise ServiceError(Kinds.MISSING_PARAM, "the X-TC-Action header is missing")
    if not version:
        raise ServiceError(Kinds.MISSING_PARAM, "the X-TC-Version header is missing")
    if version != VERSION:
        raise ServiceError(Kinds.NO_SUCH_VERSION,
                           f"version {version!r} of service cls does not exist; use {VERSION}")
    action = ACTIONS.get(name) or CONSUMER_ACTIONS.get(name)
    if action is None:
        raise ServiceError(Kinds.ROUTE_NOT_FOUND, f"the action {name!r} does not exist")
    limit = ctx.settings.max_upload_bytes if action.from_headers else ctx.settings.max_body_bytes
    body = await read_body(request, limit)
    query = request.scope.get("query_string", b"").decode("latin-1")
    # Hashing a large body would hold the event loop; a small one is cheaper in place.
    if len(body) > OFFLOAD_BYTES:
        await run(tc3.check_signature, auth, timestamp, secret_key, request.method,
                  request.url.path, query, headers, body)
    else:
        tc3.check_signature(auth, timestamp, secret_key, request.method, request.url.path,
                            query, headers, body)
    raw = _raw_params(request, action, body)
    check_json(raw, "the parameters")
    # JSON bodies carry real types: no coercion ("6" or true for an Integer). Header and
    # query-string parameters are text by nature, so those are converted.
    strict = request.method == "POST" and not action.from_headers
    parsed = params.parse(action.model, raw, strict=strict)
    call = Call(ctx, body, client_ip(request))
    if action.on_loop:
        result: dict[str, Any] = await action.handler(call, parsed)
        return result
    done: dict[str, Any] = await run(action.handler, call, parsed)
    return done


def _raw_params(request: Request, action: Action, body: bytes) -> Any:
    if action.from_headers:
        if request.method != "POST":
            raise ServiceError(Kinds.UNSUPPORTED_PROTOCOL, "this action must be sent with POST")
        # X-CLS-TopicId etc.; header names are case-insensitive, parameter names are not.
        names = {f.lower(): f for f in action.model.model_fields}
        return {names[key[6:]]: value for key, value in request.headers.items()
                if key.startswith("x-cls-") and key[6:] in names}
    if request.method == "GET":
        return params.unflatten(request.query_params.multi_items())
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ServiceError(Kinds.WRONG_TYPE, "the body must be JSON (Content-Type: "
                           "application/json); form-encoded HmacSHA1/HmacSHA256 requests are "
                           "not supported, sign with TC3-HMAC-SHA256")
    if not body.strip():
        return {}
    return parse_json(body, Kinds.WRONG_TYPE)


ROUTES = [Route("/", api3, methods=["GET", "POST"])]
