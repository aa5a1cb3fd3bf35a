"""Records rejected per task.

Revision ID: 0004
Revises: 0003

A record that the shipper's format cannot write no longer fails its window: it goes to the
window's rejects object and is counted on the task, so `GET /task`, the audit and the CLI
can say how many records of a successful window are not in its parts. Tasks shipped before
rejected nothing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("records_rejected", sa.BigInteger, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("records_rejected")
