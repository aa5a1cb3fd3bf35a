"""A shipper's coverage of a time range: every window the ledger holds that starts in it,
for the console's timeline. Only each window's task id, bounds and status are read (the
ledger's `window_statuses`): building full task summaries for ten thousand windows was most
of a page's time; the table's page of rows is read in full afterwards (`details`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.model.task import TaskDetail, TaskStatus
from cls_shipper.model.windows import align_down
from cls_shipper.service import tasks
from cls_shipper.service.context import Context
from cls_shipper.service.shippers import Shipper
from cls_shipper.service.shippers import get as get_shipper
from cls_shipper.shipping import ledger

# A timeline of more windows than this is refused rather than drawn: a week of 5-minute
# windows is 2,016, a day of 10-second ones 8,640.
MAX_WINDOWS = 20_000
MAX_RANGE_MS = 7 * 86_400_000


class Window(NamedTuple):
    """One window of a timeline: its task, bounds and status (a TaskStatus value)."""

    task_id: str
    range_start_ms: int
    range_end_ms: int
    status: str


@dataclass(frozen=True, slots=True)
class Coverage:
    shipper: Shipper
    start_ms: int
    end_ms: int
    windows: list[Window]  # by window


def coverage(ctx: Context, shipper_id: str, start_ms: int, end_ms: int) -> Coverage:
    """The windows of `shipper_id` starting in [start_ms, end_ms)."""
    if start_ms >= end_ms:
        raise invalid("start_time must be earlier than end_time")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise invalid("a timeline covers at most 7 days")
    shipper = get_shipper(ctx, shipper_id)
    expected = (end_ms - start_ms) // (shipper.config.interval * 1000)
    if expected > MAX_WINDOWS:
        raise invalid(f"this range holds about {expected} windows of "
                      f"{shipper.config.interval} s; choose a range of at most "
                      f"{MAX_WINDOWS} windows")
    with ctx.db.read() as conn:
        rows = ledger.window_statuses(conn, shipper_id, start_ms, end_ms)
    return Coverage(shipper, start_ms, end_ms, [Window(*row) for row in rows])


def first_window_ms(shipper: Shipper) -> int:
    """Where the shipper's windows begin: the window holding its StartTime, or its
    creation."""
    return align_down(shipper.start_ms or shipper.created_ms, shipper.config.interval)


def retry_failed_in(ctx: Context, shipper_id: str, start_ms: int, end_ms: int,
                    reload_config: bool = False) -> int:
    """Retry the failed windows starting in [start_ms, end_ms), each as the API's retry
    does; returns how many were queued again (one retried meanwhile is skipped)."""
    found = coverage(ctx, shipper_id, start_ms, end_ms)
    retried = 0
    for task in found.windows:
        if task.status != TaskStatus.FAILED.value:
            continue
        try:
            tasks.retry(ctx, shipper_id, task.task_id, reload_config)
        except ServiceError as exc:
            if exc.kind is not Kinds.TASK_READ_ONLY:
                raise
            continue
        retried += 1
    return retried


def details(ctx: Context, shipper_id: str, rows: Sequence[Window]) -> list[TaskDetail]:
    """The listed tasks with their counters and objects, in the same order: one range read
    when they lie close together (a page of the table), else one lookup each (a filtered
    page spread over the range), so neither case decodes more than a few pages of tasks."""
    if not rows:
        return []
    first = min(r.range_start_ms for r in rows)
    last = max(r.range_start_ms for r in rows)
    interval_ms = min(r.range_end_ms - r.range_start_ms for r in rows) or 1
    if (last - first) // interval_ms <= 4 * len(rows):
        with ctx.db.read() as conn:
            found = {t.task_id: t for t in ledger.windows_starting_in(conn, shipper_id,
                                                                      first, last)}
        return [found[r.task_id] for r in rows if r.task_id in found]
    return [tasks.get_task(ctx, shipper_id, r.task_id) for r in rows]
