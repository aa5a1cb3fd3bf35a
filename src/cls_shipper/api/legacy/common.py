"""Request parsing and response rendering for the legacy API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cls_shipper.auth import qsign
from cls_shipper.errors import ErrorKind, Kinds, ServiceError, invalid, missing
from cls_shipper.inputs import ascii_int, check_json, check_text
from cls_shipper.service import Context
from cls_shipper.timefmt import now_ms

T = TypeVar("T")


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


def error_response(kind: ErrorKind, message: str) -> Response:
    body = orjson.dumps({"errorcode": kind.legacy_code, "errormessage": message})
    return Response(body, status_code=kind.status, media_type="application/json")


def json_response(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def empty_response() -> Response:
    return Response(b"", status_code=200)


async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (blocking, database-bound) service call off the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


def verify_request(request: Request) -> str:
    """Verify the q-sign Authorization of a legacy request; returns the SecretId. Runs on the
    event loop: key lookups are cached (KeyCache), so it touches the database at most once
    per key every few seconds, and a thread hop would cost more than the check."""
    ctx = context(request)
    if "x-cls-token" in request.headers:
        raise ServiceError(Kinds.TOKEN_FAILURE,
                           "temporary credentials (X-Cls-Token) are not supported; "
                           "sign with a permanent key from `cls-shipper keys create`")
    return qsign.verify(
        request.headers.get("authorization"),
        request.method,
        request.scope["path"],  # request.url would build the whole URL just for its path
        request.query_params.multi_items(),
        request.headers,
        ctx.keys.lookup,
        now_ms() // 1000,
        ctx.settings.clock_skew,
    )


async def authenticate(request: Request) -> str:
    """The FastAPI dependency form of `verify_request`."""
    return verify_request(request)


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


class Fields:
    """A JSON object from a request, read field by field with typed errors. Unknown fields
    are refused, so a misspelt option never passes silently."""

    def __init__(self, data: Any, allowed: set[str], where: str = "body") -> None:
        if not isinstance(data, dict):
            raise invalid(f"the {where} must be a JSON object")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise invalid(f"unknown field(s) in the {where}: {', '.join(unknown)}")
        self.data = data
        self.where = where

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def get(self, name: str, kind: type | tuple[type, ...] | None = None,
            default: Any = None, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                raise missing(name)
            return default
        value = self.data[name]
        if kind is not None:
            kinds = kind if isinstance(kind, tuple) else (kind,)
            bad_bool = isinstance(value, bool) and bool not in kinds
            if bad_bool or not isinstance(value, kinds):
                names = " or ".join(k.__name__ for k in kinds)
                raise invalid(f"{name} must be of type {names}")
        return value


async def read_json(request: Request, allowed: set[str]) -> Fields:
    ctx = context(request)
    content_type = request.headers.get("content-type")
    if content_type is None:
        raise ServiceError(Kinds.MISSING_CONTENT_TYPE, "Content-Type is missing: send the body "
                                                        "as application/json")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ServiceError(Kinds.INVALID_CONTENT_TYPE,
                           f"Content-Type {content_type[:100]!r} is not supported here: send "
                           "application/json")
    raw = await read_body(request, ctx.settings.max_body_bytes)
    if not raw.strip():
        raise ServiceError(Kinds.MISSING_CONTENT, "the request body is empty")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(Kinds.INVALID_CONTENT, f"the body is not valid JSON: {exc}") from None
    check_json(data, "the body")
    return Fields(data, allowed)


def query(request: Request, allowed: set[str]) -> Fields:
    items = request.query_params.multi_items()
    params = dict(items)
    if len(params) != len(items):
        raise invalid("a query parameter is given twice")
    for name, value in items:
        check_text(value, name)
    return Fields(params, allowed, where="query string")


def query_int(fields: Fields, name: str, default: int, low: int, high: int) -> int:
    text = fields.get(name)
    if text is None or text == "":
        return default
    return ascii_int(str(text), name, low, high)
