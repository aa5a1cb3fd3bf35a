"""The ASGI application: both API surfaces over one service context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from cls_shipper.api import v3
from cls_shipper.api.legacy import control, logs, shipping
from cls_shipper.api.legacy.common import error_response
from cls_shipper.api.middleware import RequestIdMiddleware
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service import Context
from cls_shipper.settings import Settings
from cls_shipper.store import open_database


def create_app(settings: Settings, ctx: Context | None = None) -> FastAPI:
    """The application. With `ctx` None the database is opened (and migrated) on start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.ctx is None
        if own:
            app.state.ctx = Context(open_database(settings.db_url), settings)
        try:
            yield
        finally:
            if own:
                app.state.ctx.db.dispose()

    # No slash redirects: an unknown path is a 404 in the API's format, never a 307 whose
    # Location echoes the client's Host header.
    app = FastAPI(title="cls-shipper", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, redirect_slashes=False)
    app.state.ctx = ctx
    app.add_middleware(RequestIdMiddleware)
    # First: upload is the hot path and routes are matched in order.
    app.include_router(logs.router)  # /structuredlog, /cursor, /log (plain Starlette routes)
    app.include_router(control.router)
    app.include_router(shipping.router)
    app.include_router(v3.router)  # POST / (and GET /): API 3.0

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> Response:
        return error_response(exc.kind, exc.message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> Response:
        return error_response(Kinds.INVALID_PARAM, f"invalid request: {exc.errors()[:3]}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return error_response(Kinds.NOT_SUPPORTED,
                                  f"{request.method} is not supported on {request.url.path}")
        if exc.status_code == 404:
            return error_response(Kinds.ROUTE_NOT_FOUND,
                                  f"no such API: {request.method} {request.url.path}")
        return error_response(Kinds.INVALID_PARAM, str(exc.detail))

    # Unexpected errors are answered by RequestIdMiddleware, so their 500 carries the id.

    return app
