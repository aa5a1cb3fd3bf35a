"""HTTP plumbing both API surfaces use: the service context of a request, bodies read with a
size limit, JSON responses, the application's own error form, and running blocking service
calls off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.errors import ErrorKind, Kinds, ServiceError
from cls_shipper.service import Context

T = TypeVar("T")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def request_id(request: Request) -> str:
    """The id RequestIdMiddleware gave the request."""
    return str(request.scope["state"]["request_id"])


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking, database-bound) service call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(Kinds.BODY_TOO_LARGE, f"request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(Kinds.BODY_TOO_LARGE, f"request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes, kind: ErrorKind) -> Any:
    """The parsed body; `kind` is how the surface reports a body that is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(kind, f"the body is not valid JSON: {exc}") from None


def json_response(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def empty_response() -> Response:
    return Response(b"", status_code=200)


def error_body(kind: ErrorKind, message: str) -> bytes:
    """The application's error form (the legacy one): what a request gets when no surface
    took it (unknown path or method) or when something failed unexpectedly."""
    return orjson.dumps({"errorcode": kind.legacy_code, "errormessage": message})


def error_response(kind: ErrorKind, message: str) -> Response:
    return Response(error_body(kind, message), status_code=kind.status,
                    media_type="application/json")
