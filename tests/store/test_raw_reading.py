"""store/db.py `raw_reading`: the kept connections of hot read paths (the OCSP responder's stored answers)
see every commit at once, also another engine's (another process), never a snapshot they took earlier; a
connection that broke is replaced, not kept."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, text

from store.db import Database
from store.models import WitnessAlarm

_COUNT = "SELECT count(*) FROM witness_alarms WHERE origin = '{origin}'"


def _count(db: Database, origin: str) -> int:
    with db.raw_reading() as cursor:
        cursor.execute(_COUNT.format(origin=origin))
        (count,) = cursor.fetchone()
        return int(count)


def _add(db: Database, origin: str) -> None:
    row = {"origin": origin, "note_sm3": secrets.token_hex(32), "event_id": 1, "created_at": datetime.now(UTC)}
    with db.session() as session:
        session.execute(insert(WitnessAlarm), row)


def test_every_read_sees_what_another_engine_committed(database: Database) -> None:
    other = Database(database.url)  # another engine and pool: what another process does
    origin = secrets.token_hex(6)
    try:
        assert _count(database, origin) == 0
        for expected in (1, 2, 3):
            _add(other, origin)
            assert _count(database, origin) == expected  # the same kept connection, a fresh view each time
        with other.session() as session:
            session.execute(delete(WitnessAlarm).where(WitnessAlarm.origin == origin))
        assert _count(database, origin) == 0
    finally:
        other.dispose()


def test_an_unfinished_read_keeps_no_snapshot(database: Database) -> None:
    """A statement whose rows were not all fetched must not pin the connection's view (SQLite keeps a read
    transaction open while a statement is active): the cursor is closed when the block ends."""
    origin = secrets.token_hex(6)
    _add(database, origin)
    _add(database, origin)
    with database.raw_reading() as cursor:
        cursor.execute(f"SELECT origin FROM witness_alarms WHERE origin = '{origin}'")
        cursor.fetchone()  # one of two rows
    other = Database(database.url)
    try:
        _add(other, origin)
    finally:
        other.dispose()
    assert _count(database, origin) == 3


def test_connections_are_kept_and_a_broken_one_is_replaced(database: Database) -> None:
    origin = secrets.token_hex(6)
    _count(database, origin)
    assert len(database._readers) == 1
    kept = database._readers[0]
    _count(database, origin)
    assert list(database._readers) == [kept]  # reused, not reopened
    kept.close()  # the server dropped it
    with pytest.raises(Exception), database.raw_reading() as cursor:
        cursor.execute(text("SELECT 1").text)
    assert kept not in database._readers
    assert _count(database, origin) == 0  # a fresh connection
