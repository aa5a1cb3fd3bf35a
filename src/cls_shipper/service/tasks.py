"""The task ledger as users see it: list, inspect, retry (spec §4.6, §4.7, §7.2, §7.3).

A task is one window of one shipper; its types are the model's (`Task` as listed,
`TaskDetail` as inspected), its changes the ledger's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.model.task import CountedTask, Task, TaskDetail, TaskStatus
from cls_shipper.service.context import Context
from cls_shipper.service.task_cache import FinalTasks
from cls_shipper.shipping import ledger
from cls_shipper.store.schema import shippers
from cls_shipper.timefmt import now_ms

# The API surfaces name the task types through this module.
__all__ = ["CountedTask", "Task", "TaskDetail", "TaskPage", "get_task", "list_counted_tasks",
           "list_tasks", "retry", "retry_failed"]

QUERY_WINDOW_MS = 3 * 86_400_000
# The most tasks one answer holds, and what a listing holds unless asked for fewer: three
# days (all a query may span) of a shipper at the spec's shortest interval, 300 s, are 864
# tasks, so a client that never pages never misses one of those. Beyond it (historical
# shipping, or a shorter --min-interval) the legacy API pages and API 3.0, which has no
# paging parameters, answers the first MAX_LISTED.
MAX_LISTED = 1000
MAX_OFFSET = 1 << 31
# Enough for a task retried max_attempts times and again by hand a few times.
RUN_HISTORY_LIMIT = 50

T = TypeVar("T", Task, CountedTask)


def _require_shipper(conn: Connection, shipper_id: object) -> None:
    if not isinstance(shipper_id, str) or not shipper_id:
        raise invalid("shipper_id must be a non-empty string")
    if conn.execute(select(shippers.c.shipper_id)
                    .where(shippers.c.shipper_id == shipper_id)).first() is None:
        raise ServiceError(Kinds.SHIPPER_NOT_EXIST, f"shipper {shipper_id!r} does not exist")


@dataclass(frozen=True, slots=True)
class TaskPage(Generic[T]):
    """One page of a listing; `next_offset` is where the next page starts, None at the end."""

    tasks: list[T]
    next_offset: int | None


def list_tasks(ctx: Context, shipper_id: str, start_ms: int, end_ms: int,
               now: int | None = None, *, offset: int = 0,
               limit: int = MAX_LISTED) -> TaskPage[Task]:
    """Tasks whose start time lies in [start_ms, end_ms], oldest window first, `limit` of
    them after the first `offset`. Only the last three days can be queried: `start_ms` must
    not be older than now minus 72 hours."""
    return _page(ctx, shipper_id, start_ms, end_ms, now, offset, limit, ledger.tasks_by_id,
                 ctx.final_tasks)


def list_counted_tasks(ctx: Context, shipper_id: str, start_ms: int, end_ms: int,
                       now: int | None = None, *, offset: int = 0,
                       limit: int = MAX_LISTED) -> TaskPage[CountedTask]:
    """`list_tasks` with each task's counters (records, rejected, bytes, objects, attempts):
    the same tasks in the same pages, the same rules."""
    return _page(ctx, shipper_id, start_ms, end_ms, now, offset, limit,
                 ledger.counted_tasks_by_id, ctx.final_counted_tasks)


def _page(ctx: Context, shipper_id: str, start_ms: int, end_ms: int, now: int | None,
          offset: int, limit: int, read_rows: Callable[[Connection, str, Sequence[str]], list[T]],
          held: FinalTasks[T]) -> TaskPage[T]:
    current = now_ms() if now is None else now
    if start_ms > end_ms:
        raise invalid("start_time must not be later than end_time")
    if start_ms < current - QUERY_WINDOW_MS:
        raise invalid("only tasks of the last 3 days can be queried: start_time is too old")
    if not 0 <= offset <= MAX_OFFSET:
        raise invalid(f"offset must be from 0 to {MAX_OFFSET}")
    if not 1 <= limit <= MAX_LISTED:
        raise invalid(f"limit must be from 1 to {MAX_LISTED}")
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        # One more than asked for says whether another page follows, without a count.
        listed = ledger.listed_task_ids(conn, shipper_id, start_ms, end_ms, offset,
                                        limit + 1)
        more = len(listed) > limit
        known = {task_id: task for task_id, status in listed[:limit]
                 if status is TaskStatus.SUCCESS and (task := held.get(task_id)) is not None}
        if len(known) < min(len(listed), limit):
            read = read_rows(conn, shipper_id, [task_id for task_id, _ in listed[:limit]
                                                if task_id not in known])
            held.remember(read)
            known.update((task.task_id, task) for task in read)
    # A task deleted between the two reads (its shipper was) is left out.
    found = [task for task_id, _ in listed[:limit] if (task := known.get(task_id)) is not None]
    return TaskPage(found, offset + limit if more else None)


def get_task(ctx: Context, shipper_id: str, task_id: str) -> TaskDetail:
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        found = ledger.find_task(conn, shipper_id, task_id, RUN_HISTORY_LIMIT)
    if found is None:
        raise ServiceError(Kinds.TASK_NOT_EXIST, f"task {task_id!r} does not exist")
    return found


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
        current = None
        if reload_config:
            current = ShipperConfig.from_dict(conn.execute(select(shippers.c.config).where(
                shippers.c.shipper_id == shipper_id)).scalar_one())
        found = ledger.retry(conn, shipper_id, task_id, now_ms(), reload=current)
        if found is None:
            raise ServiceError(Kinds.TASK_NOT_EXIST, f"task {task_id!r} does not exist")
        if found is not TaskStatus.FAILED:
            raise ServiceError(Kinds.TASK_READ_ONLY,
                               f"only failed tasks can be retried; this one is {found}")


def retry_failed(ctx: Context, shipper_id: str, reload_config: bool = False) -> int:
    """Retry every failed task of a shipper (the retry of `retry`, in bulk); returns how many
    were queued again. Each keeps its task id and its own config snapshot unless
    `reload_config` is set."""
    with ctx.db.read() as conn:
        _require_shipper(conn, shipper_id)
        failed = ledger.failed_task_ids(conn, shipper_id)
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
