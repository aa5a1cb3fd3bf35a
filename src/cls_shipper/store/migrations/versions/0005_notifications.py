"""Notifications: the outbox and the lag alerts.

Revision ID: 0005
Revises: 0004

Events about windows and shippers (a window failed or recovered, a shipper blocked or
unblocked, its lag over the threshold or back under it) are written to an outbox in the
transaction of the transition they report, and delivered to a webhook by the node leading
the scheduler. Shippers over the lag threshold are remembered, so that each crossing is one
event across restarts. Tasks remember when they last failed: their success is a recovery.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ms = sa.BigInteger


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("failed_ms", ms, nullable=True))
    op.create_table(
        "notifications",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("shipper_id", sa.String(64), nullable=False),
        sa.Column("created_ms", ms, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ms", ms, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
    )
    op.create_index("ix_notifications_due", "notifications", ["state", "next_attempt_ms"])
    op.create_index("ix_notifications_created", "notifications", ["created_ms"])
    op.create_table(
        "lag_alerts",
        sa.Column("shipper_id", sa.String(64), primary_key=True),
        sa.Column("since_ms", ms, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lag_alerts")
    op.drop_index("ix_notifications_created", "notifications")
    op.drop_index("ix_notifications_due", "notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("failed_ms")
