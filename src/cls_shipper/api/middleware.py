"""ASGI middleware shared by both surfaces."""

from __future__ import annotations

import logging
import time
import uuid

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cls_shipper import logctx
from cls_shipper.api.http import ClientGone, error_body
from cls_shipper.errors import Kinds
from cls_shipper.logformat import ACCESS_LOGGER

log = logging.getLogger("cls_shipper.api")
# On with `--access-log` (configure_logging sets its level): one line per request.
access = logging.getLogger(ACCESS_LOGGER)
# A path or action quoted in an access line is cut here: they are the client's to choose.
_MAX_QUOTED = 200


class Disconnects:
    """Requests whose client left before its body was in, since the start (a plain counter
    until the server exports metrics)."""

    count = 0


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


class RequestIdMiddleware:
    """Gives every request an id (scope["state"]["request_id"]) and every response the
    `x-cls-requestid` header, errors included. Every line logged while a request is served
    carries its id; with the access log on, each request ends with one line of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        with logctx.bound(request_id=request_id):
            await self._serve(scope, receive, send, request_id)

    async def _serve(self, scope: Scope, receive: Receive, send: Send,
                     request_id: str) -> None:
        # uvicorn lowercases header names on the wire, whatever case is given here; the
        # official SDK looks up "X-Cls-Requestid" case-sensitively on errors (README: known
        # differences), so its LogException.get_request_id() is empty there.
        header = (b"x-cls-requestid", request_id.encode())

        started = False
        status: int | None = None
        sent_bytes = 0
        began = time.perf_counter()
        # Set once the app has taken the whole body. A response that goes out before (a
        # request refused on its headers, a body too large or too slow) closes the
        # connection: the rest of the body is never read, and a client that keeps sending
        # or stalls does not keep the connection.
        body_read = not _has_body(scope)

        async def receive_noting_end() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_read = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal started, status, sent_bytes
            if message["type"] == "http.response.body":
                sent_bytes += len(message.get("body", b""))
            elif message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                extra = [header] if body_read else [header, (b"connection", b"close")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive_noting_end if not body_read else receive,
                           send_with_id)
        except (ClientGone, ClientDisconnect):
            # Anyone can open a connection and drop it mid-body: one quiet line each, never a
            # traceback, so that cannot flood the log.
            Disconnects.count += 1
            log.info("client %s left before sending its whole body (%s %s)",
                     _client(scope), scope.get("method"), scope.get("path"))
        except Exception:
            # An unexpected error: answered here rather than by Starlette's outermost handler,
            # so the 500 carries the request id too. No trace reaches the client.
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            body = error_body(Kinds.INTERNAL, "internal error; see the server log with "
                                              f"request id {request_id}")
            status, sent_bytes = Kinds.INTERNAL.status, len(body)
            await send({"type": "http.response.start", "status": Kinds.INTERNAL.status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), header]})
            await send({"type": "http.response.body", "body": body})
        finally:
            if access.isEnabledFor(logging.INFO):
                _access_line(scope, status, sent_bytes, time.perf_counter() - began)


def _access_line(scope: Scope, status: int | None, sent_bytes: int, seconds: float) -> None:
    """Method, route template (the path when no route matched; never the query string, which
    can hold a signature), status, duration, bytes sent and client. The request id comes
    from the context, like every other line's. No header is quoted: Authorization is one."""
    route = scope.get("route")
    path = getattr(route, "path", None) or str(scope.get("path", ""))[:_MAX_QUOTED]
    fields: dict[str, object] = {
        "method": str(scope.get("method", ""))[:16], "route": path, "status": status,
        "duration_ms": round(seconds * 1000, 3), "bytes": sent_bytes, "client": _client(scope)}
    action = _header(scope, b"x-tc-action")
    if action:
        fields["action"] = action[:_MAX_QUOTED]
    access.info("%s %s%s %s %d B %.1f ms from %s", fields["method"], path,
                f" ({fields['action']})" if action else "", status or "-", sent_bytes,
                seconds * 1000, fields["client"], extra={"access": fields})


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
