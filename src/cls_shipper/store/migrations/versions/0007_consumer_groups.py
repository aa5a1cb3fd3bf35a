"""Partitions and consumer groups.

Revision ID: 0007
Revises: 0006

Every chunk records the partition its upload went to (chunks stored before were all in a
topic's only partition, 1), with an index to walk one partition in offset order; consumer
groups, their topics, their live consumers and their partitions (owner and committed offset)
are kept in the database so that every API node sees the same assignment.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("log_chunks") as batch:
        batch.add_column(sa.Column("partition_id", sa.Integer, nullable=False,
                                   server_default="1"))
    op.create_index("ix_log_chunks_partition", "log_chunks",
                    ["topic_id", "partition_id", "first_offset"])
    op.create_table(
        "consumer_groups",
        sa.Column("logset_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "consumer_group_topics",
        sa.Column("logset_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("topic_id", sa.String(64), primary_key=True),
    )
    op.create_index("ix_consumer_group_topics_topic", "consumer_group_topics", ["topic_id"])
    op.create_table(
        "consumer_members",
        sa.Column("logset_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("consumer", sa.String(255), primary_key=True),
        sa.Column("last_seen_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "consumer_partitions",
        sa.Column("logset_id", sa.String(64), primary_key=True),
        sa.Column("group_name", sa.String(255), primary_key=True),
        sa.Column("topic_id", sa.String(64), primary_key=True),
        sa.Column("partition_id", sa.Integer, primary_key=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("committed_offset", sa.BigInteger, nullable=True),
        sa.Column("committed_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_consumer_partitions_topic", "consumer_partitions", ["topic_id"])


def downgrade() -> None:
    op.drop_table("consumer_partitions")
    op.drop_table("consumer_members")
    op.drop_index("ix_consumer_group_topics_topic", "consumer_group_topics")
    op.drop_table("consumer_group_topics")
    op.drop_table("consumer_groups")
    op.drop_index("ix_log_chunks_partition", "log_chunks")
    with op.batch_alter_table("log_chunks") as batch:
        batch.drop_column("partition_id")
