"""Retry policy for outages, blocked shippers.

Revision ID: 0003
Revises: 0002

Tasks remember when their window was first attempted (the retry deadline counts from it),
how many times a worker died on them (the guard against a window that kills its worker,
counted apart from attempts, which an outage now makes many), and the kind of destination
failure that failed them (the tasks a healed shipper queues again). A shipper whose
destination refuses it is blocked: since when, why, which bucket and prefix are probed,
when next, and how many probes ran since it last shipped (the probe backoff).
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ms = sa.BigInteger


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("first_attempt_ms", ms, nullable=True))
        batch.add_column(sa.Column("expiries", sa.Integer, nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("failure_kind", sa.String(16), nullable=True))
    with op.batch_alter_table("shippers") as batch:
        batch.add_column(sa.Column("blocked_since_ms", ms, nullable=True))
        batch.add_column(sa.Column("blocked_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("blocked_code", sa.Integer, nullable=True))
        batch.add_column(sa.Column("blocked_bucket", sa.String(255), nullable=True))
        batch.add_column(sa.Column("blocked_prefix", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("next_probe_ms", ms, nullable=True))
        batch.add_column(sa.Column("probe_round", sa.Integer, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("shippers") as batch:
        for name in ("probe_round", "next_probe_ms", "blocked_prefix", "blocked_bucket",
                     "blocked_code", "blocked_reason", "blocked_since_ms"):
            batch.drop_column(name)
    with op.batch_alter_table("tasks") as batch:
        for name in ("failure_kind", "expiries", "first_attempt_ms"):
            batch.drop_column(name)
