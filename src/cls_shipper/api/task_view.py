"""What both surfaces read off a service task beyond plain attributes. The task's shape is
changing (shipped objects, the config snapshot and the status becoming typed values), so
each read lives here once and the surfaces' field maps go through these."""

from __future__ import annotations

from typing import Any

from cls_shipper.service.tasks import Task


def objects_of(task: Task) -> list[dict[str, Any]]:
    """The objects a task wrote, as JSON objects."""
    return task.objects


def config_of(task: Task) -> dict[str, Any]:
    """The shipper config the task ships with, as stored (snake_case)."""
    return task.config


def is_queued(task: Task) -> bool:
    """Whether the task waits for a worker (a first run or a retry)."""
    return task.status == "wait"
