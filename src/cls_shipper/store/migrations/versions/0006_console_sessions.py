"""Console sessions.

Revision ID: 0006
Revises: 0005

The console signs a person in with an access key and keeps a server-side session, so the
SecretKey never reaches the browser and a session works on every API node and across
restarts. Only a hash of the cookie's token is stored: reading the table gives no session
away. `expires_ms` is indexed because expired sessions are pruned by it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("secret_id", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_console_sessions_expires", "console_sessions", ["expires_ms"])
    op.create_index("ix_console_sessions_key", "console_sessions", ["secret_id"])


def downgrade() -> None:
    op.drop_index("ix_console_sessions_key", table_name="console_sessions")
    op.drop_index("ix_console_sessions_expires", table_name="console_sessions")
    op.drop_table("console_sessions")
