"""A SQLite database is created for its owner only (0600), and so are its WAL and shared-memory files:
under the usual umask 022 SQLite alone would make them 0644."""

from __future__ import annotations

import os
from pathlib import Path

from store.db import Database, sqlite_files


def test_sqlite_files_are_created_private(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    previous = os.umask(0o022)
    try:
        database = Database(f"sqlite:///{path}")
        assert not path.exists()  # nothing is made before the first connection
        with database.raw_writing() as cursor:
            cursor.execute("CREATE TABLE t (x INTEGER)")
        files = [p for p in sqlite_files(database.url) if p.exists()]
        assert [p.name for p in files] == ["t.db", "t.db-wal", "t.db-shm"]
        assert all(p.stat().st_mode & 0o777 == 0o600 for p in files), [oct(p.stat().st_mode) for p in files]
        database.dispose()
    finally:
        os.umask(previous)


def test_an_existing_database_keeps_its_mode(tmp_path: Path) -> None:
    """Tightening an older home is `trustseal init`'s job (api/home.py), said aloud, never a side effect."""
    path = tmp_path / "old.db"
    first = Database(f"sqlite:///{path}")
    with first.raw_writing() as cursor:
        cursor.execute("CREATE TABLE t (x INTEGER)")
    first.dispose()
    path.chmod(0o644)
    database = Database(f"sqlite:///{path}")
    with database.raw_writing() as cursor:
        cursor.execute("INSERT INTO t VALUES (1)")
    assert path.stat().st_mode & 0o777 == 0o644
    database.dispose()


def test_sqlite_files_of_other_urls() -> None:
    assert sqlite_files("postgresql+psycopg://u@h/db") == []
    assert sqlite_files("sqlite://") == []
    assert sqlite_files("sqlite:////v/t.db") == [Path("/v/t.db"), Path("/v/t.db-wal"), Path("/v/t.db-shm"),
                                                  Path("/v/t.db-journal")]  # fmt: skip
