"""What every service operation needs: the database and the settings."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cls_shipper.auth.keys import KeyCache
from cls_shipper.config import Settings
from cls_shipper.errors import invalid
from cls_shipper.sinks import Sink, open_sink
from cls_shipper.store import Database


@dataclass
class Context:
    db: Database
    settings: Settings
    keys: KeyCache = field(init=False)
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


_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_id() -> str:
    return str(uuid.uuid4())


def check_custom_id(value: str, name: str) -> str:
    """A caller-chosen id (API 3.0 LogsetId / TopicId): what every id here may look like."""
    if not _CUSTOM_ID.fullmatch(value):
        raise invalid(f"{name} must be 1-64 letters, digits, '-' or '_'")
    return value
