"""HistoryStatus, Progress and RemainTime of historical shipping (spec §7.6), computed in the
service layer from the task ledger; in-process, with ledger rows written by hand."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sqlalchemy import insert, update

from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service import Context, logsets, shippers, topics
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.store import open_database
from cls_shipper.store.schema import tasks

INTERVAL = 900
STEP = INTERVAL * 1000


def test_history_progress(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, min_interval=1)
    ctx = Context(open_database(settings.db_url), settings)
    logset = logsets.create(ctx, "ls", 7)
    topic = topics.create(ctx, logset, "app")
    now = int(time.time() * 1000)
    start = (now - 3 * 3_600_000) // STEP * STEP  # 8 windows: [start, start + 2 h)
    config = ShipperConfig(**{**defaults("v3"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p", "shipper_name": "h", "interval": INTERVAL})
    shipper_id = shippers.create(ctx, config, "v3", start_ms=start, end_ms=start + 8 * STEP)
    realtime = shippers.create(ctx, ShipperConfig(**{**config.to_dict(), "shipper_name": "r",
                                                     "content": config.content}), "v3")

    def history() -> shippers.History:
        return shippers.get(ctx, shipper_id).progress.history

    assert shippers.get(ctx, realtime).progress.history == shippers.NO_HISTORY
    assert history() == shippers.History(shippers.HISTORY_PREPARING, 0.0, 0)

    ids = []
    with ctx.db.begin() as conn:
        for i in range(8):
            ids.append(str(uuid.uuid4()))
            conn.execute(insert(tasks).values(
                task_id=ids[-1], shipper_id=shipper_id, topic_id=topic,
                range_start_ms=start + i * STEP, range_end_ms=start + (i + 1) * STEP,
                status="wait", message="", created_ms=now - 100_000, config={},
                next_attempt_ms=now))
    assert history().status == shippers.HISTORY_PREPARING

    def set_status(index: int, status: str) -> None:
        with ctx.db.begin() as conn:
            conn.execute(update(tasks).where(tasks.c.task_id == ids[index]).values(
                status=status, run_start_ms=now - 100_000))

    set_status(0, "running")
    assert history().status == shippers.HISTORY_RUNNING
    set_status(0, "success")
    set_status(1, "success")
    running = history()
    assert running.status == shippers.HISTORY_RUNNING
    assert running.fraction == 0.25
    # 2 windows took ~100 s, so 6 more take ~300 s.
    assert 250 <= running.remain_s <= 400
    set_status(2, "failed")
    assert history().status == shippers.HISTORY_EXCEPTION
    assert shippers.get(ctx, shipper_id).task_status == shippers.TASK_STATUS_EXCEPTION
    for i in range(8):
        set_status(i, "success")
    assert history() == shippers.History(shippers.HISTORY_COMPLETE, 1.0, 0)
    assert shippers.get(ctx, shipper_id).task_status == shippers.TASK_STATUS_RUNNING
    ctx.db.dispose()
