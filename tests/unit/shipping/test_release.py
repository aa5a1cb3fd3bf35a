"""A stopping worker hands its task back: abandoned between two chunks, the open object
aborted (nothing in the bucket, no temporary file), the task `wait` and due now with its
attempt given back, the run `released`; the next claim takes it at once."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.model.task import RunOutcome, TaskStatus
from cls_shipper.service import Context, logsets, shippers, topics
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, worker
from cls_shipper.sinks import LocalSink
from cls_shipper.store import open_database
from cls_shipper.store.chunks import NewChunk, append
from cls_shipper.store.schema import task_runs, tasks
from cls_shipper.timefmt import now_ms
from tests.e2e.test_ingest import _pb, make_group

SETTINGS = worker.WorkerSettings(lease_ms=60_000, policy=ledger.RetryPolicy(
    base_ms=1000, cap_ms=300_000, deadline_ms=86_400_000, max_attempts=5))


def test_an_abandoned_task_is_released_with_nothing_written(tmp_path: Path) -> None:
    ctx = Context(open_database(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                  Settings(data_dir=tmp_path, min_interval=1))
    topic = topics.create(ctx, logsets.create(ctx, "ls", 7), "t")
    config = ShipperConfig(**{**defaults("legacy"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p/", "shipper_name": "s", "interval": 1})
    shipper_id = shippers.create(ctx, config, "legacy")
    for batch in range(3):
        payload = _pb(make_group([{"seq": str(batch * 10 + i)} for i in range(10)]))
        append(ctx.db, NewChunk(topic, 10, "none", len(payload), "10.0.0.1", payload))
    later = now_ms() + 2_000
    ledger.seal_topics(ctx.db, later)
    assert ledger.cut_windows(ctx.db, later, "UTC") >= 1
    time.sleep(max(0.0, (later - now_ms()) / 1000 + 0.05))  # the tasks are due from `later`
    sink = LocalSink(tmp_path / "buckets")
    stopping = worker.Stopping()
    stopping.abandon.set()  # the grace period is over before the first chunk is encoded
    row = None
    while worker.run_one(ctx.db, sink, "w1", SETTINGS, stopping):
        with ctx.db.read() as conn:
            row = conn.execute(select(tasks).where(tasks.c.shipper_id == shipper_id,
                                                   tasks.c.records == 0,
                                                   tasks.c.status == TaskStatus.WAIT,
                                                   tasks.c.attempts == 0,
                                                   tasks.c.message.contains("released"))
                               ).first()
        if row is not None:
            break
    assert row is not None, "the window with records was never released"
    with ctx.db.read() as conn:
        run = conn.execute(select(task_runs).where(task_runs.c.task_id == row.task_id)).one()
    assert run.outcome == RunOutcome.RELEASED and run.ended_ms is not None
    assert row.next_attempt_ms <= now_ms() and row.lease_owner is None
    bucket = tmp_path / "buckets" / "b-1"
    assert not bucket.exists() or [p for p in bucket.rglob("*") if p.is_file()] == []

    # The next worker takes it at once and ships it whole.
    assert worker.run_one(ctx.db, sink, "w2", SETTINGS)
    while worker.run_one(ctx.db, sink, "w2", SETTINGS):
        pass
    with ctx.db.read() as conn:
        shipped = conn.execute(select(tasks.c.records, tasks.c.status)
                               .where(tasks.c.task_id == row.task_id)).one()
    assert shipped.status == TaskStatus.SUCCESS and shipped.records == 30
    ctx.db.dispose()
