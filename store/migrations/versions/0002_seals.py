"""seals and seal makers

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seal_makers",
        sa.Column("ca_name", sa.String(length=64), sa.ForeignKey("cas.name"), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column("certificate_serial", sa.String(length=64), sa.ForeignKey("certificates.serial"), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ca_name"),
    )
    op.create_table(
        "seals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("es_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("seal_type", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("shape", sa.String(length=16), nullable=False),
        sa.Column("organisation_name", sa.String(length=256), nullable=False),
        sa.Column("organisation_uscc", sa.String(length=18), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=True),
        sa.Column("ca_name", sa.String(length=64), sa.ForeignKey("cas.name"), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_ref", sa.String(length=128), nullable=False),
        sa.Column("certificate_serial", sa.String(length=64), sa.ForeignKey("certificates.serial"), nullable=False),
        sa.Column(
            "maker_certificate_serial", sa.String(length=64), sa.ForeignKey("certificates.serial"), nullable=False
        ),
        sa.Column("esl_der", sa.LargeBinary(), nullable=False),
        sa.Column("picture_png", sa.LargeBinary(), nullable=False),
        sa.Column("width_mm", sa.Integer(), nullable=False),
        sa.Column("height_mm", sa.Integer(), nullable=False),
        sa.Column("allowed_callers", sa.JSON(), nullable=False),
        sa.Column("status_reason", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("es_id"),
    )
    op.create_index("ix_seals_organisation_uscc", "seals", ["organisation_uscc"])
    op.create_index("ix_seals_status", "seals", ["status"])


def downgrade() -> None:
    op.drop_index("ix_seals_status", "seals")
    op.drop_index("ix_seals_organisation_uscc", "seals")
    op.drop_table("seals")
    op.drop_table("seal_makers")
