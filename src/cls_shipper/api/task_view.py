"""What both surfaces read off a service task beyond plain attributes: the typed values the
ledger returns (shipped objects, the config snapshot, the status) as the wire shows them, once
for both surfaces' field maps."""

from __future__ import annotations

from typing import Any

from cls_shipper.model.task import Task, TaskDetail, TaskStatus


def objects_of(task: TaskDetail) -> list[dict[str, Any]]:
    """The objects a task wrote, as JSON objects."""
    return [obj.to_dict() for obj in task.objects]


def config_of(task: TaskDetail) -> dict[str, Any]:
    """The shipper config the task ships with, as stored (snake_case)."""
    return task.config.to_dict()


def is_queued(task: Task) -> bool:
    """Whether the task waits for a worker (a first run or a retry)."""
    return task.status is TaskStatus.WAIT
