"""Pulling a partition's records for consumers (`LogClient.pull_logs`, `POST /pull_log`).

A consumer reads one partition from an offset: records keep the one offset sequence of their
topic (store/chunks.py), so a partition's offsets grow but are not dense, and an offset says
"the partition's records at this offset or after". `StartOffset` -1 (or absent) starts at
the first record ingested at or after `StartTime` (0: the oldest one kept). The answer is
what the SDK's `PullLogResponse` parses: `{"Response": {"NextOffset", "Message"}}`, each
message a LogGroup behind CLS's 96-byte header, base64 in JSON, the whole compressed as the
request's `CompressType` asks (raw snappy, as the SDK always sends, raw lz4 or none).
`NextOffset` -1 means `EndTime` is reached: no record before it can still arrive.

Memory is bounded per request by `Size` (at most MAX_PULL_BYTES of LogGroups; at least one
record goes out, so a reader always moves on) and across requests by the shared read budget
that `GET /log` uses for whole-chunk decompression.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import cramjam
import orjson
from sqlalchemy import func, select

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.ingest import readback
from cls_shipper.inputs import INT64_MAX
from cls_shipper.model import partitions
from cls_shipper.service.context import Context
from cls_shipper.service.logs import read_budget
from cls_shipper.store import chunks as chunk_store
from cls_shipper.store.schema import log_chunks, topics
from cls_shipper.timefmt import normalise_log_time_ms

# The SDK's default `max_fetch_log_group_size` is 1 MiB and its documented maximum 10 MiB.
DEFAULT_PULL_BYTES = 1 << 20
MAX_PULL_BYTES = 10 << 20
COMPRESS_TYPES = ("snappy", "lz4", "none", "")
# CLS's message header (the SDK's pulllog_response.Message): version 130, the time (ms), the
# account (0 here), the logset and topic ids (36 bytes each, NUL-padded), the content length.
MESSAGE_VERSION = 130
_HEADER = struct.Struct(">iqq36s36si")
assert _HEADER.size == 96


@dataclass(frozen=True, slots=True)
class PullQuery:
    partition_id: int
    start_offset: int = -1
    start_time: int = 0
    size: int = DEFAULT_PULL_BYTES
    compress_type: str = "snappy"
    end_time: int | None = None
    query: str | None = None


@dataclass(frozen=True, slots=True)
class Pulled:
    body: bytes  # the compressed JSON answer
    raw_size: int  # its size before compression
    compress_type: str
    next_offset: int
    count: int  # records
    groups: int


@dataclass(frozen=True, slots=True)
class PartitionHead:
    """What a read of one partition starts from, read before its chunks: records committed
    after it get offsets at or after `head` and an ingest time at or after
    `last_ingest_ms`."""

    logset_id: str
    partition_count: int
    head: int
    last_ingest_ms: int


def partition_head(ctx: Context, topic_id: str, partition_id: int) -> PartitionHead:
    """The topic's head, after checking the partition exists (one of `partition_count`, or
    one that still holds records after the count was lowered)."""
    with ctx.db.read() as conn:
        row = conn.execute(select(topics.c.logset_id, topics.c.partition_count,
                                  topics.c.next_offset, topics.c.last_ingest_ms)
                           .where(topics.c.topic_id == topic_id)).first()
        if row is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
        known = partition_id in partitions.partition_ids(row.partition_count)
        if not known and 0 < partition_id <= partitions.MAX_PARTITIONS:
            known = conn.execute(select(func.count()).select_from(log_chunks).where(
                log_chunks.c.topic_id == topic_id,
                log_chunks.c.partition_id == partition_id)).scalar_one() > 0
    if not known:
        raise ServiceError(Kinds.PARTITION_NOT_EXIST,
                           f"topic {topic_id!r} has no partition {partition_id} (partitions "
                           f"are 1 to {row.partition_count})")
    return PartitionHead(row.logset_id, row.partition_count, int(row.next_offset),
                         int(row.last_ingest_ms))


def check_query(q: PullQuery) -> None:
    if not 1 <= q.size <= MAX_PULL_BYTES:
        raise invalid(f"Size must be from 1 to {MAX_PULL_BYTES} bytes")
    if q.compress_type not in COMPRESS_TYPES:
        raise ServiceError(Kinds.INVALID_COMPRESS_TYPE,
                           f"CompressType {q.compress_type[:50]!r} is not supported; use "
                           "snappy, lz4 or none")
    if q.start_offset < -1:
        raise ServiceError(Kinds.INVALID_OFFSET,
                           f"StartOffset {q.start_offset} is not an offset (-1: from StartTime)")
    if not 0 <= q.start_time <= INT64_MAX or (q.end_time is not None and q.end_time < 0):
        raise invalid("StartTime and EndTime must be Unix times (s, ms or µs), not negative")
    if q.query:
        # As DSLFilter on shippers: silently ignoring a filter would hand the consumer
        # records it meant to drop.
        raise ServiceError(Kinds.NOT_SUPPORTED,
                           "Query (the processing DSL) is not supported; filter in the consumer")


def pull(ctx: Context, topic_id: str | None, q: PullQuery) -> Pulled:
    if not topic_id:
        raise ServiceError(Kinds.MISSING_PARAM, "missing required parameter 'topic_id'")
    if len(topic_id) > 64:
        raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id[:64]!r}... does not exist")
    check_query(q)
    # The head first, then the chunks: a record committed in between lands at or after the
    # head, so answering "nothing here, go on from the head" can never skip it.
    at = partition_head(ctx, topic_id, q.partition_id)
    if q.start_offset > at.head:
        raise ServiceError(Kinds.INVALID_OFFSET,
                           f"StartOffset {q.start_offset} is beyond the end of the topic "
                           f"({at.head})")
    if q.start_offset >= 0:
        offset = q.start_offset
    else:
        with ctx.db.read() as conn:
            since = normalise_log_time_ms(q.start_time) if q.start_time > 0 else None
            found = chunk_store.partition_offset_at(conn, topic_id, q.partition_id, since)
        offset = at.head if found is None else found
    end_ms = None if q.end_time is None else normalise_log_time_ms(q.end_time)
    budget = read_budget(ctx.settings.max_read_buffer_bytes)
    messages: list[str] = []
    size = count = 0
    next_offset = offset
    reached_end = end_ms is not None and at.last_ingest_ms >= end_ms
    logset = at.logset_id.encode()[:36]
    topic = topic_id.encode()[:36]
    for chunk in chunk_store.iter_partition(ctx.db, topic_id, q.partition_id, offset):
        if end_ms is not None and chunk.ingest_ms >= end_ms:
            reached_end = True
            break
        lo = max(offset, chunk.first_offset) - chunk.first_offset
        groups, taken = readback.read_groups(chunk.codec, chunk.payload, chunk.raw_size, lo,
                                             q.size - size if count else q.size, budget)
        for group in groups:
            header = _HEADER.pack(MESSAGE_VERSION, chunk.ingest_ms, 0, logset, topic, len(group))
            messages.append(base64.b64encode(header + group).decode("ascii"))
            size += len(group)
        count += taken
        next_offset = chunk.first_offset + lo + taken
        if lo + taken < chunk.record_count or size >= q.size:
            break
    if count == 0:
        # Nothing at or after the offset in this partition: the end (or EndTime) is reached,
        # and the next record can only come at the head or after it.
        next_offset = -1 if reached_end else max(offset, at.head)
    raw = orjson.dumps({"Response": {"NextOffset": next_offset, "Message": messages}})
    return Pulled(_compress(q.compress_type, raw), len(raw), q.compress_type or "none",
                  next_offset, count, len(messages))


def _compress(kind: str, raw: bytes) -> bytes:
    if kind == "snappy":
        # Raw snappy (no framing): what python-snappy's `snappy.decompress` reads.
        return bytes(cramjam.snappy.compress_raw(raw))
    if kind == "lz4":
        # A raw block without its size, as uploads are: x-cls-body-raw-size gives the size.
        return bytes(cramjam.lz4.compress_block(raw, store_size=False))
    return raw
