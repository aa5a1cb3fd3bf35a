"""Encoding one shipping window: stored chunks in, one or more compressed objects out.

Records stream through in LogGroup-sized batches: decode, filter, encode, then feed the codec
in pieces of at least 256 KiB (whole groups) and hand the compressed bytes to the part's
writer in pieces of at most 4 MiB. Nothing holds more than one LogGroup of records plus those
buffers (and, for Parquet, one bounded row group), so memory stays flat however large the
window is.

A part (one object) is closed as soon as its raw bytes (the uncompressed encoding: JSON
lines or CSV including the header; for Parquet see parquetfmt) reach the limit, so every
object but the last holds at least `max_part_raw_bytes` and exceeds it by less than one
record; records are never split. Each part is a complete file (CSV header repeated, Parquet
footer written). The output is a pure function of the input and the config, so a retried
task rewrites identical objects.

JSON lines with JsonType 0 and no filter rules, the common case, skip the Python records:
the C extension (`cls_shipper._wire`) transcodes each stored chunk straight to JSON lines,
the same bytes jsonlines.py writes, ~6x faster. They are fed to the codec in the same
group-sized steps as the Python path, so the objects are identical either way. A chunk the
extension leaves alone (and every chunk without it) takes the Python path.

No record can block a window. When a format raises on a batch (one LogGroup), the batch is
encoded again record by record, from a fresh decode of its chunk, and each record the format
still refuses goes to the window's rejects object instead: one JSON line with the record as
stored, its offset in the topic and the reason. Everything else ships as usual. The common
path pays nothing for this (one try per batch); the rejects object is a pure function of the
window like the parts, so a retry rewrites it with the same bytes."""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import orjson

from cls_shipper.errors import FormatError, ServiceError
from cls_shipper.formats.compression import make_compressor
from cls_shipper.formats.csvfmt import CsvEncoder
from cls_shipper.formats.filters import RecordFilter
from cls_shipper.formats.jsonlines import JsonLinesEncoder
from cls_shipper.formats.memory import tune_allocator
from cls_shipper.formats.records import Batch, StoredChunk, iter_batches
from cls_shipper.ingest.native import wire as _wire  # None without a compiler
from cls_shipper.model.objects import ObjectWriter, WrittenObject
from cls_shipper.model.shipper import LEGACY_JSON, JsonInfo, ShipperConfig, check_combination

if TYPE_CHECKING:
    from cls_shipper.formats.parquetfmt import ParquetEncoder, ParquetFile, ParquetRows

__all__ = ["Chunk", "PartResult", "RejectsResult", "WindowResult", "encode_window"]

MIB = 1024 * 1024
# Raw bytes gathered before each call into the codec. A group at least this large (an
# upload's worth of records, as the C transcoder hands it over) is fed as it is, without
# being copied into a larger piece; smaller ones are joined until they reach it.
RAW_FEED_BYTES = 256 * 1024
WRITE_BYTES = 1 * MIB  # compressed bytes gathered before a write to the part writer
MAX_WRITE_BYTES = 4 * MIB  # no single write to a part writer is larger


@dataclass
class PartResult:
    index: int
    records: int
    raw_bytes: int
    written: WrittenObject  # what the part's writer reported when it closed


@dataclass
class RejectsResult:
    records: int
    raw_bytes: int  # the uncompressed JSON lines
    written: WrittenObject


@dataclass
class WindowResult:
    records: int  # records shipped
    records_filtered: int  # records the filter rules dropped
    raw_bytes: int
    out_bytes: int  # bytes handed to the object writers, the rejects object's included
    parts: list[PartResult] = field(default_factory=list)
    records_rejected: int = 0  # records no format could write, in `rejects`
    rejects: RejectsResult | None = None


# A stored chunk as the window encoder takes it: the LogGroupList bytes, the uploader's IP
# (the source of groups without one) and the topic offset of its first record.
Chunk = tuple[bytes, str, int]


class _Output:
    """Gathers a part's final bytes and passes them on in bounded pieces. Also the file
    object pyarrow writes Parquet into (it needs write/flush/close/closed)."""

    closed = False

    def __init__(self, writer: ObjectWriter) -> None:
        self._writer = writer
        self._pending: list[bytes] = []
        self._pending_len = 0
        self.total = 0

    def write(self, data: bytes) -> int:
        size = len(data)
        if size:
            self._pending.append(bytes(data))
            self._pending_len += size
            if self._pending_len >= WRITE_BYTES:
                self.drain()
        return size

    def drain(self) -> None:
        if not self._pending_len:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_len = 0
        self.total += len(data)
        if len(data) <= MAX_WRITE_BYTES:
            self._writer.write(data)
            return
        view = memoryview(data)
        for at in range(0, len(data), MAX_WRITE_BYTES):
            self._writer.write(bytes(view[at:at + MAX_WRITE_BYTES]))

    def flush(self) -> None:
        """pyarrow calls this; passing bytes on early would only make writes smaller."""

    def close(self) -> None:
        """pyarrow may call this; the part's writer is closed by the window loop."""


E = TypeVar("E")
E_in = TypeVar("E_in", contravariant=True)


class _Lines:
    """JSON lines of one chunk from the C transcoder: one buffer, where each record ends."""

    __slots__ = ("data", "ends")

    def __init__(self, data: bytes, ends: list[int]) -> None:
        self.data = data
        self.ends = ends

    def slice(self, start: int, end: int) -> bytes:
        low = self.ends[start - 1] if start else 0
        high = self.ends[end - 1]
        return self.data if low == 0 and high == len(self.data) else self.data[low:high]


class _Body(Protocol[E_in]):
    def add(self, encoded: E_in, start: int, end: int, raw_bytes: int) -> None: ...

    def finish(self) -> None: ...


class _Format(Protocol[E]):
    def encode(self, batch: Batch) -> tuple[E, list[int]]:
        """The encoded records and, for each, the raw bytes up to its end."""
        ...

    def open(self, output: _Output) -> tuple[_Body[E], int]:
        """The body of a new part and the raw bytes already in it (a CSV header)."""
        ...


class _LineBody:
    def __init__(self, header: bytes, codec: str, output: _Output) -> None:
        self._compressor = make_compressor(codec)
        self._output = output
        self._pending: list[bytes] = [header] if header else []
        self._pending_len = len(header)

    def add(self, encoded: list[bytes] | _Lines, start: int, end: int, raw_bytes: int) -> None:
        if isinstance(encoded, _Lines):
            self._pending.append(encoded.slice(start, end))
        else:
            self._pending.extend(encoded if start == 0 and end == len(encoded)
                                 else encoded[start:end])
        self._pending_len += raw_bytes
        if self._pending_len >= RAW_FEED_BYTES:
            self._feed()

    def _feed(self) -> None:
        data = b"".join(self._pending)
        self._pending = []
        self._pending_len = 0
        self._output.write(self._compressor.compress(data))

    def finish(self) -> None:
        if self._pending:
            self._feed()
        self._output.write(self._compressor.finish())


class _LineFormat:
    def __init__(self, encoder: JsonLinesEncoder | CsvEncoder, codec: str) -> None:
        self._encoder = encoder
        self._codec = codec

    def encode(self, batch: Batch) -> tuple[list[bytes], list[int]]:
        lines = self._encoder.encode(batch)
        return lines, list(accumulate(map(len, lines)))

    def open(self, output: _Output) -> tuple[_LineBody, int]:
        header = self._encoder.header
        return _LineBody(header, self._codec, output), len(header)


class _ParquetFormat:
    def __init__(self, encoder: ParquetEncoder) -> None:
        self._encoder = encoder

    def encode(self, batch: Batch) -> tuple[ParquetRows, list[int]]:
        rows = self._encoder.encode(batch)
        return rows, list(accumulate(rows.sizes))

    def open(self, output: _Output) -> tuple[ParquetFile, int]:
        return self._encoder.open(output), 0


class _Rejects:
    """The window's rejects object: JSON lines in the window's codec, opened at the first
    rejected record, so a window without one writes nothing."""

    def __init__(self, open_rejects: Callable[[], ObjectWriter], codec: str) -> None:
        self._open = open_rejects
        self._codec = codec
        self._writer: ObjectWriter | None = None
        self._body: _LineBody | None = None
        self.output: _Output | None = None
        self.records = 0
        self.raw = 0

    def add(self, stored: dict[str, Any], offset: int, exc: Exception) -> None:
        line = orjson.dumps({**stored, "offset": offset, "reason": _reason(exc)},
                            option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
        if self._body is None:
            self._writer = self._open()
            self.output = _Output(self._writer)
            self._body = _LineBody(b"", self._codec, self.output)
        self._body.add([line], 0, 1, len(line))
        self.records += 1
        self.raw += len(line)

    def close(self) -> RejectsResult | None:
        if self._body is None or self._writer is None or self.output is None:
            return None
        self._body.finish()
        self.output.drain()
        return RejectsResult(self.records, self.raw, self._writer.close())

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()


def _reason(exc: Exception) -> str:
    """Why a record was rejected: the exception's type and text (no traceback, which would
    name paths and line numbers and change the bytes from one release to the next)."""
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _transcodable(config: ShipperConfig, record_filter: RecordFilter) -> JsonInfo | None:
    """The JSON settings when the C transcoder can encode this shipper's records."""
    info = config.content.json or LEGACY_JSON
    if (_wire is None or config.content.format != "json" or info.json_type != 0
            or record_filter.active):
        return None
    return info


def _format(config: ShipperConfig) -> _LineFormat | _ParquetFormat:
    try:
        check_combination(config.content.format, config.compress)
    except ServiceError as exc:
        raise FormatError(exc.message) from None
    content = config.content
    if content.format == "json":
        return _LineFormat(JsonLinesEncoder(content.json or LEGACY_JSON), config.compress)
    if content.format == "csv":
        if content.csv is None:
            raise FormatError("csv content has no csv_info")
        return _LineFormat(CsvEncoder(content.csv), config.compress)
    if content.parquet is None:
        raise FormatError("parquet content has no ParquetKeyInfo")
    # Imported here: pyarrow costs every server and worker process about 12 MiB of private
    # memory, which only a Parquet shipper's window needs.
    from cls_shipper.formats.parquetfmt import ParquetEncoder

    return _ParquetFormat(ParquetEncoder(content.parquet, config.compress))


class _Part(Generic[E]):
    def __init__(self, index: int, writer: ObjectWriter, fmt: _Format[E]) -> None:
        self.index = index
        self.writer = writer
        self.output = _Output(writer)
        self.body, self.raw = fmt.open(self.output)
        self.records = 0

    def add(self, encoded: E, start: int, end: int, raw_bytes: int) -> None:
        self.body.add(encoded, start, end, raw_bytes)
        self.records += end - start
        self.raw += raw_bytes

    def close(self) -> PartResult:
        self.body.finish()
        self.output.drain()
        return PartResult(self.index, self.records, self.raw, self.writer.close())


def encode_window(payloads: Iterable[Chunk], config: ShipperConfig,
                  open_part: Callable[[int], ObjectWriter],
                  max_part_raw_bytes: int | None = None,
                  open_rejects: Callable[[], ObjectWriter] | None = None) -> WindowResult:
    """Encode the chunks of one window, `(LogGroupList bytes, client_ip, first offset)` in
    offset order, into parts 0, 1, 2… opened with `open_part`. No records (after filtering),
    no parts. A record the format cannot write goes to the object `open_rejects` opens (at
    most once); without `open_rejects` its error propagates instead. On any other error the
    open objects are aborted and the error propagates; parts already closed stay written (a
    retry rewrites the same keys with the same bytes)."""
    limit = config.max_size * MIB if max_part_raw_bytes is None else max_part_raw_bytes
    if limit <= 0:
        raise ValueError("max_part_raw_bytes must be positive")
    tune_allocator()  # once per process; halves the CPU cost of encoding (see memory.py)
    fmt: _Format[object] = _format(config)  # type: ignore[assignment]
    record_filter = RecordFilter(config.filter_rules)
    json_info = _transcodable(config, record_filter)
    rejects = None if open_rejects is None else _Rejects(open_rejects, config.compress)
    result = WindowResult(0, 0, 0, 0)
    part: _Part[object] | None = None

    def place(encoded: object, ends: list[int], start: int, stop: int) -> None:
        """Records start..stop-1 of `encoded` into parts; ends[i]: raw bytes up to record i's
        end, counted from the start of `encoded`."""
        nonlocal part
        while start < stop:
            if part is None:
                part = _Part(len(result.parts), open_part(len(result.parts)), fmt)
            base = ends[start - 1] if start else 0
            remaining = ends[stop - 1] - base
            room = limit - part.raw
            if remaining < room:
                part.add(encoded, start, stop, remaining)
                return
            # Take records until the part reaches the limit (at least one record).
            take = bisect_left(ends, base + room, start, stop) + 1
            part.add(encoded, start, take, ends[take - 1] - base)
            start = take
            _finish(part, result)
            part = None

    def isolate(chunk: StoredChunk, ordinal: int, first_offset: int,
                rejected: _Rejects) -> None:
        """Group `ordinal` of `chunk`, whose batch the format refused, record by record: what
        it can write is placed in order, the rest is rejected."""
        batch = chunk.batch(ordinal)
        keep = record_filter.keeps(batch) if record_filter.active else None
        for index, (ms, row) in enumerate(zip(batch.times, batch.rows, strict=True)):
            if keep is not None and not keep[index]:
                continue  # counted as filtered when the whole batch went through the filter
            try:
                encoded, ends = fmt.encode(Batch(batch.meta, [ms], [row]))
            # Whatever an encoder raises on one record is that record's fault, by the rule
            # that no record blocks a window; the reason names the error for the user.
            except Exception as exc:  # noqa: BLE001
                rejected.add(chunk.stored(ordinal, index, batch.meta),
                             first_offset + index, exc)
            else:
                place(encoded, ends, 0, 1)

    try:
        for payload, client_ip, first_offset in payloads:
            if json_info is not None and _wire is not None:
                try:
                    data, ends, groups = _wire.encode_json_lines(
                        payload, client_ip, json_info.meta_fields, json_info.enable_tag)
                except _wire.Unsupported:
                    pass  # odd input (see _wire.c): the Python path below decides
                else:
                    lines, start = _Lines(data, ends), 0
                    for stop in groups:  # group by group, as the Python path feeds the codec
                        place(lines, ends, start, stop)
                        start = stop
                    continue
            offset = first_offset
            stored: StoredChunk | None = None  # parsed again only when a batch is refused
            for ordinal, batch in enumerate(iter_batches(payload, client_ip)):
                size = len(batch)
                batch = record_filter.apply(batch)
                if len(batch):
                    try:
                        encoded, batch_ends = fmt.encode(batch)
                    except Exception:
                        if rejects is None:
                            raise
                        stored = stored or StoredChunk(payload, client_ip)
                        isolate(stored, ordinal, offset, rejects)
                    else:
                        place(encoded, batch_ends, 0, len(batch))
                offset += size
        if part is not None:
            _finish(part, result)
            part = None
        if rejects is not None:
            result.rejects = rejects.close()
    except BaseException:
        # The error being raised is the one to report; a failing abort must not hide it.
        if part is not None:
            with contextlib.suppress(Exception):
                part.writer.abort()
        if rejects is not None:
            with contextlib.suppress(Exception):
                rejects.abort()
        raise
    result.records_filtered = record_filter.dropped
    if result.rejects is not None and rejects is not None and rejects.output is not None:
        result.records_rejected = result.rejects.records
        result.out_bytes += rejects.output.total
    return result


def _finish(part: _Part[object], result: WindowResult) -> None:
    done = part.close()
    result.parts.append(done)
    result.records += done.records
    result.raw_bytes += done.raw_bytes
    result.out_bytes += part.output.total
