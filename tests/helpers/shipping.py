"""Helpers for end-to-end shipping tests: waiting on the ledger, reading objects back with
independent readers."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import cramjam
import lz4.frame
import orjson
import pyarrow.parquet as pq
import zstandard

from tests.helpers.server import LegacyClient

ZONE = ZoneInfo("Asia/Shanghai")


def legacy(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ZONE).strftime("%Y-%m-%d %H:%M:%S")


def parse_legacy(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZONE)
               .timestamp() * 1000)


def tasks_of(client: LegacyClient, shipper_id: str) -> list[dict[str, str]]:
    now = time.time() * 1000
    listed: list[dict[str, str]] = client.call("GET", "/tasks", {
        "shipper_id": shipper_id, "start_time": legacy(now - 3_600_000),
        "end_time": legacy(now + 60_000)})["tasks"]
    return listed


def wait_shipped(client: LegacyClient, shipper_id: str, through_ms: float,
                 timeout: float = 90.0, allow_failed: bool = False) -> list[dict[str, str]]:
    """Wait until the windows up to `through_ms` are all finished (success, or failed if
    allowed); return the tasks. Fails the test with the ledger's state on timeout."""
    deadline = time.monotonic() + timeout
    done = ("success", "failed") if allow_failed else ("success",)
    listed: list[dict[str, str]] = []
    while time.monotonic() < deadline:
        listed = tasks_of(client, shipper_id)
        covered = [t for t in listed if parse_legacy(t["range_start"]) <= through_ms]
        if (covered and max(parse_legacy(t["range_end"]) for t in covered) > through_ms
                and all(t["status"] in done for t in covered)):
            return listed
        time.sleep(0.3)
    raise AssertionError(f"windows through {legacy(through_ms)} not shipped in {timeout}s: "
                         f"{[(t['range_start'], t['status'], t['message']) for t in listed]}")


def decompress(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        # The gzip tool itself, as a user's zcat would: the container is standard gzip
        # whichever deflate implementation wrote it.
        subprocess.run(["gzip", "-t"], input=data, check=True, capture_output=True)
        out = subprocess.run(["gzip", "-dc"], input=data, check=True,
                             capture_output=True).stdout
        assert out == gzip.decompress(data)
        return out
    if codec == "lzop":
        subprocess.run(["lzop", "-t", "-"], input=data, check=True, capture_output=True)
        return subprocess.run(["lzop", "-dc", "-"], input=data, check=True,
                              capture_output=True).stdout
    if codec == "snappy":
        return bytes(cramjam.snappy.decompress(data))
    if codec == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if codec == "lz4":
        return bytes(lz4.frame.decompress(data))
    assert codec == "none"
    return data


def read_records(data: bytes, fmt: str, codec: str,
                 csv_keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Every record of one object, each as a dict, by a reader that is not ours."""
    if fmt == "parquet":
        return list(pq.read_table(io.BytesIO(data), use_threads=False).to_pylist())
    text = decompress(data, codec).decode()
    if fmt == "json":
        return [orjson.loads(line) for line in text.splitlines() if line]
    assert csv_keys is not None
    rows = list(csv.reader(io.StringIO(text), delimiter=",", quotechar='"'))
    return [dict(zip(csv_keys, row, strict=True)) for row in rows]
