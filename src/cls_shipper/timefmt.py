"""Time conversions. Internally every instant is epoch milliseconds (UTC); the legacy API
speaks `YYYY-MM-DD HH:MM:SS` in the server's zone (spec §9)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import lru_cache

LEGACY_FORMAT = "%Y-%m-%d %H:%M:%S"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# A zone's offset is looked up once per quarter hour of UTC time (every offset change of the
# tz database falls on a quarter hour): a listing formats thousands of times, and asking
# the zone for each costs more than the rest of the answer.
_QUARTER_S = 900
_EPOCH_DAY = date(1970, 1, 1).toordinal()
# `HH:MM:` of every minute of a day and `SS` of every second: joining strings is cheaper than
# formatting numbers.
_CLOCK_MINUTES = [f"{h:02d}:{m:02d}:" for h in range(24) for m in range(60)]
_CLOCK_SECONDS = [f"{s:02d}" for s in range(60)]


@lru_cache(maxsize=8192)
def _offset_s(zone: tzinfo, quarter: int) -> int | None:
    """The zone's UTC offset in seconds throughout this quarter hour; None if it changes
    within it (then each instant is converted on its own)."""
    first = datetime.fromtimestamp(quarter * _QUARTER_S, tz=zone).utcoffset()
    last = datetime.fromtimestamp(quarter * _QUARTER_S + _QUARTER_S - 1, tz=zone).utcoffset()
    if first is None or first != last or first.microseconds:
        return None
    return first.days * 86_400 + first.seconds


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    """`YYYY-MM-DD ` of a day counted from 1970-01-01."""
    return date.fromordinal(_EPOCH_DAY + day).strftime("%Y-%m-%d ")


def format_legacy(ms: int | None, zone: tzinfo) -> str:
    """A legacy datetime string; the empty string for "not happened yet"."""
    if ms is None:
        return ""
    seconds = ms // 1000
    offset = _offset_s(zone, seconds // _QUARTER_S)
    if offset is None:
        return datetime.fromtimestamp(ms / 1000, tz=zone).strftime(LEGACY_FORMAT)
    day, second = divmod(seconds + offset, 86_400)
    return _day_prefix(day) + _CLOCK_MINUTES[second // 60] + _CLOCK_SECONDS[second % 60]


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
