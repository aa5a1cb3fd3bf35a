"""What the console's overview adds to the listings: how fast each topic is being written."""

from __future__ import annotations

from sqlalchemy import func, select

from cls_shipper.service.context import Context
from cls_shipper.store.schema import log_chunks
from cls_shipper.timefmt import now_ms

RATE_SPAN_MS = 60_000


def records_last_minute(ctx: Context, now: int | None = None) -> dict[str, int]:
    """Records ingested in the last minute, by topic id (topics with none are absent). One
    indexed range read of the chunk table (topic_id, ingest_ms)."""
    since = (now_ms() if now is None else now) - RATE_SPAN_MS
    with ctx.db.read() as conn:
        rows = conn.execute(select(log_chunks.c.topic_id, func.sum(log_chunks.c.record_count))
                            .where(log_chunks.c.ingest_ms >= since)
                            .group_by(log_chunks.c.topic_id)).all()
    return {topic_id: int(count or 0) for topic_id, count in rows}
