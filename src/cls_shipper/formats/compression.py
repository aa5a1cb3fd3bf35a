"""Stream codecs for JSON-lines and CSV objects. Each compressor takes the raw bytes piece by
piece and returns compressed bytes as they become ready, so an object of any size is
compressed in bounded memory. Every codec is deterministic: no timestamps, names or random
values inside the containers.

| codec  | container                                  | notes                          |
|--------|--------------------------------------------|--------------------------------|
| gzip   | RFC 1952 gzip, zlib-ng level 5, mtime 0    | `gzip -d`, every gzip reader   |
| lzop   | lzop 1.04 `.lzo` file, LZO1X-1             | see lzop.py                    |
| snappy | Snappy framing format (stream identifier   | python-snappy, cramjam, snzip, |
|        | `sNaPpY`, CRC32C-checked chunks)           | Go/Java framed readers         |
| zstd   | zstd frame, level 3, content checksum      | `zstd -d`                      |
| lz4    | LZ4 frame format, content checksum         | `lz4 -d`                       |
| none   | the raw bytes                              |                                |
"""

from __future__ import annotations

from typing import Protocol

import cramjam
import lz4.frame
import zstandard
from zlib_ng import zlib_ng

from cls_shipper.formats.lzop import LzopCompressor

# zlib-ng, not the stdlib's zlib: the same gzip container, ~2.2x less CPU at level 5 than
# zlib at 6 for output 1-2% larger on JSON lines (docs/decisions.md, the measured table in
# docs/benchmarks.md). Its level 6 is smaller than zlib's but only 1.65x faster.
GZIP_LEVEL = 5
ZSTD_LEVEL = 3  # the zstd command line's default: ~3x faster than gzip -6, smaller output


class Compressor(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class GzipCompressor:
    def __init__(self) -> None:
        # wbits 31 = gzip container; zlib-ng writes mtime 0 and no file name. A fresh object
        # per stream: the bytes are a function of the input (for one build of zlib-ng).
        self._z = zlib_ng.compressobj(GZIP_LEVEL, zlib_ng.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush(zlib_ng.Z_FINISH)


class ZstdCompressor:
    def __init__(self) -> None:
        self._z = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._z.compress(data)

    def finish(self) -> bytes:
        return self._z.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)


class Lz4Compressor:
    def __init__(self) -> None:
        self._z = lz4.frame.LZ4FrameCompressor(content_checksum=True)
        self._header: bytes | None = self._z.begin()

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._z.compress(data)
        if self._header is not None:
            out, self._header = self._header + out, None
        return out

    def finish(self) -> bytes:
        tail: bytes = self._z.flush()
        if self._header is not None:
            tail, self._header = self._header + tail, None
        return tail


class SnappyCompressor:
    """The Snappy framing format (framing_format.txt), not Hadoop's block format: it is the
    one format with a specification, a magic number and checksums, and the one snappy's own
    tools and libraries read."""

    def __init__(self) -> None:
        self._z = cramjam.snappy.Compressor()

    def compress(self, data: bytes) -> bytes:
        self._z.compress(data)
        return bytes(self._z.flush())

    def finish(self) -> bytes:
        return bytes(self._z.finish())


class IdentityCompressor:
    def compress(self, data: bytes) -> bytes:
        return data

    def finish(self) -> bytes:
        return b""


def make_compressor(codec: str) -> Compressor:
    if codec == "gzip":
        return GzipCompressor()
    if codec == "lzop":
        return LzopCompressor()
    if codec == "snappy":
        return SnappyCompressor()
    if codec == "zstd":
        return ZstdCompressor()
    if codec == "lz4":
        return Lz4Compressor()
    if codec == "none":
        return IdentityCompressor()
    raise ValueError(f"unknown codec {codec!r}")
