"""A task's run history (the `task_runs` table) for the API: who ran it, when, how it ended.

The legacy `GET /task` serialiser gets only the task, so the API process registers its
database here once at start-up (`serve.prepare`) and the serialiser reads through it."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from sqlalchemy import select

from cls_shipper.store import Database
from cls_shipper.store.schema import task_runs
from cls_shipper.timefmt import format_legacy

# Enough for a task retried max_attempts times and again by hand a few times.
HISTORY_LIMIT = 50

_database: Database | None = None


def register_database(db: Database | None) -> None:
    global _database
    _database = db


def history(task_id: str, zone: tzinfo) -> list[dict[str, Any]]:
    """The runs of a task, oldest first, in the legacy API's shape (times as strings in the
    server's zone); empty when no database is registered in this process."""
    if _database is None:
        return []
    with _database.read() as conn:
        rows = conn.execute(
            select(task_runs).where(task_runs.c.task_id == task_id)
            .order_by(task_runs.c.started_ms.desc()).limit(HISTORY_LIMIT)).all()
    return [{"attempt": r.attempt, "worker": r.owner, "lease_token": r.lease_token,
             "start_time": format_legacy(r.started_ms, zone),
             "end_time": format_legacy(r.ended_ms, zone),
             "lease_expire_time": format_legacy(r.lease_expires_ms, zone),
             "outcome": r.outcome, "message": r.message}
            for r in reversed(rows)]
