"""The scheduler: seals topics, cuts closed windows into tasks, expires old log chunks.

Any number of scheduler nodes may run; only the leader (see `nodes.Leadership`) ticks, the
others stand by and take over when its session ends."""

from __future__ import annotations

import logging
import threading

from cls_shipper.shipping import ledger
from cls_shipper.shipping.nodes import Leadership, forget_dead_nodes, node_id_of
from cls_shipper.store import Database
from cls_shipper.store.chunks import expire_chunks
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.scheduler")
RETENTION_EVERY_MS = 60_000


def tick(db: Database, zone_name: str, now: int | None = None) -> int:
    """One round: seal, then cut. The seal commits first, so every record with an ingest time
    below it is already committed when its window becomes a task."""
    current = now_ms() if now is None else now
    ledger.seal_topics(db, current)
    return ledger.cut_windows(db, current, zone_name)


def run_loop(db: Database, zone_name: str, tick_seconds: float, stop: threading.Event,
             leadership: Leadership | None = None, consumer_hold_days: float = 7.0) -> None:
    lead = leadership or Leadership(db, node_id_of())
    last_expiry = 0
    try:
        while not stop.is_set():
            try:
                if lead.check():
                    cut = tick(db, zone_name)
                    if cut:
                        log.info("cut %d window(s) into tasks", cut)
                    if now_ms() - last_expiry >= RETENTION_EVERY_MS:
                        removed = expire_chunks(db, now_ms(),
                                                consumer_hold_days=consumer_hold_days)
                        forget_dead_nodes(db, now_ms())
                        last_expiry = now_ms()
                        if removed:
                            log.info("expired %d log chunk(s) past retention", removed)
            except Exception:
                log.exception("scheduler tick failed; retrying")
            stop.wait(tick_seconds)
    finally:
        lead.release()
