"""ocsp_responses: pre-signed OCSP responses (ca/ocsp_store.py), Boulder style — signed on first request
or by the scheduler, replaced before half their validity, deleted in a revocation's transaction.

Revision ID: 0015
Revises: 0014 (CA key rollover)
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ocsp_responses",
        sa.Column("serial", sa.String(64), sa.ForeignKey("certificates.serial"), primary_key=True),
        sa.Column("hash_algorithm", sa.String(16), primary_key=True),
        sa.Column("issuer_key_hash", sa.String(128), primary_key=True),
        sa.Column("signer", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("this_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_update", sa.DateTime(timezone=True), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_ocsp_responses_next_update", "ocsp_responses", ["next_update"])


def downgrade() -> None:
    op.drop_index("ix_ocsp_responses_next_update", table_name="ocsp_responses")
    op.drop_table("ocsp_responses")
