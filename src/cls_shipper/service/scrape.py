"""Metrics read at scrape time: the ledger's state per shipper, the topics' heads and
retained bytes (from the database), and this node's own state (leader, readiness, worker
processes). Event counters live in `cls_shipper.metrics`, counted where events happen.

The database values are the whole deployment's: every node exports the same, so a dashboard
over several nodes takes `max by (shipper_id)` (or `by (topic_id)`). They come from one
query each, bounded by the quotas (shippers, topics), cached for CACHE_SECONDS so that
however many scrapers there are, the database sees at most one such query per interval;
retained bytes visit every stored chunk's row, so they are cached for RETAINED_SECONDS."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from cls_shipper.model.task import TaskStatus
from cls_shipper.service.context import Context
from cls_shipper.service.health import ReadinessProbe
from cls_shipper.shipping import ledger
from cls_shipper.shipping.runtime import Engine
from cls_shipper.store import chunks
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.scrape")

CACHE_SECONDS = 2.0
RETAINED_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class _Snapshot:
    at_ms: int
    shippers: list[ledger.ShipperGauge]
    heads: dict[str, int]


class _Cached:
    """A value recomputed at most every `seconds`, one computation at a time (single
    flight: concurrent scrapes wait for the one in progress and share its result)."""

    def __init__(self, compute: Callable[[], object], seconds: float) -> None:
        self._compute, self._seconds = compute, seconds
        self._lock = threading.Lock()
        self._value: object = None
        self._at = float("-inf")

    def get(self) -> object:
        with self._lock:
            if time.monotonic() - self._at >= self._seconds:
                self._value = self._compute()
                self._at = time.monotonic()
            return self._value


class LedgerCollector(Collector):
    """Per shipper: lag, windows by status, the oldest failed window's age, blocked. Per
    topic: head offset, retained bytes."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._snapshot = _Cached(self._read, CACHE_SECONDS)
        self._retained = _Cached(self._read_retained, RETAINED_SECONDS)

    def _read(self) -> _Snapshot:
        with self.ctx.db.read() as conn:
            return _Snapshot(now_ms(), ledger.shipper_gauges(conn), chunks.topic_heads(conn))

    def _read_retained(self) -> dict[str, int]:
        with self.ctx.db.read() as conn:
            return chunks.retained_bytes(conn)

    def collect(self) -> Iterator[Metric]:
        try:
            snapshot = self._snapshot.get()
            retained = self._retained.get()
        except SQLAlchemyError:
            # The scrape still returns the event metrics; readiness reports the database.
            log.warning("metrics: could not read the ledger", exc_info=True)
            return
        assert isinstance(snapshot, _Snapshot) and isinstance(retained, dict)
        yield from _shipper_families(snapshot)
        heads = GaugeMetricFamily("cls_shipper_topic_head_offset", "The topic's next record "
                                  "offset (records ever stored).", labels=["topic_id"])
        for topic_id, head in sorted(snapshot.heads.items()):
            heads.add_metric([topic_id], head)
        yield heads
        kept = GaugeMetricFamily("cls_shipper_topic_retained_bytes", "Bytes of the topic's "
                                 "stored log chunks, as stored (refreshed every minute).",
                                 labels=["topic_id"])
        for topic_id in sorted(snapshot.heads):
            kept.add_metric([topic_id], retained.get(topic_id, 0))
        yield kept


def _shipper_families(snapshot: _Snapshot) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "cls_shipper_shipper_lag_seconds", "Now minus the end of the newest window shipped "
        "with no window before it pending (at least the interval plus the seal delay).",
        labels=["shipper_id", "topic_id"])
    windows = GaugeMetricFamily(
        "cls_shipper_shipper_windows", "The shipper's windows not yet shipped, by status.",
        labels=["shipper_id", "status"])
    oldest = GaugeMetricFamily(
        "cls_shipper_shipper_oldest_failed_window_age_seconds", "Now minus the start of the "
        "shipper's oldest failed window (0: none failed).", labels=["shipper_id"])
    blocked = GaugeMetricFamily(
        "cls_shipper_shipper_blocked", "1 while the shipper's destination refuses it (its "
        "windows wait; workers probe it).", labels=["shipper_id"])
    now = snapshot.at_ms
    for gauge in sorted(snapshot.shippers, key=lambda g: g.shipper_id):
        sid = gauge.shipper_id
        lag.add_metric([sid, gauge.topic_id], max(0, now - gauge.shipped_until_ms) / 1000)
        for status in (TaskStatus.WAIT, TaskStatus.RUNNING, TaskStatus.FAILED):
            windows.add_metric([sid, status.value], gauge.windows.get(status, 0))
        failed_at = gauge.oldest_failed_ms
        oldest.add_metric([sid], 0 if failed_at is None else max(0, now - failed_at) / 1000)
        blocked.add_metric([sid], int(gauge.blocked))
    yield from (lag, windows, oldest, blocked)


class NodeCollector(Collector):
    """This node: its role, whether it is ready, leads the scheduler, and how many of its
    worker processes run."""

    def __init__(self, ctx: Context, engine: Engine, readiness: ReadinessProbe) -> None:
        self.ctx, self.engine, self.readiness = ctx, engine, readiness

    def collect(self) -> Iterator[Metric]:
        role = self.ctx.settings.role
        info = GaugeMetricFamily("cls_shipper_node_info", "1, with the node's role.",
                                 labels=["role"])
        info.add_metric([role], 1)
        ready = GaugeMetricFamily("cls_shipper_node_ready", "1 when GET /readyz answers 200.")
        ready.add_metric([], int(self.readiness().ready))
        leader = GaugeMetricFamily("cls_shipper_engine_leader", "1 while this node leads the "
                                   "scheduler (cuts windows); 0 on a standby or a node "
                                   "without a scheduler.")
        leadership = self.engine.leadership
        leader.add_metric([], int(leadership is not None and leadership.is_leader))
        workers = GaugeMetricFamily("cls_shipper_engine_worker_processes", "This node's "
                                    "shipping worker processes, by state.", labels=["state"])
        alive = sum(1 for proc in self.engine.processes if proc.is_alive())
        workers.add_metric(["alive"], alive)
        workers.add_metric(["exited"], len(self.engine.processes) - alive)
        yield from (info, ready, leader, workers)
