"""Engine and sessions. SQLite file by default, PostgreSQL through `TRUSTSEAL_DATABASE_URL`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["pool_size"] = 10
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer; its busy handler sleeps 1, 2, 5, 10 ... ms between retries. Writers of
        # this process queue on a lock instead and go the moment it is free.
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        self._writer: Any = None

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection_engine"] = self.engine
        command.upgrade(cfg, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any exception (nothing partial)."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def raw_writing(self) -> Iterator[Any]:
        """A DBAPI cursor in one write transaction (see store/raw.py): committed on success, rolled
        back on any exception. On SQLite the transaction starts IMMEDIATE, so what it reads first
        cannot change before it writes, even from another process; and the writer connection is
        kept (the lock makes it single-user), sparing a pool checkout per write."""
        with self._write_lock or nullcontext():
            if self._write_lock is not None:
                if self._writer is None:
                    self._writer = self.engine.raw_connection()
                connection = self._writer
            else:
                connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                if self._write_lock is not None:
                    cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                connection.commit()
            except BaseException:
                try:
                    connection.rollback()
                except Exception:
                    self._writer = None  # unusable: a fresh one next time
                    raise
                raise
            finally:
                if connection is not self._writer:
                    connection.close()

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()
