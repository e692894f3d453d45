"""CRL partitions: the CRL scope each certificate was issued into (ca/partitions.py), indexed with its CA

Revision ID: 0016
Revises: 0015 (pre-signed OCSP responses)
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("crl_scope", sa.String(32), nullable=True))
    # Rows of a CA's current key are on that key's base list (no partition existed before this revision);
    # rows of earlier keys keep NULL, which ca/crl.py reads as "its key's base list" too.
    op.execute(
        "UPDATE certificates SET crl_scope = (SELECT cas.crl_scope FROM cas WHERE cas.name = certificates.issuer_ca)"
        " WHERE issuer_ca IS NOT NULL AND issuer_key_ref = (SELECT cas.key_ref FROM cas"
        " WHERE cas.name = certificates.issuer_ca)"
    )
    op.create_index("ix_certificates_issuer_crl_scope", "certificates", ["issuer_ca", "crl_scope"])


def downgrade() -> None:
    # A certificate in a partition carries that partition's distribution point; without the column it would
    # fall back to its key's base list, and a revocation would reach a list its certificate never names.
    partitioned = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM certificates WHERE crl_scope LIKE 'p%' OR crl_scope LIKE '%-p%'")
    )
    if partitioned:
        raise RuntimeError(
            f"{partitioned} certificates were issued into CRL partitions: 0016 cannot be downgraded without "
            "moving them off the lists their distribution points name"
        )
    op.drop_index("ix_certificates_issuer_crl_scope", table_name="certificates")
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("crl_scope")
