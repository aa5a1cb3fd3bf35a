"""What every service operation needs: the database and the settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cls_shipper.auth.keys import KeyCache
from cls_shipper.model.task import CountedTask, Task
from cls_shipper.service.task_cache import FinalTasks
from cls_shipper.settings import Settings
from cls_shipper.sinks import Sink, open_sink
from cls_shipper.store import Database


@dataclass
class Context:
    db: Database
    settings: Settings
    keys: KeyCache = field(init=False)
    final_tasks: FinalTasks[Task] = field(init=False, default_factory=FinalTasks)
    # The same tasks with their counters, for detailed listings.
    final_counted_tasks: FinalTasks[CountedTask] = field(init=False,
                                                         default_factory=FinalTasks)
    _sink: Sink | None = field(init=False, default=None)
    _sink_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.keys = KeyCache(self.db)

    def sink(self) -> Sink:
        """The object store, opened on first use (API nodes only need it for audits)."""
        with self._sink_lock:
            if self._sink is None:
                self._sink = open_sink(self.settings.object_store_url)
            return self._sink

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone
