"""Log chunk payloads stored as they are on PostgreSQL.

Revision ID: 0009
Revises: 0008

A payload is an upload as the client compressed it (LZ4, zstd, deflate): PostgreSQL's
default storage for `bytea` (EXTENDED) tries to compress every value over 2 KB again and,
finding it incompressible, stores it as it is, having spent the CPU. On the 2-core bench
machine that attempt was half of PostgreSQL's CPU per upload; EXTERNAL skips it (values
still move out of line). Rows already stored keep their form; SQLite has no such setting.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE log_chunks ALTER COLUMN payload SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE log_chunks ALTER COLUMN payload SET STORAGE EXTENDED")
