"""Readiness: whether this node can do its job now (GET /readyz, the `cls_shipper_node_ready`
gauge). Liveness needs no rule: a process that answers is alive."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cls_shipper.service.context import Context
from cls_shipper.shipping.nodes import STALE_MS, children_registered
from cls_shipper.shipping.runtime import Engine
from cls_shipper.store import chunks
from cls_shipper.store.database import schema_current
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.health")

# Probes may come often and from many places (load balancers, kubelets, Prometheus): one
# check runs at a time and its answer serves everyone for this long.
CACHE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    reasons: tuple[str, ...]  # why not, each a sentence an operator can act on; empty if ready


def check(ctx: Context, engine: Engine) -> Readiness:
    """Every condition of this node's role, all of them reported (not just the first)."""
    reasons: list[str] = []
    role = ctx.settings.role
    if engine.stopping:
        reasons.append("the node is stopping")
    try:
        with ctx.db.read() as conn:
            conn.execute(text("SELECT 1"))
        if not schema_current(ctx.db):
            reasons.append("the database schema is not at this version's newest migration "
                           "(a node of another version migrated it, or it was restored)")
        alive = sum(1 for proc in engine.processes if proc.is_alive())
        if alive and children_registered(ctx.db, engine.node_id) < alive:
            reasons.append("worker processes are starting (not all in the node registry)")
    except SQLAlchemyError as exc:
        # Its host and the driver's text go to the log only: /readyz is unauthenticated.
        log.warning("readiness: the database is unreachable (%s)", ctx.db.describe(),
                    exc_info=True)
        reasons.append(f"the database is unreachable ({type(exc).__name__})")
    if role in ("all", "api"):
        writer = chunks.writer_health(ctx.db)
        if writer is not None:
            reasons.append(f"the ingest writer cannot commit: {writer}")
    reasons.extend(engine.exited_workers())
    heartbeat = engine.heartbeat
    if heartbeat is None or not heartbeat.registered.is_set():
        reasons.append("the node has not registered in the node registry yet")
    elif now_ms() - heartbeat.last_beat_ms > STALE_MS:
        reasons.append(f"the node's heartbeat has failed for "
                       f"{(now_ms() - heartbeat.last_beat_ms) // 1000} s")
    return Readiness(not reasons, tuple(reasons))


class ReadinessProbe:
    """`check` at most once per CACHE_SECONDS, whatever the number of callers."""

    def __init__(self, ctx: Context, engine: Engine) -> None:
        self.ctx, self.engine = ctx, engine
        self._lock = threading.Lock()
        self._last: Readiness | None = None
        self._at = 0.0

    def __call__(self) -> Readiness:
        with self._lock:
            if self._last is None or time.monotonic() - self._at >= CACHE_SECONDS:
                self._last = check(self.ctx, self.engine)
                self._at = time.monotonic()
            return self._last
