"""licence registry

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licences",
        sa.Column("identifier", sa.String(length=160), nullable=False),
        sa.Column("type_code", sa.String(length=21), nullable=False),
        sa.Column("type_name", sa.String(length=128), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("holder_name", sa.String(length=256), nullable=False),
        sa.Column("holder_id", sa.String(length=64), nullable=False),
        sa.Column("holder_id_type", sa.String(length=32), nullable=False),
        sa.Column("issuer_name", sa.String(length=256), nullable=False),
        sa.Column("issuer_uscc", sa.String(length=18), nullable=False),
        sa.Column("issue_date", sa.String(length=10), nullable=False),
        sa.Column("valid_from", sa.String(length=10), nullable=False),
        sa.Column("valid_to", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=2), nullable=False),
        sa.Column("status_reason", sa.String(length=256), nullable=True),
        sa.Column("seal_id", sa.String(length=64), sa.ForeignKey("seals.id"), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("document_sm3", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identifier"),
    )
    op.create_index("ix_licences_type_code", "licences", ["type_code"])
    op.create_index("ix_licences_issuer_uscc", "licences", ["issuer_uscc"])


def downgrade() -> None:
    op.drop_index("ix_licences_issuer_uscc", "licences")
    op.drop_index("ix_licences_type_code", "licences")
    op.drop_table("licences")
