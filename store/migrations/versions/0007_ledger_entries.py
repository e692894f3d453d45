"""ledger entries: each event's index in the log and its leaf bytes

Existing events keep `ledger_index` NULL: they wait in the sequencer's queue like new ones, and the
first sequencer pass logs them in id order.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("ledger_index", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("leaf_input", sa.LargeBinary(), nullable=True))
    op.create_index("ix_events_ledger_index", "events", ["ledger_index"], unique=True)
    op.create_index(
        "ix_events_unsequenced",
        "events",
        ["id"],
        sqlite_where=sa.text("ledger_index IS NULL"),
        postgresql_where=sa.text("ledger_index IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_events_unsequenced", table_name="events")
    op.drop_index("ix_events_ledger_index", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("leaf_input")
        batch.drop_column("ledger_index")
