"""Stream codecs, each checked with an independent reader: Python's gzip module, the lzop
program, cramjam's snappy framed decoder, zstandard, lz4.frame."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from cls_shipper.errors import CodecUnavailableError, ServiceError
from cls_shipper.formats import lzop
from cls_shipper.formats.compression import make_compressor
from cls_shipper.model import shipper as catalog
from tests.helpers.shipping import decompress

CODECS = ["gzip", "lzop", "snappy", "zstd", "lz4", "none"]
needs_lzop = pytest.mark.skipif(shutil.which("lzop") is None, reason="lzop program missing")


def _sample() -> list[bytes]:
    rng = random.Random(7)
    text = b"".join(b'{"status":"%d","path":"/api/v1/items/%d"}\n' % (
        rng.choice([200, 404]), rng.randint(1, 10**6)) for _ in range(60_000))
    noise = rng.randbytes(700_000)  # incompressible: lzop stores such blocks as they are
    # Pieces of awkward sizes, including empty ones and one larger than a 256 KiB lzo block.
    return [b"", text[:10], text[10:300_000], b"", noise, text[300_000:], b"x"]


def _compress(codec: str, pieces: list[bytes]) -> bytes:
    compressor = make_compressor(codec)
    out = [compressor.compress(p) for p in pieces]
    out.append(compressor.finish())
    return b"".join(out)


def _lzop_decompress(data: bytes, tmp_path: Path) -> bytes:
    path = tmp_path / "object.lzo"
    path.write_bytes(data)
    test = subprocess.run(["lzop", "-t", str(path)], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    return subprocess.run(["lzop", "-dc", str(path)], capture_output=True, check=True).stdout


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_with_independent_reader(codec: str, tmp_path: Path) -> None:
    if codec == "lzop" and shutil.which("lzop") is None:
        pytest.skip("lzop program missing")
    pieces = _sample()
    data = _compress(codec, pieces)
    assert decompress(data, codec) == b"".join(pieces)
    if codec != "none":
        assert len(data) < len(b"".join(pieces))


@pytest.mark.parametrize("codec", CODECS)
def test_empty_stream_is_a_valid_empty_file(codec: str, tmp_path: Path) -> None:
    if codec == "lzop" and shutil.which("lzop") is None:
        pytest.skip("lzop program missing")
    assert decompress(_compress(codec, []), codec) == b""


@pytest.mark.parametrize("codec", CODECS)
def test_deterministic_bytes(codec: str) -> None:
    pieces = _sample()
    assert _compress(codec, pieces) == _compress(codec, pieces)


def test_gzip_has_no_timestamp_and_level_6() -> None:
    data = _compress("gzip", [b"abc" * 1000])
    assert data[:3] == b"\x1f\x8b\x08"
    assert data[4:8] == b"\x00\x00\x00\x00"  # mtime 0
    assert data[3] & 0x08 == 0  # no file name


@needs_lzop
def test_lzop_header_fields_as_lzop_lists_them(tmp_path: Path) -> None:
    data = _compress("lzop", [b"hello lzop " * 10_000])
    assert data.startswith(lzop.MAGIC)
    path = tmp_path / "x.lzo"
    path.write_bytes(data)
    listing = subprocess.run(["lzop", "-l", str(path)], capture_output=True, text=True,
                             check=True).stdout
    assert "LZO1X-1" in listing and "110000" in listing


@needs_lzop
def test_lzop_crc32_variant_is_accepted(tmp_path: Path) -> None:
    compressor = lzop.LzopCompressor(checksum="crc32")
    pieces = _sample()
    data = b"".join([compressor.compress(p) for p in pieces] + [compressor.finish()])
    assert _lzop_decompress(data, tmp_path) == b"".join(pieces)


@needs_lzop
def test_lzop_detects_corruption(tmp_path: Path) -> None:
    data = bytearray(_compress("lzop", [b"some text to compress " * 5000]))
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "bad.lzo"
    path.write_bytes(bytes(data))
    assert subprocess.run(["lzop", "-t", str(path)], capture_output=True).returncode != 0


def test_lzop_missing_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lzop, "_lzo", None)
    monkeypatch.setattr(lzop, "_LIBRARY_NAMES", ("liblzo2-does-not-exist.so.9",))
    monkeypatch.setattr("ctypes.util.find_library", lambda name: None)
    with pytest.raises(CodecUnavailableError, match="liblzo2-2"):
        lzop.LzopCompressor()
    assert lzop.available() is False


def test_snappy_is_the_framing_format() -> None:
    data = _compress("snappy", [b"abc" * 100_000])
    assert data.startswith(b"\xff\x06\x00\x00sNaPpY")


def test_lz4_is_the_frame_format() -> None:
    assert _compress("lz4", [b"abc"]).startswith(b"\x04\x22\x4d\x18")


def test_combinations() -> None:
    for content in ("json", "csv"):
        for codec in CODECS:
            catalog.check_combination(content, codec)
    for codec in ("snappy", "gzip", "zstd", "lz4", "none"):
        catalog.check_combination("parquet", codec)
    with pytest.raises(ServiceError, match="not available for parquet"):
        catalog.check_combination("parquet", "lzop")
    with pytest.raises(ServiceError):
        catalog.check_combination("xml", "gzip")
    with pytest.raises(ServiceError):
        catalog.check_combination("json", "brotli")
