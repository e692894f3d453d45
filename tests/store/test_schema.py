"""The migrations make exactly the schema the models describe (so a model change without its migration fails)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import Database
from store.models import Base


def test_migrated_schema_matches_the_models(database: Database) -> None:
    with database.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_ledger_nodes_keyed_by_level_and_index(database: Database) -> None:
    with database.engine.connect() as connection:
        key = inspect(connection).get_pk_constraint("ledger_nodes")
    assert key["constrained_columns"] == ["level", "index"]
