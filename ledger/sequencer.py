"""The sequencer: dense ledger indices in commit order, given right after the business transactions.

Trillian / Tessera style. A business transaction only inserts its event row, with `ledger_index`
NULL: that row is its entry's place in the queue, committed or rolled back with the change it
records, and no business transaction waits for another to learn an index. A sequencer pass then, in
one transaction of its own and as the only leader (a PostgreSQL transaction-scoped advisory lock;
on SQLite the database's single write lock, taken by BEGIN IMMEDIATE):

1. reads the tree size and the waiting events in id order (only committed rows are visible, so the
   order is the order in which transactions became visible to the leader);
2. gives them the indices size, size+1, … and stores each one's leaf input (RFC 8785 canonical JSON
   of its entry, ledger/entries.py) on the row;
3. appends their leaf hashes to the Merkle tree (`MerkleTree(SqlNodeStore(connection))`).

All three commit together or not at all: a pass that fails anywhere (a crash, a lost connection, an
injected exception) leaves neither an index nor a node, and the next pass gives the same indices
again, so indices are never skipped nor reused. Events written before the ledger existed wait in the
same queue and go into the log first, in id order.

A request that must answer its index (`X-Trustseal-Event`, `ledger_index`) calls `wait_for(event_id)`
after its commit: it runs a pass itself unless one already covered the event. Requests waiting at
the same time share passes (group commit): threads wait while a pass runs and take their events
from what it sequenced (kept in memory, so no query) as each batch commits; one whose event came too
late for it starts the next pass at once. Code on an event loop awaits `wait_for_async`, whose
waiters are served by one pass per loop iteration, and processes share through the leader lock.
On PostgreSQL a pass is two round trips on the sequencer's own connection (psycopg pipeline mode).
A pass costs the same for one event as for ten, so under load the log's cost per request shrinks
instead of growing.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg
from sqlalchemy import Connection, bindparam, func, select, update

from ledger import entries
from ledger.errors import LedgerError, NodeMissing
from ledger.merkle import SM3, MerkleTree, TreeHasher, subtree_nodes
from ledger.node_store import Node, NodeId
from ledger.sql_node_store import HIGHEST_LEAF, SqlNodeStore
from store.db import Database
from store.models import Event

# pg_advisory_xact_lock key of the sequencer (ASCII "tseqlog1"): one leader per database.
LOCK_KEY = 0x747365716C6F6731
BATCH = 1000
# Places this process's passes gave, kept until their waiters take them (the oldest are dropped
# beyond this: events nobody in this process waits for, whose waiters then ask the database).
RECENT = 4 * BATCH
# How many times a pass for waiters on an event loop steps behind other ready work while more join.
LOOP_HOPS = 8

_E = Event.__table__.c
_HIGHEST = select(func.max(_E.ledger_index))
# The waiting events, each row also carrying the tree's highest leaf and the highest event index: a
# pass learns what it appends to in the same round trip (uncorrelated subqueries, evaluated once).
_WAITING = (
    select(
        _E.id,
        _E.type,
        _E.created_at,
        _E.actor,
        _E.subject,
        _E.payload,
        HIGHEST_LEAF.scalar_subquery().label("highest_leaf"),
        _HIGHEST.scalar_subquery().label("highest_index"),
    )
    .where(_E.ledger_index.is_(None))
    .order_by(_E.id)
    .limit(bindparam("limit"))
)
_ANY_WAITING = select(_E.id).where(_E.ledger_index.is_(None)).limit(1)
_ASSIGN = (
    update(Event.__table__)  # type: ignore[arg-type]
    .where(_E.id == bindparam("b_id"))
    .values(ledger_index=bindparam("b_index"), leaf_input=bindparam("b_leaf"))
)
# PostgreSQL, run by the sequencer on its own connection in pipeline mode (see _one_batch_postgres).
_PG_LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
# The whole batch's indices in one statement (an executemany UPDATE costs a round trip a row). Its
# result is read only after the COMMIT queued behind it, so the check that every event took its index
# is made by the server: 1 / 0 aborts the transaction (and so the COMMIT) when one did not.
_PG_ASSIGN = (
    "WITH assigned AS (UPDATE events SET ledger_index = batch.idx, leaf_input = batch.leaf"
    " FROM unnest(%(ids)s::integer[], %(indices)s::bigint[], %(leaves)s::bytea[]) AS batch(id, idx, leaf)"
    " WHERE events.id = batch.id AND events.ledger_index IS NULL RETURNING 1)"
    " SELECT 1 / (count(*) = %(count)s)::integer FROM assigned"
)
_PG_WRITE_NODES = (
    'INSERT INTO ledger_nodes (level, "index", hash)'
    " SELECT * FROM unnest(%(levels)s::smallint[], %(indices)s::bigint[], %(hashes)s::bytea[])"
)
_PG_READ_NODES = (
    'SELECT level, "index", hash FROM ledger_nodes WHERE (level, "index") IN'
    " (SELECT * FROM unnest(%(levels)s::smallint[], %(indices)s::bigint[]))"
)
_OF_EVENT = select(_E.ledger_index, _E.leaf_input).where(_E.id == bindparam("id"))


@dataclass(frozen=True)
class Sequenced:
    """An event's place in the log: its index and the hash of its leaf."""

    event_id: int
    index: int
    leaf_hash: bytes


class UnknownEvent(LookupError):
    code = "event_unknown"


class SequencerFault(RuntimeError):
    """The events and the tree disagree about the log's size: a damaged database (5xx)."""

    code = "ledger_sequencer_fault"


class _PgRow(NamedTuple):
    """A waiting event as _WAITING reads it, from psycopg directly (the time made UTC, as UTCDateTime does)."""

    id: int
    type: str
    created_at: datetime
    actor: str | None
    subject: str | None
    payload: dict[str, Any]
    highest_leaf: int | None
    highest_index: int | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> _PgRow:
        return cls(row[0], row[1], row[2].astimezone(UTC), *row[3:])


def _pg_read(cursor: psycopg.Cursor[Any], ids: Sequence[NodeId]) -> list[bytes]:
    """Nodes of the tree on the pass's own cursor (the frontier, when another process grew the tree)."""
    levels, indices = (list(column) for column in zip(*ids, strict=True))
    cursor.execute(_PG_READ_NODES, {"levels": levels, "indices": indices})
    found = {(row[0], row[1]): bytes(row[2]) for row in cursor.fetchall()}
    try:
        return [found[node] for node in ids]
    except KeyError as missing:
        raise NodeMissing(f"ledger node {missing.args[0]} is not in the database") from None


class _PassStore:
    """The node store of a pass: its tree size came with its events (no second query for it), and
    the frontier it extends is read from the nodes this process's last pass left (`known`: stored
    nodes never change, so a committed one stays right) when they are that frontier, else through
    `read` (another process appended since). Writes are kept in `written` for the pass to store with
    its index assignment (`Sequencer._write`); `fresh` keeps what the pass read and wrote."""

    def __init__(self, read: Callable[[Sequence[NodeId]], list[bytes]], size: int, known: dict[NodeId, bytes]) -> None:
        self._read = read
        self._size = size
        self._known = known
        self.fresh: dict[NodeId, bytes] = {}
        self.written: list[Node] = []

    def size(self) -> int:
        return self._size

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        known = all(node in self._known for node in ids)
        values = [self._known[node] for node in ids] if known else self._read(ids)
        self.fresh.update(zip(ids, values, strict=True))
        return values

    def write(self, nodes: Sequence[Node]) -> None:
        self.written.extend(nodes)
        self.fresh.update(((level, index), value) for level, index, value in nodes)


class Sequencer:
    def __init__(self, db: Database, hasher: TreeHasher = SM3, *, batch: int = BATCH) -> None:
        self.db = db
        self.hasher = hasher
        self.batch = batch
        # One pass at a time in this process. Waiters sleep on the condition while a pass runs and are
        # woken as each of its batches commits (their places are in `_recent`), not behind the next
        # pass: one of those whose events came too late for it starts that pass at once.
        self._passes = threading.Condition(threading.Lock())
        self._passing = False
        self._started = 0  # passes begun by this process
        self._finished = 0  # the last of them that ended without failing
        self._recent: dict[int, Sequenced] = {}  # event id → place, from this process's passes
        self._frontier: dict[NodeId, bytes] = {}  # the last committed pass's frontier (see _PassStore)
        self._pg: psycopg.Connection[Any] | None = None  # PostgreSQL: the sequencer's own connection
        self._pg_close: weakref.finalize[Any, Any] | None = None
        self._pg_waiting_sql: tuple[str, dict[str, Any]] | None = None
        self._loop_lock = threading.Lock()
        self._loop_waiting: dict[asyncio.AbstractEventLoop, dict[int, list[asyncio.Future[Sequenced]]]] = {}

    def waiting(self) -> bool:
        """Whether a committed event waits for its index: one read through the partial index on
        `ledger_index IS NULL`, no write transaction and no lock."""
        with self.db.engine.connect() as connection:
            return connection.execute(_ANY_WAITING).first() is not None

    def run_pass(self) -> int:
        """Sequence every event committed so far; returns how many this call's pass gave an index (0
        when a pass of this process begun after the call did it meanwhile: the caller, the integrator
        or a checkpoint, is not kept waiting behind a stream of waiters' passes). Each batch of up to
        `batch` events is one transaction, so a long backlog (the first pass over an existing
        database) does not hold the lock in one huge transaction."""
        with self._passes:
            entered = self._started
            while self._passing:
                self._passes.wait()
                if self._finished > entered:
                    return 0
            number = self._lead()
        return self._drain(number)

    def _lead(self) -> int:
        """Called holding `_passes` with no pass running: the caller's pass is next; its number."""
        self._passing = True
        self._started += 1
        return self._started

    def _drain(self, number: int) -> int:
        """The leader's pass (`_lead`): batch after batch until the queue is empty. Each batch's places
        are handed to the waiters as soon as it commits."""
        total = 0
        succeeded = False
        try:
            while True:
                done = self._one_batch()
                with self._passes:
                    for place in done:
                        self._recent[place.event_id] = place
                    self._passes.notify_all()
                total += len(done)
                if len(done) < self.batch:
                    break
            succeeded = True
        finally:
            with self._passes:
                if succeeded:
                    self._finished = number
                self._passing = False
                excess = len(self._recent) - RECENT
                if excess > 0:
                    for event_id in list(itertools.islice(self._recent, excess)):
                        del self._recent[event_id]
                self._passes.notify_all()
        return total

    def _one_batch(self) -> list[Sequenced]:
        if not self.db.is_sqlite:
            return self._one_batch_postgres()
        with self.db.write_connection() as connection:  # BEGIN IMMEDIATE: the database's write lock
            rows = connection.execute(_WAITING, {"limit": self.batch}).all()
            if not rows:
                return []
            size = self._size(rows[0].highest_leaf, rows[0].highest_index)
            store = _PassStore(functools.partial(self._read_nodes, connection), size, self._frontier)
            grown, hashes, leaves = self._append(store, rows)
            self._write(connection, [row.id for row in rows], size, leaves, store.written)
        return self._committed(store, grown, rows, size, hashes)

    def _one_batch_postgres(self) -> list[Sequenced]:
        """The same pass in two round trips on the sequencer's own connection (psycopg pipeline
        mode): [BEGIN, advisory lock, waiting events with the tree's size], then [index assignment,
        nodes, COMMIT]; a third only when another process grew the tree (its frontier is read). The
        lock is taken before the events are read: the server runs a pipeline's statements in order,
        and each takes its snapshot when it starts, so the read sees every pass committed before."""
        connection = self._connection()
        try:
            with connection.pipeline(), connection.cursor() as cursor:
                cursor.execute(_PG_LOCK, {"key": LOCK_KEY})
                sql, params = self._pg_waiting()
                cursor.execute(sql, {**params, "limit": self.batch})
                rows = [_PgRow.of(row) for row in cursor.fetchall()]
                if not rows:
                    connection.commit()
                    return []
                size = self._size(rows[0].highest_leaf, rows[0].highest_index)
                store = _PassStore(functools.partial(self._read_nodes, cursor), size, self._frontier)
                grown, hashes, leaves = self._append(store, rows)
                self._write(cursor, [row.id for row in rows], size, leaves, store.written)
                connection.commit()
        except BaseException as failure:
            self._abandon(connection)
            if isinstance(failure, psycopg.errors.DivisionByZero):  # _PG_ASSIGN's check
                raise SequencerFault(f"not every one of {len(rows)} events took its index") from failure
            raise
        return self._committed(store, grown, rows, size, hashes)

    def _append(self, store: _PassStore, rows: Sequence[Any]) -> tuple[int, list[bytes], list[bytes]]:
        """The rows' leaves appended to the pass's tree (nodes kept in `store.written`)."""
        leaves = [
            entries.leaf_input(entries.entry(row.type, row.created_at, row.actor, row.subject, row.payload))
            for row in rows
        ]
        hashes = [self.hasher.leaf(leaf) for leaf in leaves]
        grown = MerkleTree(store, self.hasher).append_hashes(hashes)
        return grown, hashes, leaves

    def _read_nodes(self, bind: Connection | psycopg.Cursor[Any], ids: Sequence[NodeId]) -> list[bytes]:
        """Nodes of the tree in the pass's transaction (the frontier, when another process grew it)."""
        return SqlNodeStore(bind).read(ids) if isinstance(bind, Connection) else _pg_read(bind, ids)

    def _write(
        self, bind: Connection | psycopg.Cursor[Any], ids: list[int], size: int, leaves: list[bytes], nodes: list[Node]
    ) -> None:
        """The batch's writes, in its transaction: each event's index and leaf input, then the tree's
        new nodes. Nothing is durable before the pass commits (a failure here or after leaves neither)."""
        indices = list(range(size, size + len(ids)))
        if isinstance(bind, Connection):  # SQLite, in-process: an executemany is as fast as one statement
            bind.execute(
                _ASSIGN,
                [{"b_id": i, "b_index": n, "b_leaf": leaf} for i, n, leaf in zip(ids, indices, leaves, strict=True)],
            )
            SqlNodeStore(bind).write(nodes)
            return
        bind.execute(_PG_ASSIGN, {"ids": ids, "indices": indices, "leaves": leaves, "count": len(ids)})
        levels, positions, values = (list(column) for column in zip(*nodes, strict=True))
        bind.execute(_PG_WRITE_NODES, {"levels": levels, "indices": positions, "hashes": values})

    def _committed(
        self, store: _PassStore, grown: int, rows: Sequence[Any], size: int, hashes: list[bytes]
    ) -> list[Sequenced]:
        # committed: the new frontier, for the next pass (only after the commit, never from a pass that failed)
        self._frontier = {node: store.fresh[node] for node in subtree_nodes(0, grown) if node in store.fresh}
        return [Sequenced(row.id, size + n, value) for n, (row, value) in enumerate(zip(rows, hashes, strict=True))]

    def _connection(self) -> psycopg.Connection[Any]:
        """The sequencer's own PostgreSQL connection: no pool checkout or liveness ping per pass (a
        broken one is dropped by `_abandon` and the next pass opens another)."""
        if self._pg is None:
            fairy = self.db.engine.raw_connection()  # through the engine: its connect-time setup
            driver = fairy.driver_connection
            if not isinstance(driver, psycopg.Connection):
                raise SequencerFault(f"the sequencer's connection is {type(driver).__name__}, not psycopg's")
            fairy.detach()  # ours from now on (never back to the pool), closed with this sequencer
            self._pg = driver
            self._pg_close = weakref.finalize(self, fairy.close)
        return self._pg

    def _abandon(self, connection: psycopg.Connection[Any]) -> None:
        """After a failed pass: its transaction rolled back, or the connection dropped if that fails."""
        try:
            connection.rollback()
        except Exception:  # the connection is gone (the failure being raised says why): dropped below
            broken = True
        else:
            broken = connection.broken
        if not broken:
            return
        self._pg = None
        if self._pg_close is not None:
            self._pg_close()
            self._pg_close = None

    def close(self) -> None:
        """Close the sequencer's own connection (PostgreSQL); a later pass opens a new one."""
        with self._passes:
            while self._passing:
                self._passes.wait()
            self._pg = None
            if self._pg_close is not None:
                self._pg_close()
                self._pg_close = None

    def _pg_waiting(self) -> tuple[str, dict[str, Any]]:
        """_WAITING as the engine's dialect renders it, and its constant parameters."""
        if self._pg_waiting_sql is None:
            compiled = _WAITING.compile(dialect=self.db.engine.dialect)
            self._pg_waiting_sql = (str(compiled), dict(compiled.params))
        return self._pg_waiting_sql

    @staticmethod
    def _size(highest_leaf: int | None, highest_index: int | None) -> int:
        """The tree's size, checked against the highest index an event holds (they move together)."""
        size = 0 if highest_leaf is None else int(highest_leaf) + 1
        if (highest_index is None and size != 0) or (highest_index is not None and int(highest_index) + 1 != size):
            raise SequencerFault(f"the tree holds {size} leaves but the highest event index is {highest_index}")
        return size

    def lookup(self, event_id: int) -> Sequenced | None:
        """The event's place in the log, or None while it waits (UnknownEvent if there is no such event)."""
        with self.db.engine.connect() as connection:
            row = connection.execute(_OF_EVENT, {"id": event_id}).first()
        if row is None:
            raise UnknownEvent(f"no event {event_id}")
        if row.ledger_index is None:
            return None
        return Sequenced(event_id, int(row.ledger_index), self.hasher.leaf(bytes(row.leaf_input)))

    def wait_for(self, event_id: int) -> Sequenced:
        """The committed event's index: a pass of our own if no other has covered it yet."""
        outcome = self._wait_for_all([event_id])[event_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _wait_for_all(self, event_ids: Iterable[int]) -> dict[int, Sequenced | Exception]:
        """The places of committed events: those a pass of this process already gave are taken from
        memory at once (even while another pass runs), the rest from the first pass of this process
        begun after the call (run by this thread if none runs; behind another process's leader, if
        any), and what another process sequenced is read back from the database. An event that does
        not exist or waits still (not committed) gets its error; a failing pass raises for all."""
        found: dict[int, Sequenced | Exception] = {}
        missing = list(event_ids)
        number = 0
        with self._passes:
            entered = self._started  # passes begun before the call may have missed its events
            while True:
                missing = [event_id for event_id in missing if not self._take(event_id, found)]
                if not missing or self._finished > entered:  # all found, or a pass begun since found no more
                    break
                if not self._passing:
                    number = self._lead()
                    break
                self._passes.wait()  # woken as the running pass's batches commit
        if number:
            self._drain(number)
            with self._passes:
                missing = [event_id for event_id in missing if not self._take(event_id, found)]
        for event_id in missing:
            try:
                place = self.lookup(event_id)
            except UnknownEvent as unknown:
                found[event_id] = unknown
                continue
            found[event_id] = place or LedgerError(
                f"event {event_id} was not sequenced: is it committed?", code="event_not_committed"
            )
        return found

    def _take(self, event_id: int, found: dict[int, Sequenced | Exception]) -> bool:
        place = self._recent.pop(event_id, None)
        if place is not None:
            found[event_id] = place
        return place is not None

    async def wait_for_async(self, event_id: int) -> Sequenced:
        """`wait_for` for a request served on an event loop (the embedded default runs issuance there):
        every request that reaches this point before the loop's next turn shares one pass, run on the
        loop like the rest of such a request's work."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Sequenced] = loop.create_future()
        with self._loop_lock:
            waiting = self._loop_waiting.get(loop)
            if waiting is None:
                waiting = self._loop_waiting[loop] = {}
                loop.call_soon(self._serve_loop, loop, 0, 0)
            waiting.setdefault(event_id, []).append(future)
        return await future

    def _serve_loop(self, loop: asyncio.AbstractEventLoop, hops: int, seen: int) -> None:
        """The loop's pass, once the waiters stop growing: while other requests ready on the loop
        keep joining (their issuance ran since the last turn), it steps behind them, LOOP_HOPS times
        at most, so that one pass covers them all."""
        with self._loop_lock:
            count = len(self._loop_waiting.get(loop, {}))
            if count > seen and hops < LOOP_HOPS:
                loop.call_soon(self._serve_loop, loop, hops + 1, count)
                return
            waiting = self._loop_waiting.pop(loop, {})
        live = {event_id: futures for event_id, futures in waiting.items() if any(not f.done() for f in futures)}
        outcomes: dict[int, Sequenced | Exception]
        try:
            outcomes = self._wait_for_all(live)
        except Exception as failure:  # the pass failed: every waiter learns it
            outcomes = dict.fromkeys(live, failure)
        for event_id, futures in live.items():
            outcome = outcomes[event_id]
            for future in futures:
                if future.done():  # its request was cancelled
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
