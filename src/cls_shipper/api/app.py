"""The ASGI application: both API surfaces over one service context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from cls_shipper.api import legacy, v3
from cls_shipper.api.console import CONSOLE_ROUTES
from cls_shipper.api.http import error_response
from cls_shipper.api.middleware import RequestIdMiddleware
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service import Context
from cls_shipper.settings import Settings
from cls_shipper.store import open_database


async def _service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc.kind, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    """No route took the request: an unknown path or a method a path does not have."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(Kinds.NOT_SUPPORTED,
                              f"{request.method} is not supported on {request.url.path}")
    if exc.status_code == 404:
        return error_response(Kinds.ROUTE_NOT_FOUND,
                              f"no such API: {request.method} {request.url.path}")
    return error_response(Kinds.INVALID_PARAM, str(exc.detail))


def create_app(settings: Settings, ctx: Context | None = None) -> Starlette:
    """The application. With `ctx` None the database is opened (and migrated) on start-up."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = app.state.ctx is None
        if own:
            app.state.ctx = Context(open_database(settings.db_url), settings)
        try:
            yield
        finally:
            if own:
                app.state.ctx.db.dispose()

    app = Starlette(
        # legacy first: it holds upload, the hot path; the console last
        routes=[*legacy.ROUTES, *v3.ROUTES, *CONSOLE_ROUTES],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    # No slash redirects: an unknown path is a 404 in the API's format, never a 307 whose
    # Location echoes the client's Host header.
    app.router.redirect_slashes = False
    app.state.ctx = ctx
    # Unexpected errors are answered by RequestIdMiddleware, so their 500 carries the id.
    return app
