"""The durable per-topic logs: one `log_chunks` row per accepted upload.

Writes go through one writer thread per database (group commit): concurrent uploads are
batched into one transaction, so one fsync acknowledges many of them. Inside it, each topic's
head is advanced with a single `UPDATE ... RETURNING` that assigns the offsets and the ingest
time (never below `last_ingest_ms` or `sealed_ms`), so both only grow per topic, whatever the
concurrency and whichever process writes (the row lock orders writers on PostgreSQL, the
database lock on SQLite).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from cls_shipper import metrics
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.model import partitions
from cls_shipper.model.task import TaskStatus
from cls_shipper.store.database import Database, is_disk_full
from cls_shipper.store.schema import (
    consumer_group_topics,
    consumer_groups,
    consumer_partitions,
    log_chunks,
    logsets,
    shippers,
    tasks,
    topics,
)
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.store.chunks")

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One stored upload: records [first_offset, first_offset + record_count) of a topic.
    `payload` is a LogGroupList compressed with `codec` (see `ingest.decode.decompress`)."""

    topic_id: str
    first_offset: int
    record_count: int
    ingest_ms: int
    codec: str
    raw_size: int
    client_ip: str
    payload: bytes
    partition_id: int = 1


@dataclass(frozen=True, slots=True)
class NewChunk:
    topic_id: str
    record_count: int
    codec: str
    raw_size: int
    client_ip: str
    payload: bytes
    # The upload's hash key as a position in the key space (model/partitions.py), or None
    # to spread uploads over the partitions.
    key_pos: int | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    topic_id: str
    first_offset: int
    record_count: int
    ingest_ms: int


_COLUMNS = (log_chunks.c.topic_id, log_chunks.c.first_offset, log_chunks.c.record_count,
            log_chunks.c.ingest_ms, log_chunks.c.codec, log_chunks.c.raw_size,
            log_chunks.c.client_ip, log_chunks.c.payload, log_chunks.c.partition_id)


def _chunk(row: Any) -> StoredChunk:
    return StoredChunk(row.topic_id, row.first_offset, row.record_count, row.ingest_ms,
                       row.codec, row.raw_size, row.client_ip, bytes(row.payload),
                       row.partition_id)


# --- Writing ---------------------------------------------------------------------------------

def _append_in(conn: Connection, is_sqlite: bool,
               chunks: Sequence[NewChunk]) -> list[Appended | ServiceError]:
    """Assign offsets and ingest times and insert, inside the caller's write transaction."""
    results: list[Appended | ServiceError | None] = [None] * len(chunks)
    by_topic: dict[str, list[int]] = {}
    for index, chunk in enumerate(chunks):
        by_topic.setdefault(chunk.topic_id, []).append(index)
    # Clock read under the write lock (BEGIN IMMEDIATE / row locks come after it only on
    # PostgreSQL, where GREATEST() with last_ingest_ms keeps time monotonic regardless).
    now = now_ms()
    advance = _advance_sql(conn.dialect.paramstyle, is_sqlite)
    rows: list[tuple[Any, ...]] = []
    # Topics in a fixed order: two writers on PostgreSQL lock the same rows in the same order,
    # so they can never deadlock.
    for topic_id in sorted(by_topic):
        indexes = by_topic[topic_id]
        total = sum(chunks[i].record_count for i in indexes)
        head = conn.exec_driver_sql(advance, (total, now, topic_id)).first()
        if head is None:
            exists = conn.execute(select(topics.c.topic_id)
                                  .where(topics.c.topic_id == topic_id)).first()
            error = (ServiceError(Kinds.TOPIC_CLOSED, f"collection is off for topic {topic_id!r}")
                     if exists else
                     ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist"))
            for i in indexes:
                results[i] = error
            continue
        offset = head.next_offset - total
        for i in indexes:
            chunk = chunks[i]
            # Chosen here, with the partition count read under the same lock that assigns the
            # offsets: a topic's partitions can change, and an upload lands in one that exists.
            partition = partitions.choose(head.partition_count, chunk.key_pos)
            rows.append((topic_id, offset, chunk.record_count, head.last_ingest_ms, chunk.codec,
                         chunk.raw_size, chunk.client_ip[:64], chunk.payload, partition))
            results[i] = Appended(topic_id, offset, chunk.record_count, head.last_ingest_ms)
            offset += chunk.record_count
    if rows:
        # One multi-row INSERT rather than executemany: the driver releases and re-takes the
        # GIL around every statement step, and each re-take can wait behind the event loop's
        # decoding; one statement keeps a commit to a handful of hand-offs. Its SQL is built
        # once per row count and sent to the driver as is: compiling a Core insert of a
        # different size each batch cost more than the insert itself (profiled).
        style = conn.dialect.paramstyle
        for start in range(0, len(rows), 256):
            batch = rows[start:start + 256]
            conn.exec_driver_sql(_insert_sql(len(batch), style),
                                 tuple(value for row in batch for value in row))
    return [r for r in results if r is not None]


@functools.lru_cache(maxsize=4)
def _advance_sql(paramstyle: str, is_sqlite: bool) -> str:
    """Move a topic's head: the next `total` offsets, and an ingest time that never goes
    below the newest one nor below the seal (so no record enters a closed window). Plain
    SQL for the same reason as `_insert_sql`: it runs once per topic per commit."""
    mark = "?" if paramstyle == "qmark" else "%s"
    newest = "max" if is_sqlite else "greatest"
    return (f"UPDATE {topics.name} SET next_offset = next_offset + {mark}, "
            f"last_ingest_ms = {newest}(last_ingest_ms, sealed_ms, {mark}) "
            f"WHERE topic_id = {mark} AND collection "
            "RETURNING next_offset, last_ingest_ms, partition_count")


_CHUNK_COLUMNS = ("topic_id", "first_offset", "record_count", "ingest_ms", "codec", "raw_size",
                  "client_ip", "payload", "partition_id")


@functools.lru_cache(maxsize=300)
def _insert_sql(rows: int, paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    one_row = "(" + ", ".join([mark] * len(_CHUNK_COLUMNS)) + ")"
    return (f"INSERT INTO {log_chunks.name} ({', '.join(_CHUNK_COLUMNS)}) VALUES "
            + ", ".join([one_row] * rows))


def append_chunks(db: Database, chunks: Sequence[NewChunk]) -> list[Appended | ServiceError]:
    """Store `chunks` in one transaction (committed when this returns). Each result is the
    chunk's placement, or the error that refused it (unknown or closed topic); refused
    chunks do not affect the others."""
    if any(c.record_count <= 0 for c in chunks):
        raise ValueError("every chunk must hold at least one record")
    with db.begin() as conn:
        return _append_in(conn, db.is_sqlite, chunks)


@dataclass(slots=True)
class _Pending:
    chunk: NewChunk
    future: Future[Appended]


class ChunkWriter:
    """Group commit: one thread drains the queue of pending uploads into one transaction at
    a time and resolves each waiter after the commit. While a commit is being fsynced, new
    uploads queue up and go together into the next one."""

    def __init__(self, db: Database, max_batch: int = 512, max_bytes: int = 64 << 20) -> None:
        self._db = db
        self._max_batch = max_batch
        self._max_bytes = max_bytes
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        # Why the last commit failed (None: it succeeded): what readiness reports.
        self.last_failure: str | None = None
        self._thread = threading.Thread(target=self._run, name="cls-chunk-writer", daemon=True)
        self._thread.start()

    def submit(self, chunk: NewChunk) -> Future[Appended]:
        """Queue `chunk`; the future resolves once it is committed (or fails with a
        ServiceError). Cancelling the future before the writer picks it up drops the chunk."""
        future: Future[Appended] = Future()
        self._queue.put(_Pending(chunk, future))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            size = len(first.chunk.payload)
            while len(batch) < self._max_batch and size < self._max_bytes:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
                size += len(item.chunk.payload)
            # A waiter that went away (client disconnected) before we got to it never sees a
            # 200, so its chunk is simply not written.
            live = [p for p in batch if p.future.set_running_or_notify_cancel()]
            if live:
                self._commit(live)

    def healthy(self) -> str | None:
        """None if the writer can commit; otherwise why not."""
        if not self._thread.is_alive():
            return "the ingest writer thread has stopped"
        return self.last_failure

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            results = append_chunks(self._db, [p.chunk for p in batch])
        except SQLAlchemyError as exc:
            if is_disk_full(exc):
                # An operator's problem, not a bug: one line naming the database, no trace.
                reason = f"the disk of the {self._db.describe()} is full"
                log.error("committing %d uploads failed: %s", len(batch), reason)
            else:
                reason = type(exc).__name__
                log.exception("committing %d uploads failed", len(batch))
            failure = ServiceError(Kinds.INTERNAL, f"the log store could not commit: {reason}")
            self.last_failure = failure.message
            for pending in batch:
                pending.future.set_exception(failure)
            return
        except Exception as exc:  # a waiter must never hang on a bug here: fail it
            log.exception("unexpected error committing %d uploads", len(batch))
            for pending in batch:
                pending.future.set_exception(exc)
            return
        self.last_failure = None
        measured = metrics.current()
        if measured is not None:
            measured.commit_batch.observe(len(batch))
            measured.commit_seconds.observe(time.perf_counter() - started)
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, ServiceError):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)


_writers: weakref.WeakKeyDictionary[Database, ChunkWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_for(db: Database) -> ChunkWriter:
    """The database's writer thread, started on first use."""
    with _writers_lock:
        writer = _writers.get(db)
        if writer is None:
            writer = _writers[db] = ChunkWriter(db)
        return writer


def writer_health(db: Database) -> str | None:
    """None if the database's ingest writer can commit (or has not been needed yet)."""
    with _writers_lock:
        writer = _writers.get(db)
    return None if writer is None else writer.healthy()


def append(db: Database, chunk: NewChunk) -> Appended:
    """Store one chunk through the group-commit writer; blocks until committed."""
    return writer_for(db).submit(chunk).result()


# --- Reading ---------------------------------------------------------------------------------

def read_window(db: Database, topic_id: str, start_ms: int, end_ms: int,
                batch_size: int = 32, batch_bytes: int = 16 << 20) -> Iterator[StoredChunk]:
    """The chunks with `start_ms <= ingest_ms < end_ms`, in offset order, fetched at most
    `batch_size` chunks and about `batch_bytes` of payload at a time (each batch in its own
    short read, so a slow consumer holds no transaction and memory stays bounded even when
    uploads are large)."""
    if end_ms <= start_ms:
        return
    first = _first_offset_at(db, topic_id, start_ms)
    if first is None:
        return
    # Ingest time grows with the offset, so the window is an offset range; its end is fixed
    # by the first chunk at or after end_ms once one exists.
    stop = _first_offset_at(db, topic_id, end_ms)
    in_window = [log_chunks.c.topic_id == topic_id, log_chunks.c.ingest_ms >= start_ms,
                 log_chunks.c.ingest_ms < end_ms]
    if stop is not None:
        in_window.append(log_chunks.c.first_offset < stop)
    yield from _in_batches(db, in_window, first, batch_size, batch_bytes)


def _in_batches(db: Database, where: Sequence[ColumnElement[bool]], cursor: int,
                batch_size: int, batch_bytes: int) -> Iterator[StoredChunk]:
    """The chunks matching `where` from offset `cursor` on, in offset order: each batch of at
    most `batch_size` chunks and about `batch_bytes` of payload (at least one chunk) in its
    own short read, sizes first and payloads after, so a slow consumer holds no transaction,
    one that stops early loads nothing more, and memory stays bounded however large the
    uploads were."""
    while True:
        with db.read() as conn:
            listed = conn.execute(
                select(log_chunks.c.first_offset, func.length(log_chunks.c.payload))
                .where(*where, log_chunks.c.first_offset >= cursor)
                .order_by(log_chunks.c.first_offset).limit(batch_size)).all()
            if not listed:
                return
            last, total = listed[0][0], 0
            for first, size in listed:
                if total and total + size > batch_bytes:
                    break
                last, total = first, total + size
            rows = conn.execute(
                select(*_COLUMNS).where(*where, log_chunks.c.first_offset >= cursor,
                                        log_chunks.c.first_offset <= last)
                .order_by(log_chunks.c.first_offset)).all()
        for row in rows:
            yield _chunk(row)
        if len(listed) < batch_size and last == listed[-1][0]:
            return
        cursor = last + 1


def _first_offset_at(db: Database, topic_id: str, ms: int) -> int | None:
    with db.read() as conn:
        return first_offset_at(conn, topic_id, ms)


def first_offset_at(conn: Connection, topic_id: str, ms: int) -> int | None:
    """The first offset of the first chunk ingested at or after `ms`; None if none yet."""
    value = conn.execute(
        select(log_chunks.c.first_offset)
        .where(log_chunks.c.topic_id == topic_id, log_chunks.c.ingest_ms >= ms)
        .order_by(log_chunks.c.ingest_ms, log_chunks.c.first_offset).limit(1)
    ).scalar()
    return None if value is None else int(value)


def topic_head(conn: Connection, topic_id: str) -> int | None:
    """The topic's next offset; None if the topic does not exist."""
    value = conn.execute(select(topics.c.next_offset)
                         .where(topics.c.topic_id == topic_id)).scalar()
    return None if value is None else int(value)


def topic_heads(conn: Connection) -> dict[str, int]:
    """Every topic's next offset (topics are bounded by the quotas)."""
    return {topic_id: int(head) for topic_id, head in
            conn.execute(select(topics.c.topic_id, topics.c.next_offset))}


def retained_bytes(conn: Connection) -> dict[str, int]:
    """Bytes of stored chunks per topic, as stored. The payload's length comes from its header
    (PostgreSQL's TOAST pointer, SQLite's record header), never its content, but every chunk
    row is visited: callers cache it (see service/scrape.py)."""
    return {topic_id: int(size or 0) for topic_id, size in conn.execute(
        select(log_chunks.c.topic_id, func.sum(func.length(log_chunks.c.payload)))
        .group_by(log_chunks.c.topic_id))}


def read_from(db: Database, topic_id: str, offset: int, max_records: int,
              batch_size: int = 64) -> tuple[int, list[StoredChunk]]:
    """Chunks holding records from `offset` on, enough for `max_records` records.

    Returns (head, chunks): the topic's next offset and the chunks in offset order, the first
    one possibly starting before `offset` (the caller slices). Records that retention removed
    are skipped: the chunks then start after `offset`. Raises TopicNotExist, and
    CursorNotExist for an offset beyond the head."""
    head, found = iter_from(db, topic_id, offset, batch_size)
    chunks: list[StoredChunk] = []
    records = 0
    for chunk in found:
        chunks.append(chunk)
        records += chunk.first_offset + chunk.record_count - max(offset, chunk.first_offset)
        if records >= max_records:
            break
    return head, chunks


def iter_from(db: Database, topic_id: str, offset: int, batch_size: int = 64,
              batch_bytes: int = 8 << 20) -> tuple[int, Iterator[StoredChunk]]:
    """(head, the chunks holding records from `offset` on, lazily, in offset order), as
    `read_from`; the errors are raised at once. Payloads are fetched as the caller goes, at
    most `batch_bytes` of them (or one chunk) at a time: a read that needs one record of the
    first chunk never loads the next 63."""
    with db.read() as conn:
        head = topic_head(conn, topic_id)
        if head is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
        if offset < 0 or offset > head:
            raise ServiceError(Kinds.CURSOR_NOT_EXIST,
                               f"no logs at this cursor (offset {offset}; the topic ends at "
                               f"{head})")
        containing = conn.execute(
            select(log_chunks.c.first_offset)
            .where(log_chunks.c.topic_id == topic_id, log_chunks.c.first_offset <= offset)
            .order_by(log_chunks.c.first_offset.desc()).limit(1)).scalar()
    start = offset if containing is None else int(containing)
    return head, _chunks_from(db, topic_id, offset, start, batch_size, batch_bytes)


def _chunks_from(db: Database, topic_id: str, offset: int, cursor: int, batch_size: int,
                 batch_bytes: int) -> Iterator[StoredChunk]:
    of_topic = log_chunks.c.topic_id == topic_id
    while True:
        with db.read() as conn:
            # Sizes first (no payloads), to fetch payloads about `batch_bytes` at a time.
            listed = conn.execute(
                select(log_chunks.c.first_offset, log_chunks.c.record_count,
                       func.length(log_chunks.c.payload))
                .where(of_topic, log_chunks.c.first_offset >= cursor)
                .order_by(log_chunks.c.first_offset).limit(batch_size)).all()
        wanted = [row for row in listed if row[0] + row[1] > offset]
        while wanted:
            take, total = 0, 0
            for row in wanted:
                if take and total + row[2] > batch_bytes:
                    break
                take, total = take + 1, total + row[2]
            first, last = wanted[0][0], wanted[take - 1][0]
            with db.read() as conn:
                rows = conn.execute(
                    select(*_COLUMNS).where(of_topic, log_chunks.c.first_offset >= first,
                                            log_chunks.c.first_offset <= last)
                    .order_by(log_chunks.c.first_offset)).all()
            for stored in rows:
                yield _chunk(stored)
            wanted = wanted[take:]
        if len(listed) < batch_size:
            return
        cursor = listed[-1][0] + 1


# --- Reading one partition (consumption) ---------------------------------------------------

def partition_offset_at(conn: Connection, topic_id: str, partition_id: int,
                        ms: int | None) -> int | None:
    """The first offset of the partition's first chunk ingested at or after `ms` (its oldest
    retained chunk when `ms` is None); None if it holds none."""
    query = (select(log_chunks.c.first_offset)
             .where(log_chunks.c.topic_id == topic_id,
                    log_chunks.c.partition_id == partition_id)
             .order_by(log_chunks.c.first_offset).limit(1))
    if ms is not None:
        # Ingest time grows with the offset, so the first chunk at or after `ms` is also the
        # first in offset order among those.
        query = query.where(log_chunks.c.ingest_ms >= ms)
    value = conn.execute(query).scalar()
    return None if value is None else int(value)


def iter_partition(db: Database, topic_id: str, partition_id: int, offset: int,
                   batch_size: int = 16, batch_bytes: int = 8 << 20) -> Iterator[StoredChunk]:
    """The partition's chunks holding records at `offset` or after, lazily, in offset order:
    each batch of at most `batch_size` chunks (and about `batch_bytes` of payload, at least one
    chunk) in its own short read, so a consumer that stops early loads nothing more."""
    in_partition = [log_chunks.c.topic_id == topic_id, log_chunks.c.partition_id == partition_id]
    # The chunk holding `offset` starts at or before it: records are never split over chunks.
    cursor = offset
    with db.read() as conn:
        containing = conn.execute(
            select(log_chunks.c.first_offset, log_chunks.c.record_count)
            .where(*in_partition, log_chunks.c.first_offset <= offset)
            .order_by(log_chunks.c.first_offset.desc()).limit(1)).first()
    if containing is not None and containing[0] + containing[1] > offset:
        cursor = int(containing[0])
    yield from _in_batches(db, in_partition, cursor, batch_size, batch_bytes)


# --- Retention -------------------------------------------------------------------------------

def consumer_holds(conn: Connection) -> dict[str, int]:
    """By topic, the lowest offset a consumer group still needs: the lowest committed offset
    of any group reading it, or, where a group has not committed every partition, the first
    record ingested since the group was created (it may start from `begin`, and nothing
    older than it can be one it has read)."""
    groups = conn.execute(
        select(consumer_group_topics.c.topic_id, consumer_group_topics.c.logset_id,
               consumer_group_topics.c.group_name, consumer_groups.c.created_ms,
               topics.c.partition_count)
        .join(consumer_groups, (consumer_groups.c.logset_id == consumer_group_topics.c.logset_id)
              & (consumer_groups.c.group_name == consumer_group_topics.c.group_name))
        .join(topics, topics.c.topic_id == consumer_group_topics.c.topic_id)).all()
    committed: dict[tuple[str, str, str], list[int]] = {}
    for row in conn.execute(select(consumer_partitions.c.topic_id, consumer_partitions.c.logset_id,
                                   consumer_partitions.c.group_name,
                                   consumer_partitions.c.committed_offset)
                            .where(consumer_partitions.c.committed_offset >= 0)):
        committed.setdefault((row.topic_id, row.logset_id, row.group_name),
                             []).append(int(row.committed_offset))
    holds: dict[str, int] = {}
    for g in groups:
        offsets = committed.get((g.topic_id, g.logset_id, g.group_name), [])
        hold = min(offsets) if offsets else None
        if len(offsets) < g.partition_count:
            since = first_offset_at(conn, g.topic_id, g.created_ms)
            if since is None:
                since = topic_head(conn, g.topic_id) or 0
            hold = since if hold is None else min(hold, since)
        if hold is not None:
            holds[g.topic_id] = min(hold, holds.get(g.topic_id, hold))
    return holds


def expire_chunks(db: Database, now_ms: int, batch_size: int = 1000,
                  consumer_hold_days: float = 7.0) -> int:
    """Delete the chunks older than their topic's retention (`topics.period`, else the
    logset's `period`, in days), but never one a shipper still has to ship: a window not cut
    yet (a switched-off shipper, a backlog) or a task not `success` (a failed window waiting
    for PUT /task) holds its records past retention. Nor one a consumer group has not
    committed (`consumer_holds`), for at most `consumer_hold_days` past retention (0: groups
    hold nothing): a group nobody reads any more cannot fill the disk, and when the bound
    removes records a group has not processed, it says so in the log. Returns how many
    chunks were deleted. Deletes in batches of short transactions so uploads are never held
    up for long."""
    with db.read() as conn:
        retention = conn.execute(
            select(topics.c.topic_id, func.coalesce(topics.c.period, logsets.c.period))
            .join(logsets, logsets.c.logset_id == topics.c.logset_id)).all()
        # A bounded (historical) shipper whose last window is cut needs nothing more.
        still_cutting = ~((shippers.c.end_ms > 0)
                          & (shippers.c.next_window_ms >= shippers.c.end_ms))
        not_cut = dict(conn.execute(
            select(shippers.c.topic_id, func.min(shippers.c.next_window_ms))
            .where(still_cutting).group_by(shippers.c.topic_id)).all())
        not_shipped = dict(conn.execute(
            select(tasks.c.topic_id, func.min(tasks.c.range_start_ms))
            .where(tasks.c.status != TaskStatus.SUCCESS).group_by(tasks.c.topic_id)).all())
        holds = consumer_holds(conn) if consumer_hold_days > 0 else {}
    deleted = 0
    for topic_id, days in retention:
        if not days or days <= 0:
            continue
        cut = min(now_ms - int(days) * DAY_MS, not_cut.get(topic_id, now_ms),
                  not_shipped.get(topic_id, now_ms))
        held = holds.get(topic_id)
        if held is not None:
            # Past the bound, the records go whatever the groups committed.
            with db.read() as conn:
                bound_ms = now_ms - int(days) * DAY_MS - int(consumer_hold_days * DAY_MS)
                bound = first_offset_at(conn, topic_id, bound_ms)
                if bound is None:
                    bound = topic_head(conn, topic_id) or 0
            if bound > held:
                log.warning("retention removes records of topic %s that a consumer group has "
                            "not committed (offsets %d to %d): they were kept %s day(s) past "
                            "the topic's retention (consumer_hold_days)", topic_id, held,
                            bound, consumer_hold_days)
                held = bound
        conditions = [log_chunks.c.topic_id == topic_id, log_chunks.c.ingest_ms < cut]
        if held is not None:
            conditions.append(log_chunks.c.first_offset + log_chunks.c.record_count <= held)
        while True:
            with db.begin() as conn:
                offsets = conn.execute(
                    select(log_chunks.c.first_offset).where(*conditions)
                    .order_by(log_chunks.c.first_offset).limit(batch_size)).scalars().all()
                if not offsets:
                    break
                # Ingest time grows with the offset, and both conditions keep a prefix of
                # the topic: everything in this range is expired.
                result = conn.execute(delete(log_chunks).where(
                    log_chunks.c.topic_id == topic_id,
                    log_chunks.c.first_offset >= offsets[0],
                    log_chunks.c.first_offset <= offsets[-1]))
                deleted += int(result.rowcount or 0)
            if len(offsets) < batch_size:
                break
    return deleted
