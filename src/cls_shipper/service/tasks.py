"""The task ledger as users see it: list, inspect, retry (spec §4.6, §4.7, §7.2, §7.3).

A task is one window of one shipper. `start_time` is when its current run started, or when
it was queued if it has not run yet; `end_time` is when that run ended (empty until then).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select, update

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.service.context import Context
from cls_shipper.store.schema import shippers, task_runs, tasks
from cls_shipper.timefmt import now_ms

QUERY_WINDOW_MS = 3 * 86_400_000
# Enough for a task retried max_attempts times and again by hand a few times.
RUN_HISTORY_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Run:
    """One attempt at a task: which worker, when, and how it ended (`running`, `success`,
    `retry`, `failed`, `expired`: taken over after its lease ran out, `lease_lost`: it
    finished after that)."""

    attempt: int
    owner: str
    lease_token: str
    started_ms: int
    ended_ms: int | None
    lease_expires_ms: int
    outcome: str
    message: str


@dataclass(frozen=True, slots=True)
class Task:
    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    start_ms: int
    end_ms: int | None
    status: str
    message: str
    created_ms: int
    attempts: int
    next_attempt_ms: int
    lease_owner: str | None
    lease_expires_ms: int | None
    last_error: str
    records: int
    records_filtered: int
    bytes_in: int
    bytes_out: int
    first_offset: int | None
    last_offset: int | None
    objects: list[dict[str, Any]]
    config: dict[str, Any]
    runs: list[Run] = field(default_factory=list)  # filled by get_task only


def _to_task(row: Any) -> Task:
    return Task(
        task_id=row.task_id, shipper_id=row.shipper_id, topic_id=row.topic_id,
        range_start_ms=row.range_start_ms, range_end_ms=row.range_end_ms,
        start_ms=row.run_start_ms if row.run_start_ms is not None else row.created_ms,
        end_ms=row.run_end_ms, status=row.status, message=row.message,
        created_ms=row.created_ms, attempts=row.attempts, next_attempt_ms=row.next_attempt_ms,
        lease_owner=row.lease_owner, lease_expires_ms=row.lease_expires_ms,
        last_error=row.last_error, records=row.records, records_filtered=row.records_filtered,
        bytes_in=row.bytes_in, bytes_out=row.bytes_out, first_offset=row.first_offset,
        last_offset=row.last_offset, objects=list(row.objects or []), config=dict(row.config),
    )


def _require_shipper(conn: Any, shipper_id: Any) -> None:
    if not isinstance(shipper_id, str) or not shipper_id:
        raise invalid("shipper_id must be a non-empty string")
    if conn.execute(select(shippers.c.shipper_id)
                    .where(shippers.c.shipper_id == shipper_id)).first() is None:
        raise ServiceError(Kinds.SHIPPER_NOT_EXIST, f"shipper {shipper_id!r} does not exist")


def list_tasks(ctx: Context, shipper_id: str, start_ms: int, end_ms: int,
               now: int | None = None) -> list[Task]:
    """Tasks whose start time lies in [start_ms, end_ms], oldest first. Only the last three
    days can be queried: `start_ms` must not be older than now minus 72 hours."""
    current = now_ms() if now is None else now
    if start_ms > end_ms:
        raise invalid("start_time must not be later than end_time")
    if start_ms < current - QUERY_WINDOW_MS:
        raise invalid("only tasks of the last 3 days can be queried: start_time is too old")
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        rows = conn.execute(
            select(tasks).where(tasks.c.shipper_id == shipper_id,
                                tasks.c.run_start_ms >= start_ms,
                                tasks.c.run_start_ms <= end_ms)
            .order_by(tasks.c.range_start_ms)).all()
    return [_to_task(r) for r in rows]


def get_task(ctx: Context, shipper_id: str, task_id: str) -> Task:
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        row = conn.execute(select(tasks).where(tasks.c.task_id == task_id,
                                               tasks.c.shipper_id == shipper_id)).first()
        if row is None:
            raise ServiceError(Kinds.TASK_NOT_EXIST, f"task {task_id!r} does not exist")
        runs = conn.execute(
            select(task_runs).where(task_runs.c.task_id == task_id)
            .order_by(task_runs.c.started_ms.desc()).limit(RUN_HISTORY_LIMIT)).all()
    history = [Run(r.attempt, r.owner, r.lease_token, r.started_ms, r.ended_ms,
                   r.lease_expires_ms, r.outcome, r.message) for r in reversed(runs)]
    return replace(_to_task(row), runs=history)


def retry(ctx: Context, shipper_id: str, task_id: str, reload_config: bool = False) -> None:
    """Send a failed task back to the queue (same task_id; attempts start afresh).

    A task ships with the config it was cut with, so a retry rewrites the same objects. When
    the failure was the config's fault (a mistyped bucket, a storage class the store refuses),
    `reload_config` re-snapshots the shipper's current config instead; objects an earlier
    attempt wrote under the old names are then not the ledger's any more."""
    if not isinstance(task_id, str) or not task_id:
        raise invalid("task_id must be a non-empty string")
    with ctx.db.begin() as conn:
        _require_shipper(conn, shipper_id)
        row = conn.execute(select(tasks.c.status, tasks.c.config).where(
            tasks.c.task_id == task_id, tasks.c.shipper_id == shipper_id)).first()
        if row is None:
            raise ServiceError(Kinds.TASK_NOT_EXIST, f"task {task_id!r} does not exist")
        if row.status != "failed":
            raise ServiceError(Kinds.TASK_READ_ONLY,
                               f"only failed tasks can be retried; this one is {row.status}")
        queued = now_ms()
        values: dict[str, Any] = {"message": "queued again by a retry request"}
        if reload_config:
            current = dict(conn.execute(select(shippers.c.config).where(
                shippers.c.shipper_id == shipper_id)).scalar_one())
            # An unset time zone was resolved to the server's when the window was cut.
            values = {"config": {**current, "time_zone": current.get("time_zone")
                                 or row.config.get("time_zone", "")},
                      "message": "queued again with the shipper's current config"}
        conn.execute(update(tasks).where(tasks.c.task_id == task_id).values(
            status="wait", attempts=0, next_attempt_ms=queued, run_start_ms=queued,
            run_end_ms=None, lease_owner=None, lease_expires_ms=None, **values))


def retry_failed(ctx: Context, shipper_id: str, reload_config: bool = False) -> int:
    """Retry every failed task of a shipper (the retry of `retry`, in bulk); returns how many
    were queued again. Each keeps its task id and its own config snapshot unless
    `reload_config` is set."""
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        failed = conn.execute(select(tasks.c.task_id).where(
            tasks.c.shipper_id == shipper_id, tasks.c.status == "failed")
            .order_by(tasks.c.range_start_ms)).scalars().all()
    retried = 0
    for task_id in failed:
        try:
            retry(ctx, shipper_id, task_id, reload_config)
        except ServiceError as exc:
            if exc.kind is not Kinds.TASK_READ_ONLY:  # retried meanwhile by someone else
                raise
            continue
        retried += 1
    return retried
