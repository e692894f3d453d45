"""certificates.invalidity_date: when trust in a revoked certificate ended (RFC 5280 §5.3.2), which may
precede the revocation itself (a compromise found late); written into the CRL entry.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("certificates", sa.Column("invalidity_date", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("certificates", "invalidity_date")
