"""Time conversions. Internally every instant is epoch milliseconds (UTC); the legacy API
speaks `YYYY-MM-DD HH:MM:SS` in the server's zone (spec §9)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo

LEGACY_FORMAT = "%Y-%m-%d %H:%M:%S"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def format_legacy(ms: int | None, zone: tzinfo) -> str:
    """A legacy datetime string; the empty string for "not happened yet"."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=zone).strftime(LEGACY_FORMAT)


def parse_legacy(text: str, zone: tzinfo) -> int:
    """Epoch ms of a legacy `YYYY-MM-DD HH:MM:SS` string; ValueError if malformed."""
    stripped = text.strip()
    parsed = datetime.strptime(stripped, LEGACY_FORMAT)
    if len(stripped) != 19 or not stripped.isascii():
        raise ValueError(f"expected YYYY-MM-DD HH:MM:SS, got {text!r}")
    if not 1970 <= parsed.year <= 9999:
        raise ValueError(f"year out of range (1970-9999): {text!r}")
    return int(parsed.replace(tzinfo=zone).timestamp() * 1000)


def parse_utc_offset(text: str) -> tzinfo:
    """`UTC+08:00` / `GMT-05:30` (API 3.0 TimeZone) as a fixed-offset zone; ValueError if bad."""
    body = text.strip()
    if body[:3] not in ("UTC", "GMT") or len(body) != 9 or body[3] not in "+-" or body[6] != ":":
        raise ValueError(f"time zone must look like UTC+08:00, got {text!r}")
    hours, minutes = int(body[4:6]), int(body[7:9])
    if hours > 14 or minutes not in (0, 15, 30, 45):
        raise ValueError(f"time zone offset out of range: {text!r}")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if body[3] == "-" else offset)


# Log.time in ms lies in [MS_LOW, MS_HIGH): below ~ year 5138 in seconds, above 1973 in ms.
MS_LOW = 100_000_000_000
MS_HIGH = 100_000_000_000_000


def normalise_log_time_ms(value: int) -> int:
    """CLS `Log.time` may be seconds, milliseconds or microseconds (spec §5.3): by magnitude."""
    if value < MS_LOW:
        return value * 1000
    if value < MS_HIGH:
        return value
    return value // 1000
