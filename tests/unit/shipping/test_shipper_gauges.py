"""The ledger's state as the metrics read it: windows by status, how far a shipper has
shipped without a gap, its oldest failure and its block, for every effective shipper in one
query."""

from __future__ import annotations

from pathlib import Path

from cls_shipper.errors import SinkError
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.model.task import TaskStatus
from cls_shipper.service import Context, logsets, shippers, topics
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database
from cls_shipper.timefmt import now_ms

POLICY = ledger.RetryPolicy(base_ms=1000, cap_ms=300_000, deadline_ms=86_400_000,
                            max_attempts=5)
LEASE_MS = 60_000


def _shipper(ctx: Context, name: str) -> str:
    topic = topics.create(ctx, logsets.create(ctx, f"ls-{name}", 7), "t")
    config = ShipperConfig(**{**defaults("legacy"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p/", "shipper_name": name, "interval": 1})
    return shippers.create(ctx, config, "legacy")


def _gauges(ctx: Context) -> dict[str, ledger.ShipperGauge]:
    with ctx.db.read() as conn:
        return {g.shipper_id: g for g in ledger.shipper_gauges(conn)}


def test_gauges_follow_the_ledger(tmp_path: Path) -> None:
    ctx = Context(open_database(f"sqlite:///{tmp_path / 'db.sqlite'}"),
                  Settings(data_dir=tmp_path, min_interval=1))
    healthy, refused = _shipper(ctx, "healthy"), _shipper(ctx, "refused")
    idle = _shipper(ctx, "idle")
    before = _gauges(ctx)
    # Nothing cut yet: nothing pending, shipped up to the cursor (the first window's start).
    assert before[idle].windows == dict.fromkeys(
        (TaskStatus.WAIT, TaskStatus.RUNNING, TaskStatus.FAILED), 0)
    assert before[idle].oldest_failed_ms is None and not before[idle].blocked

    later = now_ms() + 5_000
    ledger.seal_topics(ctx.db, later)
    assert ledger.cut_windows(ctx.db, later, "UTC") >= 12
    ledger.seal_topics(ctx.db, later)
    shipped_healthy = 0
    only_healthy = frozenset({refused, idle})
    while (task := ledger.claim(ctx.db, "w1", later, LEASE_MS, only_healthy)) is not None:
        assert ledger.succeed(ctx.db, task, later, ledger.Outcome(1, 0, 10, 5, 0, 0, []))
        shipped_healthy += 1
    first_refused = ledger.claim(ctx.db, "w1", later, LEASE_MS, frozenset({healthy, idle}))
    assert first_refused is not None and shipped_healthy >= 4
    ledger.fail(ctx.db, first_refused, later, SinkError("bucket_missing", "no bucket"), POLICY)

    gauges = _gauges(ctx)
    with ctx.db.read() as conn:
        cursor = ledger.progress_of(conn, healthy)
    # Every cut window of `healthy` shipped: it has shipped up to the newest window's end.
    assert gauges[healthy].windows[TaskStatus.WAIT] == 0
    assert gauges[healthy].shipped_until_ms == cursor.shipped_until_ms
    assert cursor.shipped_until_ms > before[healthy].shipped_until_ms
    # `refused`: its first window failed and blocked it; the others wait behind it.
    blocked = gauges[refused]
    assert blocked.blocked and blocked.windows[TaskStatus.FAILED] == 1
    assert blocked.windows[TaskStatus.WAIT] >= 4
    assert blocked.oldest_failed_ms == first_refused.range_start_ms
    assert blocked.shipped_until_ms == first_refused.range_start_ms
    # A deleted shipper is gone from the metrics.
    shippers.delete_shipper(ctx, idle)
    assert idle not in _gauges(ctx)
