"""Upload decoding: a body is accepted only when every byte of it is understood, and what
was counted at upload is what a stored chunk decodes to later."""

from __future__ import annotations

import gzip
import struct
import zlib

import lz4.block
import pytest
import zstandard

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.ingest import decode

_ZSTD = zstandard.ZstdCompressor()


def _zstd(data: bytes) -> bytes:
    return _ZSTD.compress(data)


def _skippable(data: bytes) -> bytes:
    return struct.pack("<II", 0x184D2A50, len(data)) + data


ACCEPTED: dict[str, tuple[str, bytes, bytes]] = {
    # name: (codec, body, what it decodes to)
    "gzip-two-members": ("deflate", gzip.compress(b"ab") + gzip.compress(b"cd"), b"abcd"),
    "zlib-two-streams": ("deflate", zlib.compress(b"ab") + zlib.compress(b"cd"), b"abcd"),
    "gzip-then-zlib": ("deflate", gzip.compress(b"ab") + zlib.compress(b"cd"), b"abcd"),
    "gzip-64-members": ("deflate", gzip.compress(b"x") * decode.MAX_MEMBERS,
                        b"x" * decode.MAX_MEMBERS),
    "raw-deflate": ("deflate", zlib.compress(b"raw", wbits=-15), b"raw"),
    "zstd-two-frames": ("zstd", _zstd(b"ab") + _zstd(b"cd"), b"abcd"),
    "zstd-skippable-frame": ("zstd", _zstd(b"ab") + _skippable(b"meta") + _zstd(b"cd"), b"abcd"),
    "zstd-large": ("zstd", _zstd(bytes(range(256)) * 40_000), bytes(range(256)) * 40_000),
    "zlib-large": ("deflate", zlib.compress(bytes(range(256)) * 40_000),
                   bytes(range(256)) * 40_000),
}

REFUSED: dict[str, tuple[str, bytes]] = {
    "zlib-then-garbage": ("deflate", zlib.compress(b"ab") + b"g" * 70),
    "gzip-then-zero-padding": ("deflate", gzip.compress(b"ab") + b"\0" * 16),
    "gzip-then-cut-member": ("deflate", gzip.compress(b"ab") + gzip.compress(b"cd")[:-4]),
    "gzip-cut-short": ("deflate", gzip.compress(b"ab" * 100)[:-6]),
    "raw-deflate-then-garbage": ("deflate", zlib.compress(b"raw", wbits=-15) + b"gg"),
    "gzip-65-members": ("deflate", gzip.compress(b"x") * (decode.MAX_MEMBERS + 1)),
    "zstd-then-garbage": ("zstd", _zstd(b"ab") + b"g" * 70),
    "zstd-then-zeros": ("zstd", _zstd(b"ab") + b"\0" * 8),
    "zstd-cut-short": ("zstd", _zstd(b"ab" * 100)[:-3]),
    "zstd-65-frames": ("zstd", _zstd(b"x") * (decode.MAX_MEMBERS + 1)),
    "lz4-then-zeros": ("lz4", lz4.block.compress(b"ab" * 100, store_size=False) + b"\0" * 5),
    "lz4-then-garbage": ("lz4", lz4.block.compress(b"ab" * 100, store_size=False) + b"g" * 70),
    "lz4-two-blocks": ("lz4", lz4.block.compress(b"ab" * 100, store_size=False) * 2),
    "deflate-bomb": ("deflate", zlib.compress(b"\0" * (decode.MAX_RAW_BYTES + 1))),
    "zstd-bomb": ("zstd", _zstd(b"\0" * (decode.MAX_RAW_BYTES + 1))),
    "gzip-members-over-the-cap-together": (
        "deflate", gzip.compress(b"\0" * (decode.MAX_RAW_BYTES // 2 + 1)) * 2),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_every_member_is_decoded(name: str) -> None:
    codec, body, expected = ACCEPTED[name]
    assert decode.decompress(codec, body) == expected
    # A stored chunk decodes to the same bytes given the size counted at upload.
    assert decode.decompress(codec, body, len(expected)) == expected


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bytes_not_understood_are_refused(name: str) -> None:
    codec, body = REFUSED[name]
    with pytest.raises(ServiceError) as err:
        decode.decompress(codec, body)
    assert err.value.kind is Kinds.INVALID_CONTENT


def test_trailing_bytes_are_named() -> None:
    body = zlib.compress(b"ab") + b"g" * 70
    with pytest.raises(ServiceError, match=r"70 bytes after its last zlib stream or gzip member "
                       rf"\(at byte {len(body) - 70} of {len(body)}\)"):
        decode.decompress("deflate", body)


def test_chunks_stored_before_the_rule_decode_as_they_were_counted() -> None:
    """Uploads accepted before trailing members were decoded were counted (and given
    offsets) from their first member only; reading them must give exactly that."""
    assert decode.decompress("deflate", gzip.compress(b"ab") + gzip.compress(b"cd"), 2) == b"ab"
    assert decode.decompress("deflate", zlib.compress(b"ab") + b"g" * 70, 2) == b"ab"
    # A zstd frame cut short: the old reader counted the bytes decoded before the cut.
    assert decode.decompress("zstd", _zstd(b"hello")[:-2], 3) == b"hel"
    with pytest.raises(ServiceError):  # a hint the payload cannot fill is a corrupt chunk
        decode.decompress("deflate", gzip.compress(b"ab"), 3)


@pytest.mark.parametrize("body", [
    b'{"logs": [{"contents": {"a": "1"}}], "logs": [{"contents": {"b": "2"}}]}',
    b'{"logs": [{"contents": {"a": "1"}, "contents": {"b": "2"}}]}',
    b'{"logs": [{"contents": {"a": "1", "a": "2"}}]}',
    b'{"logs": [{"contents": {"a": "1"}}], "tags": {"t": "1", "t": "2"}}',
    b'{"logs": [{"contents": {"a": "1"}}]} {"logs": [{"contents": {"b": "2"}}]}',
    b'{"logs": [{"contents": {"a": "1"}}]}garbage',
])
def test_json_bodies_with_parts_that_would_be_dropped_are_refused(body: bytes) -> None:
    with pytest.raises(ServiceError) as err:
        decode.json_to_protobuf(body)
    assert err.value.kind is Kinds.INVALID_CONTENT


def test_json_trailing_whitespace_is_understood() -> None:
    assert decode.json_to_protobuf(b'{"logs": [{"contents": {"a": "1"}}]}\n \r\n')[1] == 1
