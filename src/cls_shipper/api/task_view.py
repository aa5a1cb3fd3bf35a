"""What both surfaces read off a service task beyond plain attributes: the typed values the
ledger returns (shipped objects, the config snapshot, the status) as the wire shows them, once
for both surfaces' field maps."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import tzinfo
from typing import Any

import orjson

from cls_shipper.api.fieldmap import FieldMap
from cls_shipper.model.task import CountedTask, Task, TaskDetail, TaskStatus

# Rendered tasks a surface holds (about 5 MB with their keys): the listings of some twenty
# 300-second shippers over three days.
RENDERED_HELD = 20_000


def objects_of(task: TaskDetail) -> list[dict[str, Any]]:
    """The objects a task wrote, as JSON objects."""
    return [obj.to_dict() for obj in task.objects]


def config_of(task: TaskDetail) -> dict[str, Any]:
    """The shipper config the task ships with, as stored (snake_case)."""
    return task.config.to_dict()


def is_queued(task: Task | TaskDetail) -> bool:
    """Whether the task waits for a worker (a first run or a retry)."""
    return task.status is TaskStatus.WAIT


class RenderedTasks:
    """A surface's task listings as JSON, each task rendered once: a task is a tuple of the
    values the listing shows, so the task itself is the key, and a task that changed is
    another key (nothing to invalidate). Bounded: the oldest entries go first."""

    def __init__(self, fmap: FieldMap[Any], held: int = RENDERED_HELD) -> None:
        self._fmap = fmap
        self._held = held
        self._json: dict[tuple[Task | CountedTask, tzinfo], bytes] = {}
        self._lock = threading.Lock()  # writers only: a dict lookup is atomic

    def array(self, found: Sequence[Task | CountedTask], zone: tzinfo) -> orjson.Fragment:
        """The JSON array of `found`, to put in an answer as it is."""
        held = self._json
        parts: list[bytes] = []
        new: dict[tuple[Task | CountedTask, tzinfo], bytes] = {}
        for task in found:
            key = (task, zone)
            rendered = held.get(key)
            if rendered is None:
                rendered = new[key] = orjson.dumps(self._fmap.render(task, zone))
            parts.append(rendered)
        if new:
            self._remember(new)
        return orjson.Fragment(b"[" + b",".join(parts) + b"]")

    def _remember(self, new: dict[tuple[Task | CountedTask, tzinfo], bytes]) -> None:
        with self._lock:
            self._json.update(new)
            excess = len(self._json) - self._held
            if excess > 0:
                for key in list(self._json)[:excess]:  # insertion order: oldest first
                    del self._json[key]
