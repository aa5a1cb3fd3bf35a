"""The task queue in SQL: cutting windows into tasks, claiming with a lease, finishing.

Every state change of a running task is fenced by its lease token: a worker whose lease
expired (and whose task another worker took over) cannot overwrite the newer outcome.
On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`; on SQLite the write lock serialises them.

Every run of a task is recorded in `task_runs`, in the same transaction as the state change
it goes with (claim, renew, finish), so the run log and the ledger never disagree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.engine import Connection

from cls_shipper.ids import new_id
from cls_shipper.model.windows import next_windows
from cls_shipper.store import Database
from cls_shipper.store.schema import shippers, task_runs, tasks, topics

WINDOWS_PER_TICK = 500  # bounds one transaction during a backfill; the rest come next tick


@dataclass(frozen=True, slots=True)
class Claimed:
    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    attempts: int
    config: dict[str, Any]
    lease_token: str


def seal_topics(db: Database, now: int) -> None:
    """Raise every topic's seal to `now`: from this commit on no upload can get an ingest time
    below it, so every window ending at or before it is closed for good."""
    with db.begin() as conn:
        if db.is_sqlite:
            conn.execute(update(topics).where(topics.c.sealed_ms < now).values(sealed_ms=now))
            return
        # Lock the rows in topic_id order, the order ingest locks them in: a plain UPDATE
        # locks in physical order and can deadlock with an upload batch spanning topics.
        ordered = (select(topics.c.topic_id).where(topics.c.sealed_ms < now)
                   .order_by(topics.c.topic_id).with_for_update())
        conn.execute(update(topics).where(topics.c.topic_id.in_(ordered.scalar_subquery()))
                     .values(sealed_ms=now))


def cut_windows(db: Database, now: int, zone_name: str) -> int:
    """Turn every closed window of every effective shipper into a `wait` task; returns how
    many were cut. The shipper cursor and the tasks move in one transaction, so a window is
    never cut twice nor skipped, across restarts too."""
    created = 0
    with db.begin() as conn:
        query = (select(shippers.c.shipper_id, shippers.c.topic_id, shippers.c.config,
                        shippers.c.next_window_ms, shippers.c.end_ms, topics.c.sealed_ms)
                 .join(topics, topics.c.topic_id == shippers.c.topic_id)
                 .where(shippers.c.effective.is_(True)).order_by(shippers.c.shipper_id))
        if not db.is_sqlite:
            # Only the leader cuts, but a deposed leader may still be finishing a tick: the
            # row lock makes the second cutter wait and then read the moved cursor.
            query = query.with_for_update(of=shippers)
        rows = conn.execute(query).all()
        for row in rows:
            config = dict(row.config)
            snapshot = {**config, "time_zone": config.get("time_zone") or zone_name}
            windows = list(next_windows(row.next_window_ms, config["interval"], row.sealed_ms,
                                        WINDOWS_PER_TICK, row.end_ms))
            if not windows:
                continue
            conn.execute(insert(tasks), [
                {"task_id": new_id(), "shipper_id": row.shipper_id, "topic_id": row.topic_id,
                 "range_start_ms": start, "range_end_ms": end, "status": "wait",
                 "message": "waiting to be shipped", "created_ms": now, "run_start_ms": now,
                 "run_end_ms": None, "config": snapshot, "attempts": 0, "next_attempt_ms": now,
                 "lease_owner": None, "lease_expires_ms": None, "last_error": "", "records": 0,
                 "records_filtered": 0, "bytes_in": 0, "bytes_out": 0, "first_offset": None,
                 "last_offset": None, "objects": []}
                for start, end in windows])
            conn.execute(update(shippers).where(shippers.c.shipper_id == row.shipper_id)
                         .values(next_window_ms=windows[-1][1]))
            created += len(windows)
    return created


def _claimable(now: int) -> Any:
    return or_(
        and_(tasks.c.status == "wait", tasks.c.next_attempt_ms <= now),
        and_(tasks.c.status == "running", tasks.c.lease_expires_ms < now),
    )


def claim(db: Database, worker_id: str, now: int, lease_ms: int,
          exclude_shippers: frozenset[str] = frozenset(),
          max_attempts: int | None = None) -> Claimed | None:
    """Lease a due task (or one whose lease expired) to this worker.

    Shippers take turns: the task comes from the shipper with the fewest tasks running now,
    then the oldest due. So one shipper's backlog, or a slow bucket whose tasks hold workers
    for long, gets one worker while others have work and all of them once the rest is done.

    A task whose lease expired `max_attempts` times (its worker died or stalled each time,
    e.g. killed for memory) is failed instead of being handed to yet another worker."""
    token = f"{worker_id}/{uuid.uuid4().hex[:12]}"
    busy = (select(tasks.c.shipper_id, func.count().label("running"))
            .where(tasks.c.status == "running", tasks.c.lease_expires_ms >= now)
            .group_by(tasks.c.shipper_id).cte("busy"))
    with db.begin() as conn:
        query = (select(tasks.c.task_id, tasks.c.status, tasks.c.lease_owner, tasks.c.attempts)
                 .select_from(tasks.outerjoin(busy, busy.c.shipper_id == tasks.c.shipper_id))
                 .where(_claimable(now))
                 .order_by(func.coalesce(busy.c.running, 0), tasks.c.next_attempt_ms,
                           tasks.c.range_start_ms)
                 .limit(1))
        if exclude_shippers:
            query = query.where(tasks.c.shipper_id.not_in(exclude_shippers))
        if not db.is_sqlite:
            query = query.with_for_update(of=tasks, skip_locked=True)
        while True:
            found = conn.execute(query).first()
            if found is None:
                return None
            if found.status != "running":
                break
            # Taking over an expired lease: its run ends here, for the record.
            _close_run(conn, found.lease_owner, now, "expired",
                       "lease expired; the task was taken over", only_running=True)
            if max_attempts is None or found.attempts < max_attempts:
                break
            message = (f"the worker shipping this window stopped {found.attempts} times without "
                       "finishing (killed, out of memory, or stalled past its lease): see its "
                       "runs in GET /task, fix the cause, then retry the task")
            conn.execute(update(tasks).where(tasks.c.task_id == found.task_id).values(
                status="failed", message=message, last_error=message, run_end_ms=now,
                lease_owner=None, lease_expires_ms=None))
        row = conn.execute(
            update(tasks).where(tasks.c.task_id == found.task_id).values(
                status="running", message="running", lease_owner=token,
                lease_expires_ms=now + lease_ms, attempts=tasks.c.attempts + 1,
                run_start_ms=now, run_end_ms=None)
            .returning(tasks.c.task_id, tasks.c.shipper_id, tasks.c.topic_id,
                       tasks.c.range_start_ms, tasks.c.range_end_ms, tasks.c.attempts,
                       tasks.c.config)).one()
        conn.execute(insert(task_runs).values(
            run_id=token, task_id=row.task_id, shipper_id=row.shipper_id, attempt=row.attempts,
            lease_token=token, owner=worker_id, started_ms=now, ended_ms=None,
            lease_expires_ms=now + lease_ms, outcome="running", message=""))
    return Claimed(row.task_id, row.shipper_id, row.topic_id, row.range_start_ms,
                   row.range_end_ms, row.attempts, dict(row.config), token)


def _close_run(conn: Connection, token: str | None, now: int, outcome: str, message: str,
               *, only_running: bool = False) -> None:
    """End the run of lease `token`. A run taken over ends at its lease expiry (the last
    moment it had the task); one that finishes after that records when it really did."""
    if token is None:
        return
    query = update(task_runs).where(task_runs.c.lease_token == token)
    if only_running:
        query = query.where(task_runs.c.outcome == "running").values(
            ended_ms=task_runs.c.lease_expires_ms)
    else:
        query = query.values(ended_ms=now)
    conn.execute(query.values(outcome=outcome, message=message[:2000]))


def _fenced(task: Claimed) -> Any:
    return and_(tasks.c.task_id == task.task_id, tasks.c.lease_owner == task.lease_token,
                tasks.c.status == "running")


def renew(db: Database, task: Claimed, now: int, lease_ms: int) -> bool:
    """Extend the lease; False if this worker no longer holds it."""
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task))
                              .values(lease_expires_ms=now + lease_ms))
        if result.rowcount:
            conn.execute(update(task_runs).where(task_runs.c.lease_token == task.lease_token)
                         .values(lease_expires_ms=now + lease_ms))
    return bool(result.rowcount)


@dataclass(frozen=True, slots=True)
class Outcome:
    records: int
    records_filtered: int
    bytes_in: int
    bytes_out: int
    first_offset: int | None
    last_offset: int | None
    objects: list[dict[str, Any]]


def succeed(db: Database, task: Claimed, now: int, outcome: Outcome) -> bool:
    message = "success" if outcome.objects else "success (no records in this window)"
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task)).values(
            status="success", message=message, run_end_ms=now, lease_owner=None,
            lease_expires_ms=None, last_error="", records=outcome.records,
            records_filtered=outcome.records_filtered, bytes_in=outcome.bytes_in,
            bytes_out=outcome.bytes_out, first_offset=outcome.first_offset,
            last_offset=outcome.last_offset, objects=outcome.objects))
        if result.rowcount:
            _close_run(conn, task.lease_token, now, "success",
                       f"{outcome.records} records, {len(outcome.objects)} objects")
        else:
            _close_run(conn, task.lease_token, now, "lease_lost",
                       "finished after its lease was lost; the outcome was not recorded")
    return bool(result.rowcount)


def fail(db: Database, task: Claimed, now: int, message: str, *, transient: bool,
         max_attempts: int, retry_base_ms: int) -> str:
    """Record a failed attempt: back to `wait` with exponential backoff while attempts remain
    and the error may pass, else `failed` (a user retries it with PUT /task). Returns the new
    status ('' if the lease was lost)."""
    if transient and task.attempts < max_attempts:
        delay = retry_base_ms * 2 ** (task.attempts - 1)
        values: dict[str, Any] = {
            "status": "wait", "next_attempt_ms": now + delay, "run_end_ms": now,
            "message": f"attempt {task.attempts} of {max_attempts} failed, retrying in "
                       f"{delay / 1000:.0f}s: {message}"}
    else:
        values = {"status": "failed", "run_end_ms": now, "message": message}
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task)).values(
            lease_owner=None, lease_expires_ms=None, last_error=message, **values))
        if result.rowcount:
            _close_run(conn, task.lease_token, now,
                       "retry" if values["status"] == "wait" else "failed", message)
        else:
            _close_run(conn, task.lease_token, now, "lease_lost", message)
    return str(values["status"]) if result.rowcount else ""
