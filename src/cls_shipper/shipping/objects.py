"""Object keys: `prefix + strftime(partition, window start) + file name`, a pure function of
(shipper, window, part) — so a retry or a restart rewrites the same keys, never new ones."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cls_shipper.timefmt import parse_utc_offset

_SLASHES = re.compile(r"/{2,}")


def resolve_zone(name: str) -> tzinfo:
    """A task's zone: `UTC+08:00` style (API 3.0 TimeZone) or an IANA name (the server's)."""
    if name[:3] in ("UTC", "GMT") and len(name) == 9:
        return parse_utc_offset(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def shipper_token(shipper_id: str) -> str:
    return hashlib.sha256(shipper_id.encode()).hexdigest()[:8]


def window_token(shipper_id: str, range_start_ms: int) -> str:
    """The legacy name's `{random}`: looks random, but is derived from the window."""
    digest = hashlib.sha256(f"{shipper_id}:{range_start_ms}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big"))


def window_key_pattern(*, shipper_id: str, prefix: str, partition: str, zone: tzinfo,
                       range_start_ms: int, extension: str, filename_mode: int,
                       first_offset: int) -> re.Pattern[str]:
    """Matches the keys of every part `object_key` can give this window, and no other."""
    first = object_key(shipper_id=shipper_id, prefix=prefix, partition=partition, zone=zone,
                       range_start_ms=range_start_ms, part=0, extension=extension,
                       filename_mode=filename_mode, first_offset=first_offset)
    stem = first[:len(first) - len(extension) - (0 if filename_mode == 1 else 1)]
    parts = r"(?:-\d+)?" if filename_mode == 1 else r"\d+"
    return re.compile(re.escape(stem) + parts + re.escape(extension) + "$")


def object_key(*, shipper_id: str, prefix: str, partition: str, zone: tzinfo,
               range_start_ms: int, part: int, extension: str, filename_mode: int,
               first_offset: int) -> str:
    start = datetime.fromtimestamp(range_start_ms / 1000, tz=zone)
    if filename_mode == 1:
        # Shipping-time naming, {YYYYMMDDHHMM}_{partition}_{offset}: the "shipping time" is
        # the window start, which keeps the name deterministic; later parts get a suffix.
        # A token of the shipper follows: CLS's form alone names no shipper or topic, so two
        # shippers sharing a bucket and prefix would overwrite each other's objects.
        name = f"{start:%Y%m%d%H%M}_000_{first_offset}_{shipper_token(shipper_id)}"
        if part:
            name += f"-{part}"
    else:
        name = f"_{window_token(shipper_id, range_start_ms)}_{part}"
    path = prefix + start.strftime(partition) if partition else prefix
    if filename_mode == 1 and path and not path.endswith("/"):
        path += "/"
    key = _SLASHES.sub("/", path + name + extension)
    return key.lstrip("/")
