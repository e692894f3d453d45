"""store/raw.py writes rows exactly as the ORM writes them, on SQLite and PostgreSQL; raw_writing
commits all or nothing."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from ledger.events import EVENT_TABLE, event_row
from store.db import Database
from store.raw import RawStatement

_COLUMNS = ("type", "created_at", "actor", "subject", "payload")


def _stored(db: Database, subject: str) -> tuple[Any, ...]:
    """The row as the database holds it (raw SQL: no result processing)."""
    with db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT type, created_at, actor, subject, payload FROM events WHERE subject = :s"), {"s": subject}
        ).one()
    return tuple(row)


def test_raw_insert_stores_what_the_orm_stores(database: Database) -> None:
    when = datetime(2026, 12, 1, 9, 30, 15, 123456, tzinfo=UTC)
    payload = {"serial": "ab", "nested": {"n": 1, "text": "济南"}, "list": [1, "x"]}
    orm_subject, raw_subject = secrets.token_hex(8), secrets.token_hex(8)
    with database.session() as session:
        session.execute(
            insert(EVENT_TABLE),  # type: ignore[arg-type]
            {"type": "t", "created_at": when, "actor": "a", "subject": orm_subject, "payload": payload},
        )
    statement = RawStatement(insert(EVENT_TABLE), database.engine.dialect, _COLUMNS)  # type: ignore[arg-type]
    with database.raw_writing() as cursor:
        statement.execute(
            cursor, {"type": "t", "created_at": when, "actor": "a", "subject": raw_subject, "payload": payload}
        )
    orm_row, raw_row = _stored(database, orm_subject), _stored(database, raw_subject)
    assert orm_row[:3] == raw_row[:3] and orm_row[4] == raw_row[4]
    with database.session() as session:  # and the ORM reads it back as it wrote it
        from store.models import Event

        event = session.scalars(select(Event).where(Event.subject == raw_subject)).one()
        assert event.created_at == when and event.payload == payload


def test_raw_statement_applies_the_column_types_bind_checks(database: Database) -> None:
    statement = RawStatement(insert(EVENT_TABLE), database.engine.dialect, _COLUMNS)  # type: ignore[arg-type]
    naive = event_row("t", actor=None, subject="s", payload={}) | {"created_at": datetime(2026, 1, 1)}
    with pytest.raises(ValueError, match="naive"), database.raw_writing() as cursor:
        statement.execute(cursor, naive)


def test_raw_writing_is_all_or_nothing(database: Database) -> None:
    statement = RawStatement(insert(EVENT_TABLE), database.engine.dialect, _COLUMNS)  # type: ignore[arg-type]
    subject = secrets.token_hex(8)
    with pytest.raises(RuntimeError), database.raw_writing() as cursor:
        statement.execute(cursor, event_row("t", actor=None, subject=subject, payload={}))
        raise RuntimeError("fails after the first insert")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE subject = :s"), {"s": subject}).scalar() == 0
    with database.raw_writing() as cursor:  # the kept SQLite writer connection is usable again
        statement.execute(cursor, event_row("t", actor=None, subject=subject, payload={"later": True}))
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM events WHERE subject = :s"), {"s": subject}).scalar() == 1
