"""HTTP metrics: requests and their latency by API surface, route template and status.

The route is the template a request matched, never its path: `GET /task` (legacy), the
action of an API 3.0 request when it is one of the action table (`_unknown` otherwise), the
operations endpoints (`ops`), `_unmatched` for a request no route took. Every label is from
a fixed set, so a client cannot mint series."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from prometheus_client.metrics import Counter, Histogram
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cls_shipper.api.v3.actions import ACTIONS
from cls_shipper.metrics import Metrics

log = logging.getLogger("cls_shipper.api")

UNMATCHED = ("_unmatched", "_unmatched")
V3 = "v3"


def route_names(surfaces: Iterable[tuple[str, Sequence[BaseRoute]]]) -> dict[int, tuple[str, str]]:
    """The id of each route's endpoint -> (surface, route template), through mounts. By id:
    Starlette's routers compare by value and cannot be hashed; the routes keep every
    endpoint alive as long as the application."""
    names: dict[int, tuple[str, str]] = {}

    def add(surface: str, routes: Sequence[BaseRoute], prefix: str) -> None:
        for route in routes:
            if isinstance(route, Route):
                methods = ",".join(sorted((route.methods or set()) - {"HEAD"}))
                names.setdefault(id(route.endpoint),
                                 (surface, f"{methods} {prefix}{route.path}"))
            elif isinstance(route, Mount):
                if route.routes:
                    add(surface, route.routes, prefix + route.path)
                    # A path under the mount that none of its routes takes.
                    names.setdefault(id(route.app), (surface, "_unmatched"))
                else:  # an app mounted whole (static files): one template for all of it
                    names.setdefault(id(route.app), (surface, f"{prefix}{route.path}/*"))

    for surface, routes in surfaces:
        add(surface, routes, "")
    return names


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics,
                 surfaces: Sequence[tuple[str, Sequence[BaseRoute]]]) -> None:
        self.app = app
        self.metrics = metrics
        self.names = route_names(surfaces)
        # The label children of every (surface, route, status) seen: a request costs two
        # dictionary lookups, not two `labels()` calls. Bounded by the fixed label sets.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what a client sees if the app raises before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            try:
                self._observe(scope, status, time.perf_counter() - started)
            except Exception:  # counting must never fail a request that was answered
                log.exception("could not count %s %s", scope.get("method"), scope.get("path"))

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        surface, route = self.names.get(id(scope.get("endpoint")), UNMATCHED)
        if surface == V3:
            action = _header(scope, b"x-tc-action")
            route = action if action in ACTIONS else "_unknown"
        key = (surface, route, status)
        children = self._children.get(key)
        if children is None:
            labels = (surface, route, str(status))
            children = (self.metrics.http_requests.labels(*labels),
                        self.metrics.http_seconds.labels(*labels))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1").strip())
    return ""
