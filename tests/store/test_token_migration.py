"""Migration 0011 on a database that already holds duplicate token names (issue 12: "two may share a
name"): the first live token of a name keeps it, later live ones become `name~2`, `name~3` (skipping a
name already taken), revoked ones are left alone, and afterwards a second live token of one name is
refused by the database itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from store.db import MIGRATIONS
from tests.fixtures import _drop_schema, _pg_database, postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "postgres":
        if postgres_url() is None:
            pytest.skip("PostgreSQL tests need TRUSTSEAL_TEST_DATABASE_URL")
        url, schema = _pg_database("mig")
        made = create_engine(url)
        yield made
        made.dispose()
        _drop_schema(schema)
    else:
        made = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield made
        made.dispose()


def _upgrade(engine: Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection_engine"] = engine
    command.upgrade(cfg, revision)


ROWS = [  # id, name, disabled
    (1, "bureau", False),
    (2, "bureau", False),
    (3, "bureau", True),  # revoked: keeps its name
    (4, "bureau~2", True),  # a revoked token holds "bureau~2": the renames skip it
    (5, "bureau", False),
    (6, "bank", False),
    (7, "bureau~3", False),  # a live token named like a rename: never collided with
]


def test_duplicate_live_names_are_renamed_and_then_refused(engine: Engine) -> None:
    _upgrade(engine, "0009")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for token_id, name, disabled in ROWS:
            connection.execute(
                text(
                    "INSERT INTO api_tokens (id, name, role, token_hash, seal_ids, created_at, disabled) "
                    "VALUES (:id, :name, 'verifier', :hash, '[]', :created, :disabled)"
                ),
                {"id": token_id, "name": name, "hash": f"{token_id:064x}", "created": now, "disabled": disabled},
            )
    _upgrade(engine, "0011")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, name, disabled, expires_at, revoked_at FROM api_tokens ORDER BY id")
        ).all()
    assert [(r.id, r.name, bool(r.disabled)) for r in rows] == [
        (1, "bureau", False),
        (2, "bureau~4", False),  # ~2 and ~3 are names already held (revoked or live)
        (3, "bureau", True),
        (4, "bureau~2", True),
        (5, "bureau~5", False),
        (6, "bank", False),
        (7, "bureau~3", False),
    ]
    assert all(r.expires_at is None and r.revoked_at is None for r in rows)  # old tokens: no expiry
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO api_tokens (id, name, role, token_hash, seal_ids, created_at, disabled) "
                "VALUES (100, 'bank', 'verifier', :hash, '[]', :created, false)"
            ),
            {"hash": "f" * 64, "created": now},
        )
    with engine.begin() as connection:  # a revoked token may share a live name (a rotation leaves one)
        connection.execute(
            text(
                "INSERT INTO api_tokens (id, name, role, token_hash, seal_ids, created_at, disabled) "
                "VALUES (101, 'bank', 'verifier', :hash, '[]', :created, true)"
            ),
            {"hash": "e" * 64, "created": now},
        )
