"""CA key rollover: which CA key issued each certificate, CRLs per CA key (scope), a CA's earlier keys

Revision ID: 0014
Revises: 0013 (the offline root)
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("issuer_key_ref", sa.String(128), nullable=True))
    # Until now every CA had one key: the one its row names issued everything it issued.
    op.execute(
        "UPDATE certificates SET issuer_key_ref = (SELECT cas.key_ref FROM cas WHERE cas.name = certificates.issuer_ca)"
        " WHERE issuer_ca IS NOT NULL"
    )
    with op.batch_alter_table("cas") as batch:
        batch.add_column(sa.Column("crl_scope", sa.String(32), nullable=False, server_default=""))
        batch.add_column(sa.Column("previous_keys", sa.JSON(), nullable=True))
    with op.batch_alter_table("crls") as batch:
        batch.add_column(sa.Column("scope", sa.String(32), nullable=False, server_default=""))
    op.create_index("ix_crls_ca_scope_number", "crls", ["ca_name", "scope", "number"])


def downgrade() -> None:
    op.drop_index("ix_crls_ca_scope_number", table_name="crls")
    with op.batch_alter_table("crls") as batch:
        batch.drop_column("scope")
    with op.batch_alter_table("cas") as batch:
        batch.drop_column("previous_keys")
        batch.drop_column("crl_scope")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("issuer_key_ref")
