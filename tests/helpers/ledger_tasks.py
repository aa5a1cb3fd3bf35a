"""Real tasks in a server's ledger without waiting for workers: windows cut and one task
failed with the engine's own functions on the server's database (start the server with
`--workers 0` so that nothing ships them meanwhile)."""

from __future__ import annotations

import time

from cls_shipper.errors import SinkError
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database
from cls_shipper.timefmt import now_ms
from tests.helpers.server import ServerProcess


def cut_and_fail_one(server: ServerProcess, shipper_id: str) -> str:
    """Cut the shipper's closed 1-second windows (at least two) and fail the first one the
    way a worker does when its bucket is missing; the failed task's id."""
    db = open_database(server.db_url, run_migrations=False)
    try:
        time.sleep(2.1)  # two 1-second windows close
        ledger.seal_topics(db, now_ms())
        ledger.cut_windows(db, now_ms(), "Asia/Shanghai")
        skip: frozenset[str] = frozenset()
        claimed = ledger.claim(db, "test-worker", now_ms() + 10_000, 30_000,
                               exclude_shippers=skip)
        while claimed is not None and claimed.shipper_id != shipper_id:
            skip = skip | {claimed.shipper_id}
            claimed = ledger.claim(db, "test-worker", now_ms() + 10_000, 30_000,
                                   exclude_shippers=skip)
        assert claimed is not None, "no task of the shipper was cut"
        policy = ledger.RetryPolicy(base_ms=1000, cap_ms=60_000, deadline_ms=86_400_000,
                                    max_attempts=5)
        assert ledger.fail(db, claimed, now_ms(), SinkError(
            "bucket_missing", "bucket 'x' does not exist (10001)"), policy) == "failed"
        return claimed.task_id
    finally:
        db.dispose()
