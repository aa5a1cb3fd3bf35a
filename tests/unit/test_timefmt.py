"""Legacy time strings: the cached-offset path says exactly what the zone says."""

from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

from cls_shipper.timefmt import LEGACY_FORMAT, format_legacy


def _reference(ms: int, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=zone).strftime(LEGACY_FORMAT)


def test_every_zone_matches_the_zone_database() -> None:
    rng = random.Random(13)
    zones = [ZoneInfo(name) for name in sorted(available_timezones())]
    for _ in range(50_000):
        zone = rng.choice(zones)
        ms = rng.randint(0, 4_102_444_800_000)  # 1970 to 2100
        assert format_legacy(ms, zone) == _reference(ms, zone), (zone, ms)


def test_around_offset_changes() -> None:
    # Each second around a DST change, a half-hour zone's, and a quarter-hour zone's.
    cases = [("Europe/Berlin", 1_711_846_800_000), ("Europe/Berlin", 1_729_990_800_000),
             ("Australia/Lord_Howe", 1_712_417_400_000), ("Asia/Kathmandu", 504_901_800_000),
             ("America/New_York", 1_710_054_000_000)]
    for name, change in cases:
        zone = ZoneInfo(name)
        for ms in range(change - 3_600_000, change + 3_600_000, 997):
            assert format_legacy(ms, zone) == _reference(ms, zone), (name, ms)


def test_not_happened_yet_is_empty() -> None:
    assert format_legacy(None, ZoneInfo("UTC")) == ""
