"""The legacy surface's routes, in one table. Every route is a plain Starlette route (upload
is the hot path, and a framework's dependency and parameter machinery costs more than the rest
of a small upload's handling), and every one is signed: the q-sign check is the one step
that stands before each handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cls_shipper.api.http import context, secret_for
from cls_shipper.api.legacy import consume, control, logs, shipping
from cls_shipper.auth import qsign
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.timefmt import now_ms

Handler = Callable[[Request], Awaitable[Response]]

# Upload first: routes are matched in order.
TABLE: list[tuple[str, str, Handler]] = [
    ("POST", "/structuredlog", logs.structuredlog),
    ("GET", "/cursor", logs.get_cursor),
    ("GET", "/log", logs.get_log),
    ("POST", "/pull_log", consume.pull_log),
    ("POST", "/logset", control.create_logset),
    ("GET", "/logset", control.get_logset),
    ("GET", "/logsets", control.list_logsets),
    ("PUT", "/logset", control.modify_logset),
    ("DELETE", "/logset", control.delete_logset),
    ("POST", "/topic", control.create_topic),
    ("GET", "/topic", control.get_topic),
    ("GET", "/topics", control.list_topics),
    ("PUT", "/topic", control.modify_topic),
    ("DELETE", "/topic", control.delete_topic),
    ("POST", "/shipper", shipping.create_shipper),
    ("GET", "/shipper", shipping.get_shipper),
    ("PUT", "/shipper", shipping.modify_shipper),
    ("DELETE", "/shipper", shipping.delete_shipper),
    ("GET", "/shippers", shipping.list_shippers),
    ("GET", "/tasks", shipping.list_tasks),
    ("GET", "/task", shipping.get_task),
    ("PUT", "/task", shipping.retry_task),
    ("PUT", "/tasks", shipping.retry_failed_tasks),
    ("GET", "/audit", shipping.audit_shipper),
]


async def verify_request(request: Request) -> str:
    """Verify the q-sign Authorization of a legacy request; returns the SecretId. Runs on the
    event loop (a thread hop per upload would cost more than the check) as long as the key is
    cached (KeyCache, either way: known or unknown); only a miss waits for the database, in
    a worker thread (`secret_for`)."""
    ctx = context(request)
    if "x-cls-token" in request.headers:
        raise ServiceError(Kinds.TOKEN_FAILURE,
                           "temporary credentials (X-Cls-Token) are not supported; "
                           "sign with a permanent key from `cls-shipper keys create`")
    auth = qsign.parse_authorization(request.headers.get("authorization"))
    return qsign.check(
        auth,
        await secret_for(ctx, auth.secret_id),
        request.method,
        request.scope["path"],  # request.url would build the whole URL just for its path
        request.query_params.multi_items(),
        request.headers,
        now_ms() // 1000,
        ctx.settings.clock_skew,
        ctx.settings.max_signature_seconds,
    )


def signed(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        await verify_request(request)
        return await handler(request)

    return endpoint


ROUTES = [Route(path, signed(handler), methods=[method]) for method, path, handler in TABLE]
