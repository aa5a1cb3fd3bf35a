"""Log ingest and read-back (spec §5.3, §5.5): the operations both API surfaces and the CLI use.

`upload` decodes and validates a body, then hands it to the store's group-commit writer and
returns once it is durably committed. `cursor_at` / `get_logs` read records back by offset;
a cursor is the base64 text of a record offset.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from dataclasses import dataclass

from cls_shipper.errors import Kinds, ServiceError, invalid, missing
from cls_shipper.ingest import readback
from cls_shipper.ingest.decode import DecodedUpload, decode_upload
from cls_shipper.inputs import ascii_int
from cls_shipper.model import partitions
from cls_shipper.service.context import Context
from cls_shipper.store import chunks as chunk_store
from cls_shipper.timefmt import normalise_log_time_ms, parse_legacy

# Bodies above this are decoded in a worker thread so a big upload cannot stall the event
# loop for every other request; below it the thread hand-off costs more than the decode.
OFFLOAD_BYTES = 256 * 1024
MAX_READ_COUNT = 1000
# A read stops adding chunks once it holds this much (at least one chunk's records go out):
# the next read goes on from the cursor it returns.
MAX_READ_BYTES = 16 << 20
MAX_HASH_KEY = 1024


@dataclass(frozen=True, slots=True)
class UploadResult:
    topic_id: str
    first_offset: int
    record_count: int
    ingest_ms: int


def _chunk(topic_id: str, decoded: DecodedUpload, client_ip: str,
           hash_key: str | None) -> chunk_store.NewChunk:
    # The key's place in the key space picks the partition (model/partitions.py); without
    # one, uploads take the topic's partitions in turn.
    position = partitions.key_position(hash_key) if hash_key else None
    return chunk_store.NewChunk(topic_id, decoded.record_count, decoded.codec, decoded.raw_size,
                                client_ip, decoded.payload, position)


def _check_topic_id(topic_id: str | None) -> str:
    if not topic_id:
        raise missing("topic_id")
    if len(topic_id) > 64:
        raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id[:64]!r}... does not exist")
    return topic_id


async def upload(ctx: Context, topic_id: str | None, body: bytes, content_type: str | None,
                 compress_type: str | None, client_ip: str,
                 hash_key: str | None = None) -> UploadResult:
    """Store one upload (protobuf LogGroupList, or the JSON form when `content_type` is
    application/json; compressed per `compress_type`) into the partition `hash_key` falls in
    (`x-cls-hashkey`; at most MAX_HASH_KEY characters). Returns after the commit; raises
    ServiceError for anything refused, in which case nothing is stored."""
    topic = _check_topic_id(topic_id)
    if hash_key is not None and len(hash_key) > MAX_HASH_KEY:
        raise invalid(f"x-cls-hashkey must be at most {MAX_HASH_KEY} characters")
    if len(body) > OFFLOAD_BYTES:
        decoded = await asyncio.to_thread(decode_upload, body, content_type, compress_type)
    else:
        decoded = decode_upload(body, content_type, compress_type)
    future = chunk_store.writer_for(ctx.db).submit(_chunk(topic, decoded, client_ip, hash_key))
    done = await asyncio.wrap_future(future)
    return UploadResult(done.topic_id, done.first_offset, done.record_count, done.ingest_ms)


# --- Read-back -------------------------------------------------------------------------------

def encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def decode_cursor(text: str | None) -> int:
    if not text:
        raise missing("cursor")
    try:
        digits = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        digits = b""
    if not digits.isdigit() or len(digits) > 19:
        raise ServiceError(Kinds.CURSOR_NOT_EXIST, f"{text[:100]!r} is not a cursor")
    return int(digits)


def _start_ms(ctx: Context, start: str | None) -> int:
    if start is None or not start.strip():
        raise missing("start")
    text = start.strip()
    # Beyond the spec: epoch seconds / milliseconds / microseconds, for scripts and the CLI.
    if text.isascii() and text.isdigit():
        return normalise_log_time_ms(ascii_int(text, "start", 0, 10**17))
    try:
        return parse_legacy(text, ctx.zone)
    except ValueError:
        raise invalid("start must be YYYY-mm-dd HH:MM:SS (server time zone) or epoch "
                      "seconds/milliseconds") from None


def cursor_at(ctx: Context, topic_id: str | None, start: str | None) -> str:
    """The cursor of the first record ingested at or after `start` (the topic's end when
    nothing was ingested since)."""
    topic = _check_topic_id(topic_id)
    ms = _start_ms(ctx, start)
    with ctx.db.read() as conn:
        head = chunk_store.topic_head(conn, topic)
        if head is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic!r} does not exist")
        offset = chunk_store.first_offset_at(conn, topic, ms)
    return encode_cursor(head if offset is None else offset)


@dataclass(frozen=True, slots=True)
class LogBatch:
    body: bytes  # a serialized LogGroupList
    count: int
    next_cursor: str


def get_logs(ctx: Context, topic_id: str | None, cursor: str | None,
             count: int = MAX_READ_COUNT) -> LogBatch:
    """Up to `count` records from `cursor` on, exactly as uploaded, in offset order. The
    memory a read takes is bounded by what it returns (and MAX_READ_BYTES bounds that), not
    by the size of the chunks the records come from (see `ingest.readback`)."""
    topic = _check_topic_id(topic_id)
    offset = decode_cursor(cursor)
    if not 1 <= count <= MAX_READ_COUNT:
        raise invalid(f"count must be from 1 to {MAX_READ_COUNT}")
    head, chunks = chunk_store.iter_from(ctx.db, topic, offset)
    budget = read_budget(ctx.settings.max_read_buffer_bytes)
    start: int | None = None
    parts: list[bytes | bytearray] = []
    size = returned = 0
    for chunk in chunks:
        if start is None:
            start = max(offset, chunk.first_offset)
        stop = start + count
        lo = max(start, chunk.first_offset) - chunk.first_offset
        hi = min(stop, chunk.first_offset + chunk.record_count) - chunk.first_offset
        if hi <= lo:
            break
        # Serialized LogGroupLists concatenate into one (a repeated field's entries append),
        # so whole chunks go out as stored, without a parse.
        if lo == 0 and hi == chunk.record_count:
            part = readback.read_whole(chunk.codec, chunk.payload, chunk.raw_size, budget)
        else:
            part = readback.read_records(chunk.codec, chunk.payload, chunk.raw_size, lo, hi,
                                         budget)
        parts.append(part)
        size += len(part)
        returned += hi - lo
        if returned >= count or size >= MAX_READ_BYTES:
            break
    if start is None:
        # Nothing at or after the offset: either the end of the topic or records that
        # retention already removed; either way the topic's end is where to go on.
        return LogBatch(b"", 0, encode_cursor(max(offset, head)))
    return LogBatch(b"".join(parts), returned, encode_cursor(start + returned))


_budgets: dict[int, readback.ReadBudget] = {}
_budgets_lock = threading.Lock()


def read_budget(limit: int) -> readback.ReadBudget:
    """The process's read budget (one per configured size: a server has one)."""
    with _budgets_lock:
        budget = _budgets.get(limit)
        if budget is None:
            budget = _budgets[limit] = readback.ReadBudget(limit)
        return budget
