"""The SQLite WAL is checkpointed by the background thread, not inside a request's commit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from store import db as store_db
from store.db import AUTOCHECKPOINT_PAGES, Database, _sqlite_file


def _write_rows(database: Database, rows: int) -> None:
    with database.raw_writing() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, data BLOB)")
    for _ in range(rows):
        with database.raw_writing() as cursor:
            cursor.execute("INSERT INTO filler (data) VALUES (?)", (b"\x5a" * 3000,))


def test_background_thread_copies_the_wal_into_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "CHECKPOINT_SECONDS", 0.05)
    path = tmp_path / "c.db"
    database = Database(f"sqlite:///{path}")
    try:
        assert database.checkpoint_thread is not None and database.checkpoint_thread.is_alive()
        _write_rows(database, 1)
        size_before = path.stat().st_size
        _write_rows(database, 200)  # ~150 pages: far below the automatic threshold
        assert AUTOCHECKPOINT_PAGES > 200
        deadline = time.monotonic() + 10
        while path.stat().st_size <= size_before and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only a checkpoint moves pages from the WAL into the database file.
        assert path.stat().st_size > size_before + 100 * 3000
    finally:
        database.dispose()
    assert database.checkpoint_thread is not None
    database.checkpoint_thread.join(5)
    assert not database.checkpoint_thread.is_alive()


def test_without_the_thread_the_wal_keeps_the_pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The twin of the test above: with checkpoints far apart, the database file does not grow."""
    monkeypatch.setattr(store_db, "CHECKPOINT_SECONDS", 3600)
    path = tmp_path / "c.db"
    database = Database(f"sqlite:///{path}")
    try:
        _write_rows(database, 1)
        size_before = path.stat().st_size
        _write_rows(database, 200)
        time.sleep(0.3)
        assert path.stat().st_size == size_before
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 200 * 3000
    finally:
        database.dispose()


def test_connections_keep_an_automatic_checkpoint_as_a_safety_net(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        with database.raw_writing() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            assert cursor.fetchone()[0] == AUTOCHECKPOINT_PAGES
    finally:
        database.dispose()


def test_checkpointer_never_creates_a_missing_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_db, "CHECKPOINT_SECONDS", 0.02)
    path = tmp_path / "absent.db"
    database = Database(f"sqlite:///{path}")
    time.sleep(0.2)
    assert not path.exists()
    database.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:////var/x/trustseal.db", "/var/x/trustseal.db"),
        ("sqlite:///relative.db?timeout=3", "relative.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
        ("postgresql+psycopg://u@h/db", None),
    ],
)
def test_sqlite_file(url: str, expected: str | None) -> None:
    assert _sqlite_file(url) == expected
