"""offline root: CAs whose key is held only in a ceremony home, and the requests it must sign (ca/ceremony.py)

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cas") as batch:
        batch.add_column(sa.Column("offline", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "ceremony_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("ca_name", sa.String(64), sa.ForeignKey("cas.name"), nullable=False),
        sa.Column("key_ref", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tbs_der", sa.LargeBinary(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(160), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.String(160), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
    )
    op.create_index("ix_ceremony_requests_status_created", "ceremony_requests", ["status", "created_at"])
    op.create_index(
        "uq_ceremony_requests_pending",
        "ceremony_requests",
        ["operation", "subject"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("uq_ceremony_requests_pending", table_name="ceremony_requests")
    op.drop_index("ix_ceremony_requests_status_created", table_name="ceremony_requests")
    op.drop_table("ceremony_requests")
    with op.batch_alter_table("cas") as batch:
        batch.drop_column("offline")
