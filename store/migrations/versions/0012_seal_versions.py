"""seal versions: the earlier SESeals of a re-keyed seal (seal/service.py rekey)

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seals") as batch:
        batch.add_column(sa.Column("previous_versions", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seals") as batch:
        batch.drop_column("previous_versions")
