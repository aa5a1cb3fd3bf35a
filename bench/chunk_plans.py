"""Query plans of the log chunk reads on a realistically sized PostgreSQL table: with the
schema's indexes (primary key (topic_id, first_offset), ix (topic_id, ingest_ms)), then
with the alternative index (topic_id, ingest_ms, first_offset) in place of the latter.

Creates a scratch database next to `--database-url`, migrates it to head, loads `--rows`
chunks over 200 topics with generate_series (small payloads: the plans depend on the row
count, not on the TOASTed payload), and prints EXPLAIN (ANALYZE, BUFFERS) of the three
queries `store.chunks` runs: a window's first offset, one batch of a window, one retention
batch. The scratch database is dropped.

    .venv/bin/python bench/chunk_plans.py [--database-url postgresql://...] [--rows 3000000]
"""

from __future__ import annotations

import argparse
import time
import uuid

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text

from cls_shipper.store.database import MIGRATIONS, make_engine

TOPICS = 200
CHUNK_RECORDS = 100
STEP_MS = 50
BASE_MS = 1_700_000_000_000

QUERIES = {
    "window first offset": (
        "SELECT first_offset FROM log_chunks WHERE topic_id = :topic AND ingest_ms >= :at"
        " ORDER BY ingest_ms, first_offset LIMIT 1"),
    "window batch (32)": (
        "SELECT topic_id, first_offset, record_count, ingest_ms, codec, raw_size, client_ip,"
        " payload FROM log_chunks WHERE topic_id = :topic AND first_offset >= :cursor"
        " AND ingest_ms >= :at AND ingest_ms < :until AND first_offset < :stop"
        " ORDER BY first_offset LIMIT 32"),
    "retention batch (1000)": (
        "SELECT first_offset FROM log_chunks WHERE topic_id = :topic AND ingest_ms < :at"
        " ORDER BY first_offset LIMIT 1000"),
}


def upgrade(url: str, revision: str) -> None:  # without the advisory lock: a scratch db
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()
    engine.dispose()


def explain(conn: Connection, rows: int) -> None:
    per_topic = rows // TOPICS
    middle = per_topic // 2
    params = {"topic": "topic-17", "at": BASE_MS + middle * STEP_MS,
              "until": BASE_MS + (middle + 1200) * STEP_MS, "cursor": middle * CHUNK_RECORDS,
              "stop": (middle + 1200) * CHUNK_RECORDS}
    for name, sql in QUERIES.items():
        plan = conn.execute(text("EXPLAIN (ANALYZE, BUFFERS) " + sql), params).scalars().all()
        print(f"--- {name}")
        for line in plan:
            print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--rows", type=int, default=3_000_000)
    args = parser.parse_args()
    admin = create_engine(args.database_url.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    name = f"cls_shipper_plans_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.database_url.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url, "head")
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SET statement_timeout = 0"))
            started = time.perf_counter()
            # Chunk i goes to topic i % TOPICS; per topic, offsets and ingest time grow.
            conn.execute(text(
                "INSERT INTO log_chunks SELECT 'topic-' || (i % :topics),"
                " (i / :topics) * :records, :records, :base + (i / :topics) * :step, 'lz4',"
                " 1000, '10.0.0.1', decode(repeat('ab', 200), 'hex')"
                " FROM generate_series(0, :rows - 1) AS i"),
                {"topics": TOPICS, "records": CHUNK_RECORDS, "base": BASE_MS, "step": STEP_MS,
                 "rows": args.rows})
            conn.commit()
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE log_chunks"))
            print(f"loaded {args.rows:,} chunks in {time.perf_counter() - started:.1f}s")
            print("=== schema: pkey (topic_id, first_offset), ix (topic_id, ingest_ms)")
            explain(conn, args.rows)
            conn.execute(text("DROP INDEX ix_log_chunks_topic_ingest"))
            conn.execute(text("CREATE INDEX ix_alternative ON log_chunks"
                              " (topic_id, ingest_ms, first_offset)"))
            conn.execute(text("ANALYZE log_chunks"))
            conn.commit()
            print("=== alternative: ix (topic_id, ingest_ms, first_offset)")
            explain(conn, args.rows)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
