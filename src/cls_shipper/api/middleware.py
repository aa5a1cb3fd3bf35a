"""ASGI middleware shared by both surfaces."""

from __future__ import annotations

import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cls_shipper.api.http import error_body
from cls_shipper.errors import Kinds

log = logging.getLogger("cls_shipper.api")


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

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
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
