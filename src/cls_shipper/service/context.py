"""What every service operation needs: the database and the settings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from cls_shipper.auth.keys import KeyCache
from cls_shipper.config import Settings
from cls_shipper.store import Database


@dataclass
class Context:
    db: Database
    settings: Settings
    keys: KeyCache = field(init=False)

    def __post_init__(self) -> None:
        self.keys = KeyCache(self.db)

    @property
    def zone(self) -> ZoneInfo:
        return self.settings.zone


def new_id() -> str:
    return str(uuid.uuid4())
