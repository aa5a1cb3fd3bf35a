"""Finished tasks a listing has read, by id: a task that succeeded never changes again (see
the ledger's transitions: `success` has none out), so a listing reads only the ids and
statuses of its page and the rows of the tasks it does not hold yet or that may still
change. A finished task's counters (records, objects, attempts) are final too, so a detailed
listing holds its tasks the same way, in a cache of its own. Bounded: the oldest entries go
first."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Generic, TypeVar

from cls_shipper.model.task import CountedTask, Task, TaskStatus

# About 12 MB: the three-day listings of some twenty 300-second shippers.
FINAL_TASKS_HELD = 20_000

T = TypeVar("T", Task, CountedTask)


class FinalTasks(Generic[T]):
    def __init__(self, held: int = FINAL_TASKS_HELD) -> None:
        self._held = held
        self._tasks: dict[str, T] = {}
        self._lock = threading.Lock()  # writers only: a dict lookup is atomic

    def get(self, task_id: str) -> T | None:
        return self._tasks.get(task_id)

    def remember(self, found: Iterable[T]) -> None:
        """Hold the finished ones among `found`."""
        final = [task for task in found if task.status is TaskStatus.SUCCESS]
        if not final:
            return
        with self._lock:
            for task in final:
                self._tasks[task.task_id] = task
            excess = len(self._tasks) - self._held
            if excess > 0:
                for task_id in list(self._tasks)[:excess]:  # insertion order: oldest first
                    del self._tasks[task_id]
