"""Topic options.

Revision ID: 0008
Revises: 0007

API 3.0's CreateTopic and ModifyTopic carry options beyond the legacy topic's columns
(AutoSplit, MaxSplitPartitions, StorageType, Describes, HotPeriod, IsWebTracking, ...). They
are kept in one JSON column so that adding the next one needs no migration; existing topics
get {} and read the documented defaults.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.add_column(sa.Column("options", sa.JSON, nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.drop_column("options")
