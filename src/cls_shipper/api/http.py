"""HTTP plumbing both API surfaces use: the service context of a request, bodies read with a
size limit, a time limit and a shared memory budget, JSON responses, the application's own
error form, and running blocking service calls (key lookups included) off the event loop."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cls_shipper.errors import ErrorKind, Kinds, ServiceError
from cls_shipper.service import Context

T = TypeVar("T")

# Key lookups that miss the cache run in at most this many worker threads at once: each one
# holds a database connection while it waits, and unknown SecretIds come from anyone who can
# reach the port, so a flood of them must leave the thread pool and the connection pool (10
# connections plus overflow, store/database.py) to the requests of known keys.
LOOKUP_THREADS = 4
_lookups = anyio.CapacityLimiter(LOOKUP_THREADS)


class ClientGone(Exception):
    """The client closed the connection before its request body arrived in full. Nobody is
    left to answer: RequestIdMiddleware logs one quiet line and counts it."""


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


async def secret_for(ctx: Context, secret_id: str) -> str | None:
    """The SecretKey of an enabled key, None for an unknown or disabled one. A cached answer
    (either way) comes straight from memory on the event loop, the common case and the hot
    path's; a miss goes to the database in a worker thread, so a slow database or a flood of
    unknown SecretIds never stalls the loop for everyone else."""
    found, secret = ctx.keys.cached(secret_id)
    if found:
        return secret
    return await anyio.to_thread.run_sync(ctx.keys.lookup, secret_id, limiter=_lookups)


class BodyBudget:
    """The bytes of request bodies being read at once, across all connections, bounded: a
    body reserves its declared length before a byte of it is read (or, sent without a
    length, its bytes as they come) and gives it back once it is read or refused. Over the
    bound a request is refused at once with the throttling error, which the SDKs retry, so a
    crowd of clients that send a large body slowly and stall cannot hold more than the bound.
    Used from the event loop only, so a plain counter needs no lock."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def reserve(self, size: int) -> None:
        if self.held + size > self.limit:
            raise ServiceError(Kinds.SPEED_QUOTA_EXCEED,
                               f"the server is reading {self.held} bytes of request bodies "
                               f"(MAX_BODY_BUFFER_BYTES {self.limit}); retry shortly")
        self.held += size

    def release(self, size: int) -> None:
        self.held -= size


def body_budget(request: Request) -> BodyBudget:
    """The application's budget (made on first use, from the settings)."""
    state = request.app.state
    budget: BodyBudget | None = getattr(state, "body_budget", None)
    if budget is None:
        budget = state.body_budget = BodyBudget(context(request).settings.max_body_buffer_bytes)
    return budget


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than `limit` bytes before reading them all, a body
    that takes longer than BODY_TIMEOUT to arrive, one the body budget cannot hold, and one
    whose Content-MD5 (when sent) is not its MD5. A client that leaves mid-body raises
    ClientGone."""
    declared = request.headers.get("content-length", "")
    # The HTTP server has parsed it already (a malformed one never gets here).
    size_declared = int(declared) if declared.isascii() and declared.isdigit() else 0
    if size_declared > limit:
        raise ServiceError(Kinds.BODY_TOO_LARGE, f"request body exceeds {limit} bytes")
    settings = context(request).settings
    budget = body_budget(request)
    # With a declared length the whole of it is reserved up front: refusing then costs
    # nothing read. Without one, each chunk is reserved as it arrives.
    reserved = size_declared
    budget.reserve(reserved)
    chunks: list[bytes] = []
    size = 0
    try:
        with anyio.fail_after(settings.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ServiceError(Kinds.BODY_TOO_LARGE,
                                       f"request body exceeds {limit} bytes")
                if size > reserved:
                    budget.reserve(size - reserved)
                    reserved = size
                chunks.append(chunk)
    except TimeoutError:
        raise ServiceError(Kinds.BODY_TIMEOUT,
                           f"the request body did not arrive within {settings.body_timeout:g} "
                           "seconds (BODY_TIMEOUT)") from None
    except ClientDisconnect:
        raise ClientGone from None
    finally:
        budget.release(reserved)
    body = b"".join(chunks)
    md5 = request.headers.get("content-md5")
    if md5 is not None:
        check_md5(body, md5)
    return body


def check_md5(body: bytes, header: str) -> None:
    """Compare a Content-MD5 with the body. The spec defines it as the body's lowercase hex
    MD5 (the Python SDK's helper makes uppercase hex); RFC 1864's base64 form is accepted
    too. Anything else, or another MD5, is refused: the header is there to say which body
    was meant, and a signed one would otherwise vouch for a body it does not describe."""
    value = header.strip()
    digest = hashlib.md5(body, usedforsecurity=False).digest()
    expected: bytes | None = None
    if len(value) == 32:
        try:
            expected = bytes.fromhex(value)
        except ValueError:
            expected = None
    elif len(value) == 24:
        try:
            expected = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            expected = None
    if expected is None:
        raise ServiceError(Kinds.INVALID_CONTENT,
                           "Content-MD5 must be the body's MD5 in hex (32 digits)")
    if not hmac.compare_digest(expected, digest):
        raise ServiceError(Kinds.INVALID_CONTENT,
                           "the body's MD5 is not the one Content-MD5 states: the body is not "
                           "the one the request was made with")


def parse_json(raw: bytes, kind: ErrorKind) -> Any:
    """The parsed body; `kind` is how the surface reports a body that is not JSON."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(kind, f"the body is not valid JSON: {exc}") from None


def json_response(data: Any, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), media_type="application/json", headers=headers)


def empty_response() -> Response:
    return Response(b"", status_code=200)


def error_body(kind: ErrorKind, message: str) -> bytes:
    """The application's error form (the legacy one): what a request gets when no surface
    took it (unknown path or method) or when something failed unexpectedly."""
    return orjson.dumps({"errorcode": kind.legacy_code, "errormessage": message})


def error_response(kind: ErrorKind, message: str) -> Response:
    return Response(error_body(kind, message), status_code=kind.status,
                    media_type="application/json")
