"""Reading a stored chunk back by record range, with memory bounded by what is returned.

A stored chunk can decompress to 64 MiB (an lz4 block expands up to ~255 times: a 242 KiB
upload held 59 MiB of logs). Parsing all of it to return one record cost a read ~80 MiB, and
ten concurrent `GET /log?count=1` 809 MiB. Here a chunk is walked at the protobuf wire level,
group by group and log by log, without building a message: the records wanted are copied out
as they are stored, the rest is skipped by its length, and the walk stops at the last record
wanted. Codecs that can be decompressed as a stream (zstd, deflate, none) are read that far
only, one LogGroup at a time; an lz4 block cannot be decompressed in part, so it is
decompressed whole, under a byte budget all reads share (`ReadBudget`), so concurrent reads
of large chunks wait for one another instead of adding up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import cramjam
import zstandard
from zlib_ng import zlib_ng

from cls_shipper.errors import CorruptChunkError
from cls_shipper.ingest.decode import decompress
from cls_shipper.ingest.schema import read_varint, wire_tags

# zlib-ng's inflate error (its stub types it as an instance, not a class).
_InflateError: type[Exception] = zlib_ng.error  # type: ignore[assignment]

_TAGS = wire_tags()
GROUP_TAG = _TAGS["LogGroupList.logGroupList"]
LOG_TAG = _TAGS["LogGroup.logs"]
_PIECE = 1 << 20  # decompressed bytes taken from a stream at a time


class ReadBudget:
    """Bytes of decompressed chunks held by reads at once, across threads. A read takes what
    it needs (at most the whole budget, so a chunk larger than it is read alone) and waits
    while others hold the rest."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._room = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        size = min(size, self.limit)
        with self._room:
            self._room.wait_for(lambda: self.held + size <= self.limit)
            self.held += size
        try:
            yield
        finally:
            with self._room:
                self.held -= size
                self._room.notify_all()


class _Source(Protocol):
    def read(self, size: int) -> bytes | memoryview: ...


class _Whole:
    """Reads slices of bytes already in memory, without copying them."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int) -> memoryview:
        piece = self._view[self._pos:self._pos + size]
        self._pos += len(piece)
        return piece


class _Stream:
    """Exact reads over a source of decompressed pieces."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            piece = next(self._pieces, b"")
            if not piece:
                break
            self._buffer += piece
        out = bytes(self._buffer[:size])
        del self._buffer[:size]
        return out


def _zstd_pieces(payload: bytes, raw_size: int) -> Iterator[bytes]:
    # Every frame, as the upload was decoded, but no further than `raw_size`: a chunk stored
    # before uploads were decoded whole counted its records in the first frame only.
    left = raw_size
    try:
        with zstandard.ZstdDecompressor().stream_reader(payload, read_across_frames=True) as r:
            while left > 0 and (piece := r.read(min(_PIECE, left))):
                left -= len(piece)
                yield piece
    except zstandard.ZstdError:
        raise CorruptChunkError("a stored zstd chunk does not decompress") from None


def _deflate_pieces(payload: bytes, raw_size: int) -> Iterator[bytes]:
    """The framings `ingest.decode` accepts: zlib streams or gzip members back to back (wbits
    47 detects either), each decoded to its end, until `raw_size` bytes came out (see
    _zstd_pieces); or one raw deflate stream."""
    view = memoryview(payload)
    pos, left = 0, raw_size
    wbits = 47
    try:
        while left > 0 and pos < len(view):
            inflater = zlib_ng.decompressobj(wbits)
            try:
                piece = inflater.decompress(view[pos:], min(_PIECE, left))
            except _InflateError:
                if pos or wbits != 47:
                    raise
                wbits = -15  # not zlib or gzip framed: the raw deflate form
                continue
            while True:
                left -= len(piece)
                if piece:
                    yield piece
                if inflater.eof or left <= 0 or not inflater.unconsumed_tail:
                    break
                piece = inflater.decompress(inflater.unconsumed_tail, min(_PIECE, left))
            if not inflater.eof:
                break
            pos = len(view) - len(inflater.unused_data)
    except _InflateError:
        raise CorruptChunkError("a stored deflate chunk does not decompress") from None


def _varint(source: _Source) -> int | None:
    """The next varint, None at the end of the data."""
    value = shift = 0
    while True:
        byte = source.read(1)
        if not byte:
            if shift:
                raise CorruptChunkError("a stored chunk ends inside a varint")
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise CorruptChunkError("a stored chunk holds an overlong varint")


def _varint_at(data: memoryview, pos: int) -> tuple[int, int]:
    try:
        return read_varint(data, pos)
    except ValueError:
        raise CorruptChunkError("a stored LogGroup holds a broken varint") from None


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _groups(source: _Source) -> Iterator[bytes | memoryview]:
    """The serialized LogGroups of a LogGroupList, in order, one at a time."""
    while True:
        tag = _varint(source)
        if tag is None:
            return
        size = _varint(source)
        if tag != GROUP_TAG or size is None:
            raise CorruptChunkError("a stored chunk is not a LogGroupList")
        group = source.read(size)
        if len(group) != size:
            raise CorruptChunkError("a stored chunk ends inside a LogGroup")
        yield group


def _fields(group: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(tag, the field's whole encoding) for each field of a LogGroup."""
    data = memoryview(group)
    pos = 0
    while pos < len(data):
        start = pos
        tag, pos = _varint_at(data, pos)
        wire = tag & 7
        if wire == 0:
            _, pos = _varint_at(data, pos)
        elif wire == 2:
            size, pos = _varint_at(data, pos)
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise CorruptChunkError(f"a stored LogGroup holds wire type {wire}")
        if pos > len(data):
            raise CorruptChunkError("a stored LogGroup ends inside a field")
        yield tag, data[start:pos]


def slice_records(source: _Source, lo: int, hi: int) -> bytes:
    """Records [lo, hi) of a serialized LogGroupList as a LogGroupList, each group that
    holds some of them keeping its other fields (file name, source, tags...)."""
    out: list[bytes] = []
    position = 0
    for group in _groups(source):
        if position >= hi:
            break
        kept: list[memoryview] = []
        meta: list[memoryview] = []
        for tag, field in _fields(group):
            if tag == LOG_TAG:
                if lo <= position < hi:
                    kept.append(field)
                position += 1
            else:
                meta.append(field)
        if kept:
            body = b"".join([*meta, *kept])
            out += [bytes([GROUP_TAG]), _encode_varint(len(body)), body]
    return b"".join(out)


def source_for(codec: str, payload: bytes, raw_size: int) -> _Source | None:
    """A stream over the chunk's LogGroupList when its codec can be read in part; None for
    lz4, which has to be decompressed whole (`decompress`, under the budget)."""
    if codec == "none":
        return _Whole(payload)
    if codec == "zstd":
        return _Stream(_zstd_pieces(payload, raw_size))
    if codec == "deflate":
        return _Stream(_deflate_pieces(payload, raw_size))
    return None


def _lz4_whole(payload: bytes, raw_size: int) -> bytearray:
    """An lz4 chunk decompressed into one buffer of its size: python-lz4 decompresses into a
    buffer of its own and copies that into the bytes it returns, twice the chunk at peak."""
    out = bytearray(raw_size)
    try:
        size = cramjam.lz4.decompress_block_into(payload, out)
    except cramjam.DecompressionError:
        raise CorruptChunkError("a stored lz4 chunk does not decompress") from None
    if size != raw_size:
        raise CorruptChunkError("a stored lz4 chunk is not the size recorded for it")
    return out


def _decompressed(codec: str, payload: bytes, raw_size: int) -> bytes | bytearray:
    if codec == "lz4":
        return _lz4_whole(payload, raw_size)
    return decompress(codec, payload, raw_size)


def read_records(codec: str, payload: bytes, raw_size: int, lo: int, hi: int,
                 budget: ReadBudget) -> bytes:
    """Records [lo, hi) of a stored chunk, holding at most one LogGroup of it besides what is
    returned when the codec streams, and the decompressed chunk under `budget` when not."""
    source = source_for(codec, payload, raw_size)
    if source is not None:
        return slice_records(source, lo, hi)
    with budget.hold(raw_size):
        return slice_records(_Whole(_decompressed(codec, payload, raw_size)), lo, hi)


def read_whole(codec: str, payload: bytes, raw_size: int,
               budget: ReadBudget) -> bytes | bytearray:
    """A whole chunk's LogGroupList, decompressed under `budget` (it is all returned)."""
    with budget.hold(raw_size):
        return _decompressed(codec, payload, raw_size)


assert GROUP_TAG < 0x80, "a LogGroupList field tag is one byte"


def _take_groups(source: _Source, lo: int, max_bytes: int) -> tuple[list[bytes], int]:
    out: list[bytes] = []
    size = taken = position = 0
    for group in _groups(source):
        meta: list[memoryview] = []
        logs: list[memoryview] = []
        for tag, field in _fields(group):
            if tag == LOG_TAG:
                if position >= lo:
                    logs.append(field)
                position += 1
            else:
                meta.append(field)
        if not logs:
            continue
        head = sum(len(m) for m in meta)
        keep = 0
        body_size = head
        for log in logs:
            # Always at least one record, however large, so a reader always moves on.
            if (taken or keep) and size + body_size + len(log) > max_bytes:
                break
            keep += 1
            body_size += len(log)
        if keep:
            out.append(b"".join([*meta, *logs[:keep]]))
            size += body_size
            taken += keep
        if keep < len(logs) or size >= max_bytes:
            break
    return out, taken


def read_groups(codec: str, payload: bytes, raw_size: int, lo: int, max_bytes: int,
                budget: ReadBudget) -> tuple[list[bytes], int]:
    """The chunk's records from `lo` on, as serialized LogGroups (each group keeping its file
    name, source and tags), until they come to about `max_bytes` (at least one record).
    Returns (the groups, how many records they hold): the records after them are the next
    read's. Memory as `read_records`."""
    source = source_for(codec, payload, raw_size)
    if source is not None:
        return _take_groups(source, lo, max_bytes)
    with budget.hold(raw_size):
        return _take_groups(_Whole(_decompressed(codec, payload, raw_size)), lo, max_bytes)
