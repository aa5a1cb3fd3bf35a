"""ASGI middleware shared by both surfaces."""

from __future__ import annotations

import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send


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

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
