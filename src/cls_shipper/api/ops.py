"""The operations endpoints: `GET /healthz` (the process answers), `GET /readyz` (the node
can do its job: 200, else 503 with the reasons), `GET /metrics` (Prometheus). Unsigned, and
nothing in them is secret: ids, counts and reasons, never keys, URLs or log content.

They are served on the API's port, or on a listener of their own (`--ops-port`), and are the
only HTTP surface of worker and scheduler nodes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from prometheus_client import exposition
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cls_shipper import metrics
from cls_shipper.api.http_metrics import HttpMetricsMiddleware
from cls_shipper.api.middleware import Disconnects
from cls_shipper.service import Context
from cls_shipper.service.health import ReadinessProbe
from cls_shipper.service.scrape import LedgerCollector, NodeCollector
from cls_shipper.shipping.runtime import Engine

SURFACE = "ops"


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


@dataclass
class Ops:
    """What the endpoints look at: the node's database context and engine."""

    ctx: Context
    engine: Engine
    readiness: ReadinessProbe = field(init=False)
    # Scrapes and readiness checks touch the database: one at a time (they are cached for a
    # second or two, so waiting is short), and never on the event loop.
    _gate: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def __post_init__(self) -> None:
        self.readiness = ReadinessProbe(self.ctx, self.engine)
        self._registry = metrics.registry(LedgerCollector(self.ctx),
                                          NodeCollector(self.ctx, self.engine,
                                                        self.readiness),
                                          _DisconnectCollector())

    async def healthz(self, request: Request) -> Response:
        del request
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        del request
        async with self._gate:
            ready = await asyncio.to_thread(self.readiness)
        return _json({"ready": ready.ready, "reasons": list(ready.reasons)},
                     200 if ready.ready else 503)

    async def metrics(self, request: Request) -> Response:
        del request
        if metrics.current() is None:
            return _json({"error": "metrics are off on this node (setting `metrics`)"}, 404)
        async with self._gate:
            body = await asyncio.to_thread(exposition.generate_latest, self._registry)
        return Response(body, media_type=exposition.CONTENT_TYPE_LATEST)

    def routes(self) -> list[Route]:
        return [Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics, methods=["GET"])]


class _DisconnectCollector(Collector):
    """Clients that left before sending their whole body (RequestIdMiddleware counts them)."""

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "cls_shipper_http_client_disconnects", "Requests whose client left before its "
            "body was in.", value=Disconnects.count)


def create_ops_app(ops: Ops) -> Starlette:
    """The operations endpoints alone, for their own listener or a worker/scheduler node."""
    routes = ops.routes()
    measured = metrics.current()
    middleware = ([] if measured is None else
                  [Middleware(HttpMetricsMiddleware, metrics=measured,
                              surfaces=[(SURFACE, routes)])])
    app = Starlette(routes=routes, middleware=middleware)
    app.router.redirect_slashes = False
    return app
