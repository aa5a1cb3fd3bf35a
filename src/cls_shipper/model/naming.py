"""How a window's objects are named and typed: one value, `ObjectNaming`, that the worker
writes with and the audit checks with.

Keys are `prefix + strftime(partition, window start) + file name`, a pure function of
(shipper, window, part), so a retry or a restart rewrites the same keys, never new ones.

Extensions follow CLS's one documented example (`…_132612782.gz`, spec §8.2) and §9: the
codec's extension alone for JSON lines and CSV, nothing for `none`; Parquet objects are
`.parquet` whatever the codec, because the codec is applied inside the file.

A window's rejects object (the records no format could write, see formats/encoder.py) sits
in the same directory as its parts, named like them with a leading `_`, a `_rejects` suffix
and `.jsonl` plus the codec's extension (`_{window token}_rejects.jsonl.gz`,
`_{YYYYMMDDHHMM}_000_{offset}_{shipper}_rejects.jsonl.gz`). The leading `_` is what Hive,
Spark, Trino and Athena skip when they read a directory as a table, so a JSON lines file of
another shape never lands in a table built on the parts."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.timefmt import parse_utc_offset

CODEC_EXTENSIONS = {
    "gzip": ".gz",
    "lzop": ".lzo",
    "snappy": ".snappy",
    "zstd": ".zst",
    "lz4": ".lz4",
    "none": "",
}
# A compressed object is typed as its container (a browser or `aws s3 cp` then saves it as
# is); declaring Content-Encoding instead would make HTTP clients decompress on download.
CODEC_MEDIA_TYPES = {
    "gzip": "application/gzip",
    "lzop": "application/x-lzop",
    "snappy": "application/x-snappy-framed",
    "zstd": "application/zstd",
    "lz4": "application/x-lz4",
}
FORMAT_MEDIA_TYPES = {
    "json": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}

_SLASHES = re.compile(r"/{2,}")


def file_extension(config: ShipperConfig) -> str:
    """The object name's extension, with its dot ("" for uncompressed JSON lines or CSV)."""
    if config.content.format == "parquet":
        return ".parquet"
    return CODEC_EXTENSIONS[config.compress]


def content_type(config: ShipperConfig) -> str:
    if config.content.format == "parquet" or config.compress == "none":
        return FORMAT_MEDIA_TYPES[config.content.format]
    return CODEC_MEDIA_TYPES[config.compress]


def rejects_content_type(config: ShipperConfig) -> str:
    """The rejects object is JSON lines in the shipper's codec, whatever the format (Parquet
    codecs are all stream codecs too)."""
    return CODEC_MEDIA_TYPES.get(config.compress, FORMAT_MEDIA_TYPES["json"])


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


@dataclass(frozen=True, slots=True)
class ObjectNaming:
    """The names and type of one window's objects. Build it with `for_window`; the task's
    config snapshot decides everything, so a retry names its objects as the first run did."""

    shipper_id: str
    range_start_ms: int
    prefix: str
    partition: str
    zone: tzinfo
    filename_mode: int  # 0: `_{window token}_{part}`; 1: `{YYYYMMDDHHMM}_000_{offset}_…`
    extension: str  # with its dot, or ""
    content_type: str
    rejects_extension: str  # `.jsonl` and the codec's extension
    rejects_content_type: str

    @classmethod
    def for_window(cls, shipper_id: str, range_start_ms: int,
                   config: ShipperConfig) -> ObjectNaming:
        return cls(shipper_id=shipper_id, range_start_ms=range_start_ms, prefix=config.prefix,
                   partition=config.partition, zone=resolve_zone(config.time_zone),
                   filename_mode=config.filename_mode, extension=file_extension(config),
                   content_type=content_type(config),
                   rejects_extension=".jsonl" + CODEC_EXTENSIONS[config.compress],
                   rejects_content_type=rejects_content_type(config))

    def key(self, part: int, first_offset: int) -> str:
        """The key of part `part`; `first_offset` (the window's first record) appears only in
        shipping-time names (filename_mode 1)."""
        return self._key(part, first_offset, rejects=False)

    def rejects_key(self, first_offset: int) -> str:
        """The key of the window's rejects object, in the directory of its parts."""
        return self._key(0, first_offset, rejects=True)

    def _key(self, part: int, first_offset: int, rejects: bool) -> str:
        start = datetime.fromtimestamp(self.range_start_ms / 1000, tz=self.zone)
        if self.filename_mode == 1:
            # Shipping-time naming, {YYYYMMDDHHMM}_{partition}_{offset}: the "shipping time"
            # is the window start, which keeps the name deterministic; later parts get a
            # suffix. A token of the shipper follows: CLS's form alone names no shipper or
            # topic, so two shippers sharing a bucket and prefix would overwrite each other.
            name = f"{start:%Y%m%d%H%M}_000_{first_offset}_{shipper_token(self.shipper_id)}"
            if rejects:
                name = "_" + name
            elif part:
                name += f"-{part}"
        else:
            name = f"_{window_token(self.shipper_id, self.range_start_ms)}_"
        if rejects:
            name += "_rejects" if self.filename_mode == 1 else "rejects"
        elif self.filename_mode != 1:
            name += str(part)
        path = self.prefix + start.strftime(self.partition) if self.partition else self.prefix
        if self.filename_mode == 1 and path and not path.endswith("/"):
            path += "/"
        extension = self.rejects_extension if rejects else self.extension
        key = _SLASHES.sub("/", path + name + extension)
        return key.lstrip("/")

    def pattern(self, first_offset: int) -> re.Pattern[str]:
        """Matches the keys of every part `key` can give this window and its rejects key, and
        no other."""
        first = self.key(0, first_offset)
        stem = first[:len(first) - len(self.extension) - (0 if self.filename_mode == 1 else 1)]
        # ASCII digits only (`\d` takes any Unicode digit) and `\Z`, not `$`, which would
        # also accept a key ending in a newline: callers `match` whole keys with it.
        parts = r"(?:-[0-9]+)?" if self.filename_mode == 1 else r"[0-9]+"
        return re.compile(f"(?:{re.escape(stem)}{parts}{re.escape(self.extension)}"
                          f"|{re.escape(self.rejects_key(first_offset))})\\Z")

    def listing_prefix(self, first_offset: int) -> str:
        """The prefix to list to find every object `pattern` can match (its directory)."""
        directory = self.key(0, first_offset).rpartition("/")[0]
        return directory + "/" if directory else ""
