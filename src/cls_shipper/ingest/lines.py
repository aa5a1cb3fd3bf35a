"""Upload bodies from text lines, for `cls-shipper upload`: each line one Log, a JSON
object's fields as its contents (non-string values as their JSON text), any other line whole
under CLS's `__CONTENT__` key; blank lines skipped; every Log stamped with the time it was
read. Lines are cut into batches of at most `batch_size` logs and `BATCH_VALUE_BYTES` of
values, each one LogGroupList of one LogGroup, serialised as the SDK's classes would.

The C walk (`_wire.encode_lines`) builds a whole batch's bytes in one call per block of the
file, so no Python runs per line; it decides the common lines itself (valid UTF-8, a JSON
object of string, integer, true/false/null values) and calls `decide` for any other, so the
rules live here once. Without the extension, `_python_batches` does the same per line."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import orjson

from cls_shipper.errors import LineError
from cls_shipper.ingest.native import wire
from cls_shipper.ingest.schema import MAX_GROUP_VALUE_BYTES

Mode = Literal["auto", "raw", "json"]
_MODES: dict[Mode, int] = {"auto": 0, "raw": 1, "json": 2}  # _wire.c's LINES_* codes

# Stay clear of the 5 MiB-per-LogGroup limit with the keys and framing on top of the values.
BATCH_VALUE_BYTES = MAX_GROUP_VALUE_BYTES - (512 << 10)
# Read size: many lines per C call, a bounded buffer (a line longer than this grows it).
READ_BYTES = 1 << 20


def contents(line: str, fmt: Mode) -> dict[str, str]:
    """A line's contents: a JSON object's fields (non-string values as JSON text), or the
    whole line under CLS's own `__CONTENT__` key."""
    if fmt != "raw" and line.startswith("{"):
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and data:
            return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode()
                    for k, v in data.items()}
    if fmt == "json":
        raise LineError(f"not a JSON object: {line[:80]!r}")
    return {"__CONTENT__": line}


def decide(raw: bytes, fmt: Mode) -> dict[str, str] | None:
    """One line of the file (its line break left out or not): None if blank, else its
    contents. Undecodable bytes become U+FFFD."""
    line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    if not line.strip():
        return None
    return contents(line, fmt)


@dataclass
class Batch:
    payload: bytes  # a serialised LogGroupList, not compressed
    logs: int
    file_bytes: int  # bytes of the file behind this batch, blank lines included


@dataclass
class _Pending:
    pieces: list[bytes] = field(default_factory=list)
    logs: int = 0
    value_bytes: int = 0
    file_bytes: int = 0


def _string_field(number: int, value: str) -> bytes:
    data = value.encode()
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def batches(stream: io.BufferedIOBase, filename: str, hostname: str, fmt: Mode,
            batch_size: int) -> Iterator[Batch]:
    """The stream's lines as upload batches; the last one may hold no log (blank lines)."""
    if wire is None:
        yield from _python_batches(stream, filename, hostname, fmt, batch_size)
        return
    # LogGroup fields after `logs` (1), in field order as protobuf writes them.
    tail = _string_field(3, filename) + _string_field(6, hostname)

    def done(batch: _Pending) -> Batch:
        group = b"".join([*batch.pieces, tail])
        payload = b"\x0a" + _varint(len(group)) + group  # LogGroupList.logGroupList
        return Batch(payload, batch.logs, batch.file_bytes)

    def fallback(raw: bytes) -> dict[str, str] | None:
        return decide(raw, fmt)

    mode = _MODES[fmt]
    buf, pos, eof = b"", 0, False
    batch = _Pending()
    while True:
        data, logs, value_bytes, end, full = wire.encode_lines(
            buf, pos, eof, mode, batch_size - batch.logs, BATCH_VALUE_BYTES - batch.value_bytes,
            batch.logs > 0, fallback)
        if logs:
            batch.pieces.append(data)
            batch.logs += logs
            batch.value_bytes += value_bytes
        batch.file_bytes += end - pos
        pos = end
        if full:
            yield done(batch)
            batch = _Pending()
        elif eof:
            if batch.logs or batch.file_bytes:
                yield done(batch)
            return
        else:  # the rest is a partial line: read on
            piece = stream.read1(READ_BYTES)
            eof = not piece
            buf, pos = buf[pos:] + piece, 0


def _python_batches(stream: io.BufferedIOBase, filename: str, hostname: str, fmt: Mode,
                    batch_size: int) -> Iterator[Batch]:
    from cls_shipper.ingest import cls_pb

    def fresh() -> tuple[cls_pb.LogGroupList, cls_pb.LogGroup]:
        group_list = cls_pb.LogGroupList()
        group = group_list.logGroupList.add()
        group.filename, group.hostname = filename, hostname
        return group_list, group

    group_list, group = fresh()
    logs = value_bytes = consumed = 0
    for raw in stream:
        found = decide(raw, fmt)
        if found is None:
            consumed += len(raw)
            continue
        size = sum(len(v.encode()) for v in found.values())
        if logs and (logs >= batch_size or value_bytes + size > BATCH_VALUE_BYTES):
            yield Batch(group_list.SerializeToString(), logs, consumed)
            (group_list, group), logs, value_bytes, consumed = fresh(), 0, 0, 0
        consumed += len(raw)
        log = group.logs.add()
        log.time = time.time_ns() // 1_000_000
        for key, value in found.items():
            item = log.contents.add()
            item.key, item.value = key, value
        logs += 1
        value_bytes += size
    if logs or consumed:
        yield Batch(group_list.SerializeToString(), logs, consumed)
