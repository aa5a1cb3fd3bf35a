"""The log store on both backends (SQLite and PostgreSQL), and decoding as pure functions."""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

import lz4.block
import pytest
import zstandard
from sqlalchemy import create_engine, event, update
from sqlalchemy.exc import OperationalError

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.ingest import decode
from cls_shipper.service import Context, logsets, topics
from cls_shipper.settings import Settings
from cls_shipper.store import Database, open_database
from cls_shipper.store import chunks as store
from cls_shipper.store.database import is_disk_full
from cls_shipper.store.schema import topics as topics_table
from cls_shipper.timefmt import now_ms


@pytest.fixture()
def ctx(database_url: str) -> Context:
    return Context(open_database(database_url),
                   Settings(quota_logsets=1000, quota_topics=1000, check_destination=False))


def _topic(ctx: Context, period: int | None = None, logset_period: int = 7) -> str:
    logset = logsets.create(ctx, f"ls-{now_ms()}-{id(object())}", logset_period)
    return topics.create(ctx, logset, "t", period=period)


def _chunk(topic: str, count: int, tag: bytes = b"x") -> store.NewChunk:
    return store.NewChunk(topic, count, "none", len(tag), "10.0.0.1", tag)


def _seal(db: Database, topic: str, ms: int) -> None:
    with db.begin() as conn:
        conn.execute(update(topics_table).where(topics_table.c.topic_id == topic)
                     .values(sealed_ms=ms))


def test_append_assigns_offsets_and_monotonic_time(ctx: Context) -> None:
    topic = _topic(ctx)
    before = now_ms()
    appended = store.append_chunks(ctx.db, [_chunk(topic, 3), _chunk(topic, 5), _chunk(topic, 1)])
    first = [a for a in appended if isinstance(a, store.Appended)]
    assert len(first) == len(appended)
    assert [(a.first_offset, a.record_count) for a in first] == [(0, 3), (3, 5), (8, 1)]
    assert len({a.ingest_ms for a in first}) == 1 and first[0].ingest_ms >= before
    # The seal wins over the clock: nothing may enter a closed window.
    sealed = now_ms() + 3_600_000
    _seal(ctx.db, topic, sealed)
    (second,) = store.append_chunks(ctx.db, [_chunk(topic, 2)])
    assert isinstance(second, store.Appended)
    assert (second.first_offset, second.ingest_ms) == (9, sealed)
    # ...and time never goes back, even when the seal is lowered again.
    _seal(ctx.db, topic, 0)
    (third,) = store.append_chunks(ctx.db, [_chunk(topic, 1)])
    assert isinstance(third, store.Appended)
    assert third.first_offset == 11 and third.ingest_ms == sealed
    assert topics.get(ctx, topic).next_offset == 12


def test_refused_chunks_do_not_affect_others(ctx: Context) -> None:
    good, closed = _topic(ctx), _topic(ctx)
    topics.modify(ctx, closed, collection=False)
    results = store.append_chunks(ctx.db, [_chunk(good, 2), _chunk("missing", 1),
                                           _chunk(closed, 1), _chunk(good, 1)])
    assert [getattr(r, "first_offset", None) for r in results] == [0, None, None, 2]
    codes = [r.kind.legacy_code for r in results if isinstance(r, ServiceError)]
    assert codes == ["TopicNotExist", "TopicClosed"]
    assert topics.get(ctx, closed).next_offset == 0
    assert [c.first_offset for c in store.read_window(ctx.db, good, 0, 1 << 62)] == [0, 2]


def test_group_commit_under_concurrency(ctx: Context) -> None:
    """Many threads through the shared writer plus a second writer (as a second process
    would have): offsets gap-free, each thread's uploads in its own order."""
    topic_a, topic_b = _topic(ctx), _topic(ctx)
    other = store.ChunkWriter(ctx.db)
    placed: dict[int, list[int]] = {}

    def stream(n: int) -> None:
        writer = other if n % 3 == 0 else store.writer_for(ctx.db)
        topic = topic_a if n % 2 else topic_b
        mine = placed.setdefault(n, [])
        for i in range(25):
            mine.append(writer.submit(_chunk(topic, 1 + (i % 4), f"{n}:{i}".encode()))
                        .result().first_offset)

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    for topic in (topic_a, topic_b):
        chunks = list(store.read_window(ctx.db, topic, 0, 1 << 62, batch_size=7))
        expected, last_ms = 0, 0
        for chunk in chunks:
            assert chunk.first_offset == expected and chunk.ingest_ms >= last_ms
            expected, last_ms = expected + chunk.record_count, chunk.ingest_ms
        assert expected == topics.get(ctx, topic).next_offset
        assert len(chunks) == 4 * 25
    for offsets in placed.values():
        assert offsets == sorted(offsets)


def test_read_window_streams_in_offset_order(ctx: Context) -> None:
    topic = _topic(ctx)
    base = now_ms() + 10_000_000
    for step, counts in enumerate([[1], [2, 3], [4], [5]]):
        _seal(ctx.db, topic, base + step * 1000)
        store.append_chunks(ctx.db, [_chunk(topic, c, f"{step}-{c}".encode()) for c in counts])
    window = list(store.read_window(ctx.db, topic, base + 1000, base + 3000, batch_size=1))
    assert [(c.first_offset, c.record_count, c.payload) for c in window] == [
        (1, 2, b"1-2"), (3, 3, b"1-3"), (6, 4, b"2-4")]
    assert {c.ingest_ms for c in window} == {base + 1000, base + 2000}
    assert window[0].client_ip == "10.0.0.1" and window[0].codec == "none"
    assert list(store.read_window(ctx.db, topic, base + 3001, base + 9000)) == []
    assert list(store.read_window(ctx.db, topic, base + 2000, base + 2000)) == []
    assert [c.first_offset for c in store.read_window(ctx.db, topic, 0, base + 1)] == [0]


def test_expire_chunks_by_topic_or_logset_period(ctx: Context) -> None:
    short, inherits = _topic(ctx, period=1), _topic(ctx, logset_period=3)
    for topic in (short, inherits):
        store.append_chunks(ctx.db, [_chunk(topic, 2), _chunk(topic, 2)])
    now = now_ms()
    assert store.expire_chunks(ctx.db, now) == 0
    assert store.expire_chunks(ctx.db, now + 2 * store.DAY_MS) == 2
    assert list(store.read_window(ctx.db, short, 0, 1 << 62)) == []
    assert len(list(store.read_window(ctx.db, inherits, 0, 1 << 62))) == 2
    # Reading from an expired offset skips to what is left; new chunks go on after.
    store.append_chunks(ctx.db, [_chunk(short, 1)])
    head, chunks = store.read_from(ctx.db, short, 0, 1000)
    assert head == 5 and [c.first_offset for c in chunks] == [4]
    assert store.expire_chunks(ctx.db, now + 4 * store.DAY_MS) == 3


def test_read_from_errors(ctx: Context) -> None:
    topic = _topic(ctx)
    store.append_chunks(ctx.db, [_chunk(topic, 10), _chunk(topic, 10)])
    head, chunks = store.read_from(ctx.db, topic, 15, 3)
    assert head == 20 and [c.first_offset for c in chunks] == [10]
    with pytest.raises(ServiceError) as err:
        store.read_from(ctx.db, topic, 21, 1)
    assert err.value.kind.legacy_code == "CursorNotExist"
    with pytest.raises(ServiceError) as err:
        store.read_from(ctx.db, "missing", 0, 1)
    assert err.value.kind.legacy_code == "TopicNotExist"


# --- decoding (no database) -------------------------------------------------------------------

def test_decompress_codecs_and_bombs() -> None:
    raw = b"hello world " * 50_000
    block = bytes(lz4.block.compress(raw, store_size=False))
    assert decode.decompress("lz4", block) == raw
    assert decode.decompress("lz4", block, size_hint=len(raw)) == raw
    assert decode.decompress("zstd", zstandard.ZstdCompressor().compress(raw)) == raw
    streamed = zstandard.ZstdCompressor().compressobj()
    no_size = streamed.compress(raw) + streamed.flush()
    assert decode.decompress("zstd", no_size) == raw
    assert decode.decompress("deflate", zlib.compress(raw)) == raw
    assert decode.decompress("none", raw) == raw
    huge = bytes(decode.MAX_RAW_BYTES + 1)
    for codec, body in [("lz4", bytes(lz4.block.compress(huge, store_size=False))),
                        ("zstd", zstandard.ZstdCompressor().compress(huge)),
                        ("deflate", zlib.compress(huge))]:
        with pytest.raises(ServiceError) as err:
            decode.decompress(codec, body)
        assert err.value.kind.legacy_code == "InvalidContent"
    with pytest.raises(ServiceError) as err:
        decode.codec_of("gzip")
    assert err.value.kind.legacy_code == "InvalidCompressType"


def test_key_prefilter_never_misses() -> None:
    from cls_shipper.ingest import cls_pb

    for length in (1, 5, 127, 128, 300, 20_000):
        group_list = cls_pb.LogGroupList()
        log = group_list.logGroupList.add().logs.add()
        log.time = 1
        content = log.contents.add()
        content.key, content.value = "_" + "k" * (length - 1), "v"
        with pytest.raises(ServiceError):
            decode.check_protobuf(group_list.SerializeToString())
    # A legal but non-minimal tag encoding (0x8a 0x00 for field 1, length-delimited).
    sneaky = b"\x0a\x0e\x0a\x0c\x08\x01\x12\x08\x8a\x00\x02_k\x12\x01v"
    assert cls_pb.LogGroupList.FromString(sneaky).logGroupList[0].logs[0].contents[0].key == "_k"
    with pytest.raises(ServiceError):
        decode.check_protobuf(sneaky)


def test_read_window_is_the_same_whatever_the_batch_limits(ctx: Context) -> None:
    topic = _topic(ctx)
    store.append_chunks(ctx.db, [_chunk(topic, 1, bytes([65 + i]) * (10 + i * 7))
                                 for i in range(20)])
    expected = [(c.first_offset, c.payload) for c in store.read_window(ctx.db, topic, 0, 1 << 62)]
    assert len(expected) == 20
    for batch_size, batch_bytes in ((1, 1 << 20), (3, 1 << 20), (32, 1), (32, 40), (5, 100)):
        got = [(c.first_offset, c.payload) for c in store.read_window(
            ctx.db, topic, 0, 1 << 62, batch_size=batch_size, batch_bytes=batch_bytes)]
        assert got == expected, (batch_size, batch_bytes)


def test_a_full_database_disk_is_named_in_the_upload_error(tmp_path: Path) -> None:
    path = tmp_path / "full.db"
    ctx = Context(open_database(f"sqlite:///{path}"),
                  Settings(quota_logsets=1000, check_destination=False))
    topic = _topic(ctx)
    with ctx.db.read() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    assert pages is not None
    # SQLite answers SQLITE_FULL past max_page_count as it does on a full disk; the setting
    # is per connection, so every connection of the writer gets it.
    event.listen(ctx.db.engine, "connect",
                 lambda conn, _: conn.execute(f"PRAGMA max_page_count = {int(pages) + 8}"))
    ctx.db.engine.dispose()
    writer = store.ChunkWriter(ctx.db)
    try:
        with pytest.raises(ServiceError) as info:
            for i in range(100):
                writer.submit(_chunk(topic, 1, bytes([i % 256]) * 4096)).result(60)
    finally:
        writer.close()
    error = info.value
    assert error.kind == Kinds.INTERNAL
    assert error.message == (f"the log store could not commit: the disk of the SQLite "
                             f"{path} is full")


def test_disk_full_is_recognised_on_both_backends() -> None:
    class PgError(Exception):
        sqlstate = "53100"

    assert is_disk_full(OperationalError("INSERT", {}, PgError("no space")))
    assert is_disk_full(Exception('could not extend file "base/16384/2619": No space left'))
    assert not is_disk_full(OperationalError("INSERT", {}, Exception("database is locked")))


def test_a_postgres_database_is_described_without_credentials() -> None:
    db = Database(create_engine("postgresql+psycopg://user:s3cret@db.internal:5433/logs"))
    assert db.describe() == "PostgreSQL database 'logs' on db.internal:5433"


def test_payloads_are_not_compressed_again_by_postgresql(ctx: Context) -> None:
    """Payloads arrive compressed: PostgreSQL stores them without trying again (0006)."""
    if ctx.db.is_sqlite:
        return  # SQLite has no storage setting
    with ctx.db.read() as conn:
        storage = conn.exec_driver_sql(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'log_chunks'::regclass "
            "AND attname = 'payload'").scalar_one()
    assert storage == "e"
