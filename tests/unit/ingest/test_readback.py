"""Reading records back from stored chunks at the wire level, as protobuf would."""

from __future__ import annotations

import threading
import zlib

import lz4.block
import pytest
import zstandard

from cls_shipper.errors import CorruptChunkError
from cls_shipper.ingest import cls_pb, readback


def _chunk() -> bytes:
    message = cls_pb.LogGroupList()
    for g in range(4):
        group = message.logGroupList.add()
        group.filename = f"file{g}"
        if g % 2:
            group.source = "10.0.0.1"
            tag = group.logTags.add()
            tag.key, tag.value = "k", f"v{g}"
        for i in range(g + 1):  # 1 + 2 + 3 + 4 = 10 records
            log = group.logs.add()
            log.time = 1_700_000_000_000 + 10 * g + i
            content = log.contents.add()
            content.key, content.value = "m", f"g{g}-l{i}" * (i + 1)
    return bytes(message.SerializeToString())


def _expected(raw: bytes, lo: int, hi: int) -> list[tuple[str, str, list[str], list[int]]]:
    """Records [lo, hi) by protobuf: (filename, source, tags, log times) per group kept."""
    out = []
    position = 0
    for group in cls_pb.LogGroupList.FromString(raw).logGroupList:
        times = [log.time for i, log in enumerate(group.logs) if lo <= position + i < hi]
        position += len(group.logs)
        if times:
            out.append((group.filename, group.source, [t.value for t in group.logTags], times))
    return out


def _encoded(codec: str, raw: bytes) -> bytes:
    if codec == "lz4":
        return bytes(lz4.block.compress(raw, store_size=False))
    if codec == "zstd":
        return bytes(zstandard.ZstdCompressor().compress(raw))
    if codec == "deflate":
        return zlib.compress(raw)
    return raw


@pytest.mark.parametrize("codec", ["lz4", "zstd", "deflate", "none"])
def test_every_range_reads_as_protobuf_would(codec: str) -> None:
    raw = _chunk()
    payload = _encoded(codec, raw)
    budget = readback.ReadBudget(1 << 20)
    for lo in range(10):
        for hi in range(lo + 1, 11):
            got = readback.read_records(codec, payload, len(raw), lo, hi, budget)
            assert _expected(got, 0, 10) == _expected(raw, lo, hi), (lo, hi)
    assert budget.held == 0


def _members(codec: str, parts: list[bytes]) -> bytes:
    """One payload of several members, as ingest accepts them: gzip members or zlib streams
    back to back (deflate), several frames (zstd)."""
    if codec == "gzip":
        import gzip
        return b"".join(gzip.compress(part) for part in parts)
    if codec == "zlib":
        return b"".join(zlib.compress(part) for part in parts)
    return b"".join(zstandard.ZstdCompressor().compress(part) for part in parts)


@pytest.mark.parametrize("framing", ["gzip", "zlib", "zstd"])
def test_every_member_of_an_upload_is_read_back(framing: str) -> None:
    # An upload of several members is stored as received and counted whole: reading it back
    # must see the records of every member, as shipping does.
    raw = _chunk()
    groups = list(cls_pb.LogGroupList.FromString(raw).logGroupList)
    parts = []
    for half in (groups[:2], groups[2:]):
        message = cls_pb.LogGroupList()
        message.logGroupList.extend(half)
        parts.append(bytes(message.SerializeToString()))
    assert b"".join(parts) == raw  # a LogGroupList is the concatenation of its groups
    codec = "zstd" if framing == "zstd" else "deflate"
    payload = _members(framing, parts)
    budget = readback.ReadBudget(1 << 20)
    for lo in range(10):
        for hi in range(lo + 1, 11):
            got = readback.read_records(codec, payload, len(raw), lo, hi, budget)
            assert _expected(got, 0, 10) == _expected(raw, lo, hi), (framing, lo, hi)


def test_raw_deflate_is_read_back() -> None:
    raw = _chunk()
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(raw) + compressor.flush()
    got = readback.read_records("deflate", payload, len(raw), 0, 10, readback.ReadBudget(1 << 20))
    assert _expected(got, 0, 10) == _expected(raw, 0, 10)


def test_a_stream_is_read_only_up_to_the_last_record_wanted() -> None:
    raw = _chunk()
    pieces_read = []

    def pieces() -> object:
        for i in range(0, len(raw), 16):
            pieces_read.append(i)
            yield raw[i:i + 16]

    got = readback.slice_records(readback._Stream(pieces()), 0, 1)  # type: ignore[arg-type]
    assert _expected(got, 0, 10) == _expected(raw, 0, 1)
    assert len(pieces_read) < len(raw) // 16 / 2


def test_corrupt_chunks_are_named() -> None:
    raw = _chunk()
    with pytest.raises(CorruptChunkError):
        readback.read_records("none", raw[:-3], len(raw), 0, 10, readback.ReadBudget(1 << 20))
    with pytest.raises(CorruptChunkError):
        readback.read_records("lz4", b"\xff" * 10, len(raw), 0, 1, readback.ReadBudget(1 << 20))


def test_the_read_budget_holds_reads_back_until_there_is_room() -> None:
    budget = readback.ReadBudget(100)
    entered = threading.Event()
    release = threading.Event()
    inside: list[int] = []

    def hold(size: int) -> None:
        with budget.hold(size):
            inside.append(budget.held)
            entered.set()
            release.wait(30)

    first = threading.Thread(target=hold, args=(80,))
    first.start()
    entered.wait(30)
    entered.clear()
    second = threading.Thread(target=hold, args=(500,))  # larger than the budget: alone
    second.start()
    assert not entered.wait(0.2)  # waits while the first holds 80
    release.set()
    first.join(30)
    second.join(30)
    assert inside == [80, 100] and budget.held == 0
