"""Initial schema: keys, logsets, topics, log chunks, shippers, tasks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ms = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("secret_id", sa.String(64), primary_key=True),
        sa.Column("secret_key", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_ms", ms, nullable=False),
    )
    op.create_table(
        "logsets",
        sa.Column("logset_id", sa.String(64), primary_key=True),
        sa.Column("logset_name", sa.String(255), nullable=False, unique=True),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_ms", ms, nullable=False),
    )
    op.create_table(
        "topics",
        sa.Column("topic_id", sa.String(64), primary_key=True),
        sa.Column("logset_id", sa.String(64), sa.ForeignKey("logsets.logset_id"), nullable=False),
        sa.Column("topic_name", sa.String(255), nullable=False),
        sa.Column("partition_count", sa.Integer, nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("wild_path", sa.String(1024), nullable=False),
        sa.Column("collection", sa.Boolean, nullable=False),
        sa.Column("index_enabled", sa.Boolean, nullable=False),
        sa.Column("log_type", sa.String(32), nullable=False),
        sa.Column("extract_rule", sa.JSON, nullable=False),
        sa.Column("period", sa.Integer, nullable=True),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("created_ms", ms, nullable=False),
        sa.Column("next_offset", ms, nullable=False),
        sa.Column("last_ingest_ms", ms, nullable=False),
        sa.Column("sealed_ms", ms, nullable=False),
        sa.UniqueConstraint("logset_id", "topic_name", name="uq_topic_name"),
    )
    op.create_table(
        "log_chunks",
        sa.Column("topic_id", sa.String(64), primary_key=True),
        sa.Column("first_offset", ms, primary_key=True),
        sa.Column("record_count", sa.Integer, nullable=False),
        sa.Column("ingest_ms", ms, nullable=False),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("raw_size", sa.Integer, nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_log_chunks_topic_ingest", "log_chunks", ["topic_id", "ingest_ms"])
    op.create_table(
        "shippers",
        sa.Column("shipper_id", sa.String(64), primary_key=True),
        sa.Column("topic_id", sa.String(64), nullable=False),
        sa.Column("shipper_name", sa.String(255), nullable=False),
        sa.Column("created_ms", ms, nullable=False),
        sa.Column("updated_ms", ms, nullable=False),
        sa.Column("effective", sa.Boolean, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("next_window_ms", ms, nullable=False),
        sa.Column("start_ms", ms, nullable=False),
        sa.Column("end_ms", ms, nullable=False),
    )
    op.create_index("ix_shippers_topic", "shippers", ["topic_id"])
    op.create_table(
        "tasks",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("shipper_id", sa.String(64), nullable=False),
        sa.Column("topic_id", sa.String(64), nullable=False),
        sa.Column("range_start_ms", ms, nullable=False),
        sa.Column("range_end_ms", ms, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_ms", ms, nullable=False),
        sa.Column("run_start_ms", ms, nullable=True),
        sa.Column("run_end_ms", ms, nullable=True),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", ms, nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expires_ms", ms, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("records", ms, nullable=False),
        sa.Column("records_filtered", ms, nullable=False),
        sa.Column("bytes_in", ms, nullable=False),
        sa.Column("bytes_out", ms, nullable=False),
        sa.Column("first_offset", ms, nullable=True),
        sa.Column("last_offset", ms, nullable=True),
        sa.Column("objects", sa.JSON, nullable=False),
        sa.UniqueConstraint("shipper_id", "range_start_ms", name="uq_task_window"),
    )
    op.create_index("ix_tasks_queue", "tasks", ["status", "next_attempt_ms"])
    op.create_index("ix_tasks_shipper_start", "tasks", ["shipper_id", "run_start_ms"])


def downgrade() -> None:
    for name in ("tasks", "shippers", "log_chunks", "topics", "logsets", "access_keys"):
        op.drop_table(name)
