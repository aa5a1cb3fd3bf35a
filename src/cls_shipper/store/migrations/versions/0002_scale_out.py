"""Scale-out: task run log, node registry.

Revision ID: 0002
Revises: 0001

(The log chunk indexes stay as they are: bench/chunk_plans.py shows the window and retention
reads on 3M chunks use them well; see there for the alternative measured and rejected.)
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ms = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("shipper_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("lease_token", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("started_ms", ms, nullable=False),
        sa.Column("ended_ms", ms, nullable=True),
        sa.Column("lease_expires_ms", ms, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_task_runs_task", "task_runs", ["task_id", "started_ms"])
    op.create_index("uq_task_runs_one_running", "task_runs", ["task_id"], unique=True,
                    postgresql_where=sa.text("outcome = 'running'"),
                    sqlite_where=sa.text("outcome = 'running'"))
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.String(128), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_ms", ms, nullable=False),
        sa.Column("last_seen_ms", ms, nullable=False),
        sa.Column("leader", sa.Boolean, nullable=False),
        sa.Column("current_task_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_nodes_last_seen", "nodes", ["last_seen_ms"])


def downgrade() -> None:
    op.drop_table("nodes")
    op.drop_table("task_runs")
