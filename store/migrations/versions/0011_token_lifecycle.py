"""token lifecycle: expiry, last use, revocation time and actor; one live token per name (api/auth.py)

Revision ID: 0011
Revises: 0010

Older databases may hold several enabled tokens with one name. The later ones (by id) are renamed
`<name>~2`, `<name>~3`, … (the first keeps the name, so what it owns by name stays its own), before the
unique index on live names is built. A renamed token keeps working; it no longer speaks for what is
owned by the old name (licences, seals' `allowed_callers`), which an admin re-grants if it should.
Revoked tokens keep their names: only live names are unique. Existing tokens get no expiry.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _rename_duplicates() -> None:
    bind = op.get_bind()
    tokens = sa.table(
        "api_tokens", sa.column("id", sa.Integer), sa.column("name", sa.String), sa.column("disabled", sa.Boolean)
    )
    rows = bind.execute(sa.select(tokens.c.id, tokens.c.name).where(tokens.c.disabled.is_(False)).order_by(tokens.c.id))
    taken = {name for (name,) in bind.execute(sa.select(tokens.c.name))}
    seen: set[str] = set()
    for token_id, name in list(rows):
        if name not in seen:
            seen.add(name)
            continue
        n = 2
        while f"{name[:120]}~{n}" in taken:
            n += 1
        renamed = f"{name[:120]}~{n}"
        taken.add(renamed)
        seen.add(renamed)
        bind.execute(sa.update(tokens).where(tokens.c.id == token_id).values(name=renamed))


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_by", sa.String(160), nullable=True))
    _rename_duplicates()
    op.create_index(
        "uq_api_tokens_live_name",
        "api_tokens",
        ["name"],
        unique=True,
        sqlite_where=sa.text("NOT disabled"),
        postgresql_where=sa.text("NOT disabled"),
    )


def downgrade() -> None:
    op.drop_index("uq_api_tokens_live_name", table_name="api_tokens")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("revoked_by")
        batch.drop_column("revoked_at")
        batch.drop_column("last_used_at")
        batch.drop_column("expires_at")
