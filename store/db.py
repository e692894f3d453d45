"""Engine and sessions. SQLite file by default, PostgreSQL through `TRUSTSEAL_DATABASE_URL`."""

from __future__ import annotations

import collections
import contextlib
import os
import sqlite3
import threading
import urllib.parse
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"

# WAL checkpoints (copying the log into the database file, and the fsyncs that go with them) run on
# a background thread every CHECKPOINT_SECONDS, not inside whichever commit crosses SQLite's
# default 1,000-page threshold: that commit used to take ~20 ms, which made the mean issuance
# commit ~370 µs instead of ~170 µs. Connections keep an automatic checkpoint only as a safety net,
# for processes without the thread (or if it falls behind).
CHECKPOINT_SECONDS = 0.5
AUTOCHECKPOINT_PAGES = 4000
READERS_KEPT = 8  # idle connections `raw_reading` keeps (more run at once are opened and closed)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cursor.close()


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL (SQLAlchemy's own parsing), None for in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


def sqlite_files(url: str) -> list[Path]:
    """The files a SQLite database keeps (database, WAL, shared memory, rollback journal); none for
    other backends. api/home.py checks they are private."""
    name = _sqlite_file(url)
    if name is None or name.startswith("file:"):
        return []
    return [Path(name + suffix) for suffix in ("", "-wal", "-shm", "-journal")]


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644 under the usual umask);
    SQLite gives the WAL and shared-memory files the database file's permissions."""
    # an existing database keeps its mode; a missing folder gets SQLite's own error
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _checkpointer(path: str, stop: threading.Event, every: float) -> None:
    """PASSIVE checkpoints on a connection of its own: they never block readers or writers, and the
    sqlite3 module releases the GIL while they copy and sync."""
    connection: sqlite3.Connection | None = None
    try:
        while not stop.wait(every):
            try:
                if connection is None:
                    uri = f"file:{urllib.parse.quote(path)}?mode=rw"  # never creates the file
                    connection = sqlite3.connect(uri, uri=True, timeout=1, isolation_level=None)
                    connection.execute("PRAGMA synchronous=NORMAL")
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                if connection is not None:  # e.g. the file went away; a fresh connection next round
                    connection.close()
                    connection = None
    finally:
        if connection is not None:
            connection.close()


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
        files = sqlite_files(url)
        if files:  # before SQLite's first connection creates it (and only then: nothing is made eagerly)
            event.listen(self.engine, "do_connect", lambda *_: _create_private(files[0]))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLite has one writer; its busy handler sleeps 1, 2, 5, 10 ... ms between retries. Writers of
        # this process queue on a lock instead and go the moment it is free.
        self._write_lock = threading.Lock() if url.startswith("sqlite") else None
        self._writer: Any = None
        self._readers: collections.deque[Any] = collections.deque()  # idle DBAPI connections of raw_reading
        self._checkpoint_stop: threading.Event | None = None
        self.checkpoint_thread: threading.Thread | None = None
        sqlite_file = _sqlite_file(url)
        if sqlite_file is not None:
            stop = threading.Event()
            self._checkpoint_stop = stop
            self.checkpoint_thread = threading.Thread(
                target=_checkpointer,
                args=(sqlite_file, stop, CHECKPOINT_SECONDS),
                name="sqlite-checkpoint",
                daemon=True,
            )
            self.checkpoint_thread.start()
            weakref.finalize(self, stop.set)  # a Database dropped without dispose() stops it too

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

    @contextmanager
    def raw_reading(self) -> Iterator[Any]:
        """A DBAPI cursor for single-statement reads, each seeing what is committed when it runs
        (autocommit; SQLite's module opens no transaction for a SELECT). For hot read paths (the OCSP
        responder's pre-signed answers): connections are taken off the pool once and kept in a small
        list of idle ones, sparing the pool checkout and, on PostgreSQL, its pre-ping round trip. A
        connection that fails is dropped and the error raised; the next read opens a fresh one."""
        try:
            connection = self._readers.pop()
        except IndexError:
            connection = self._reader()
        try:
            cursor = connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()  # resets the statement: SQLite would otherwise keep its read snapshot open
        except BaseException:
            with contextlib.suppress(Exception):
                connection.close()
            raise
        if len(self._readers) < READERS_KEPT:
            self._readers.append(connection)
        else:
            connection.close()

    def _reader(self) -> Any:
        proxied = self.engine.raw_connection()  # through the pool: its connect events (SQLite pragmas) run
        proxied.detach()  # ours from now on, never returned to the pool
        connection = proxied.dbapi_connection
        assert connection is not None
        if not self.is_sqlite:
            connection.rollback()
            connection.autocommit = True
        return connection

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A SQLAlchemy Connection in one write transaction, committed on success and rolled back on
        any exception. On SQLite the transaction starts IMMEDIATE under this process's writer lock:
        it holds the database's single write lock from its first statement, so what it reads cannot
        change before it writes, even from another process (the ledger sequencer relies on it)."""
        with self._write_lock or nullcontext(), self.engine.connect() as connection:
            try:
                if self._write_lock is not None:
                    connection.exec_driver_sql("BEGIN IMMEDIATE")
                yield connection
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    def dispose(self) -> None:
        if self._checkpoint_stop is not None:
            self._checkpoint_stop.set()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        while self._readers:
            with contextlib.suppress(Exception):
                self._readers.pop().close()
        self.engine.dispose()
