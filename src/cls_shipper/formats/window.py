"""Encoding one shipping window: stored chunks in, one or more compressed objects out.

Records stream through in LogGroup-sized batches: decode, filter, encode, then feed the codec
in ~1 MiB pieces and hand the compressed bytes to the part's writer in pieces of at most
4 MiB. Nothing holds more than one LogGroup of records plus those buffers (and, for Parquet,
one bounded row group), so memory stays flat however large the window is.

A part (one object) is closed as soon as its raw bytes (the uncompressed encoding: JSON
lines or CSV including the header; for Parquet see parquetfmt) reach the limit, so every
object but the last holds at least `max_part_raw_bytes` and exceeds it by less than one
record; records are never split. Each part is a complete file (CSV header repeated, Parquet
footer written). The output is a pure function of the input and the config, so a retried
task rewrites identical objects."""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from cls_shipper.errors import ServiceError
from cls_shipper.formats.catalog import check_combination, content_type, file_extension
from cls_shipper.formats.codecs import make_compressor
from cls_shipper.formats.csvfmt import CsvEncoder
from cls_shipper.formats.errors import FormatError
from cls_shipper.formats.filters import RecordFilter
from cls_shipper.formats.jsonlines import JsonLinesEncoder
from cls_shipper.formats.memory import tune_allocator
from cls_shipper.formats.parquetfmt import ParquetEncoder, ParquetFile, ParquetRows
from cls_shipper.formats.records import Batch, iter_batches
from cls_shipper.service.shipper_config import LEGACY_JSON, ShipperConfig

if TYPE_CHECKING:
    from cls_shipper.sinks.base import WrittenObject

__all__ = ["PartResult", "PartWriter", "WindowResult", "content_type", "encode_window",
           "file_extension"]

MIB = 1024 * 1024
RAW_FEED_BYTES = 1 * MIB  # raw bytes gathered before each call into the codec
WRITE_BYTES = 1 * MIB  # compressed bytes gathered before a write to the part writer
MAX_WRITE_BYTES = 4 * MIB  # no single write to a part writer is larger


class PartWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def close(self) -> WrittenObject: ...

    def abort(self) -> None: ...


@dataclass
class PartResult:
    index: int
    records: int
    raw_bytes: int
    written: object  # what PartWriter.close() returned


@dataclass
class WindowResult:
    records: int  # records shipped
    records_filtered: int  # records the filter rules dropped
    raw_bytes: int
    out_bytes: int  # bytes handed to the part writers
    parts: list[PartResult] = field(default_factory=list)


class _Output:
    """Gathers a part's final bytes and passes them on in bounded pieces. Also the file
    object pyarrow writes Parquet into (it needs write/flush/close/closed)."""

    closed = False

    def __init__(self, writer: PartWriter) -> None:
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


class _Body(Protocol[E_in]):
    def add(self, encoded: E_in, start: int, end: int, raw_bytes: int) -> None: ...

    def finish(self) -> None: ...


class _Format(Protocol[E]):
    def encode(self, batch: Batch) -> tuple[E, list[int]]: ...

    def open(self, output: _Output) -> tuple[_Body[E], int]:
        """The body of a new part and the raw bytes already in it (a CSV header)."""
        ...


class _LineBody:
    def __init__(self, header: bytes, codec: str, output: _Output) -> None:
        self._compressor = make_compressor(codec)
        self._output = output
        self._pending: list[bytes] = [header] if header else []
        self._pending_len = len(header)

    def add(self, encoded: list[bytes], start: int, end: int, raw_bytes: int) -> None:
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
        return lines, list(map(len, lines))

    def open(self, output: _Output) -> tuple[_LineBody, int]:
        header = self._encoder.header
        return _LineBody(header, self._codec, output), len(header)


class _ParquetFormat:
    def __init__(self, encoder: ParquetEncoder) -> None:
        self._encoder = encoder

    def encode(self, batch: Batch) -> tuple[ParquetRows, list[int]]:
        rows = self._encoder.encode(batch)
        return rows, rows.sizes

    def open(self, output: _Output) -> tuple[ParquetFile, int]:
        return self._encoder.open(output), 0


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
    return _ParquetFormat(ParquetEncoder(content.parquet, config.compress))


class _Part(Generic[E]):
    def __init__(self, index: int, writer: PartWriter, fmt: _Format[E]) -> None:
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


def encode_window(payloads: Iterable[tuple[bytes, str]], config: ShipperConfig,
                  open_part: Callable[[int], PartWriter],
                  max_part_raw_bytes: int | None = None) -> WindowResult:
    """Encode the chunks of one window, `(LogGroupList bytes, client_ip)` in offset order,
    into parts 0, 1, 2… opened with `open_part`. No records (after filtering), no parts.
    On any error the open part is aborted and the error propagates; parts already closed
    stay written (a retry rewrites the same keys with the same bytes)."""
    limit = config.max_size * MIB if max_part_raw_bytes is None else max_part_raw_bytes
    if limit <= 0:
        raise ValueError("max_part_raw_bytes must be positive")
    tune_allocator()  # once per process; halves the CPU cost of encoding (see memory.py)
    fmt: _Format[object] = _format(config)  # type: ignore[assignment]
    record_filter = RecordFilter(config.filter_rules)
    result = WindowResult(0, 0, 0, 0)
    part: _Part[object] | None = None
    try:
        for payload, client_ip in payloads:
            for batch in iter_batches(payload, client_ip):
                batch = record_filter.apply(batch)
                count = len(batch)
                if not count:
                    continue
                encoded, sizes = fmt.encode(batch)
                start = 0
                remaining = sum(sizes)
                while start < count:
                    if part is None:
                        part = _Part(len(result.parts), open_part(len(result.parts)), fmt)
                    room = limit - part.raw
                    if remaining < room:
                        part.add(encoded, start, count, remaining)
                        break
                    # Take records until the part reaches the limit (at least one record).
                    reached = list(accumulate(sizes[start:]))
                    take = max(1, bisect_left(reached, room) + 1)
                    taken = reached[take - 1]
                    part.add(encoded, start, start + take, taken)
                    start += take
                    remaining -= taken
                    _finish(part, result)
                    part = None
        if part is not None:
            _finish(part, result)
            part = None
    except BaseException:
        if part is not None:
            # The error being raised is the one to report; a failing abort must not hide it.
            with contextlib.suppress(Exception):
                part.writer.abort()
        raise
    result.records_filtered = record_filter.dropped
    return result


def _finish(part: _Part[object], result: WindowResult) -> None:
    done = part.close()
    result.parts.append(done)
    result.records += done.records
    result.raw_bytes += done.raw_bytes
    result.out_bytes += part.output.total
