"""timestamping units

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tsa_units",
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("ca_name", sa.String(length=64), sa.ForeignKey("cas.name"), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column("certificate_serial", sa.String(length=64), sa.ForeignKey("certificates.serial"), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("family"),
    )


def downgrade() -> None:
    op.drop_table("tsa_units")
