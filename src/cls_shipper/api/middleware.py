"""ASGI middleware shared by both surfaces."""

from __future__ import annotations

import logging
import uuid

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cls_shipper.api.http import ClientGone, error_body
from cls_shipper.errors import Kinds

log = logging.getLogger("cls_shipper.api")


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
    `x-cls-requestid` header, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        # uvicorn lowercases header names on the wire, whatever case is given here; the
        # official SDK looks up "X-Cls-Requestid" case-sensitively on errors (README: known
        # differences), so its LogException.get_request_id() is empty there.
        header = (b"x-cls-requestid", request_id.encode())

        started = False
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
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
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
            await send({"type": "http.response.start", "status": Kinds.INTERNAL.status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()), header]})
            await send({"type": "http.response.body", "body": body})


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
