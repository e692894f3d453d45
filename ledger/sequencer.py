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
the same time share passes (group commit): threads queue behind the one running a pass and find their
events among what it sequenced (kept in memory, so no query), code on an event loop awaits
`wait_for_async`, whose waiters are served by one pass per loop iteration, and processes share through
the leader lock. A pass costs the same for one event as for ten, so under load the log's cost per
request shrinks instead of growing.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text, update

from ledger import entries
from ledger.errors import LedgerError
from ledger.merkle import SM3, MerkleTree, TreeHasher, subtree_nodes
from ledger.node_store import Node, NodeId, NodeStore
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
# PostgreSQL: the whole batch in one statement (an executemany UPDATE costs a round trip a row there).
_ASSIGN_ARRAYS = text(
    "UPDATE events SET ledger_index = batch.idx, leaf_input = batch.leaf"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:indices AS bigint[]), CAST(:leaves AS bytea[]))"
    " AS batch(id, idx, leaf) WHERE events.id = batch.id"
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


class _PassStore:
    """The node store of a pass: its tree size came with its events (no second query for it), and
    the frontier it extends is read from the nodes this process's last pass left (`known`: stored
    nodes never change, so a committed one stays right) when they are that frontier, else from the
    database (another process appended since). `fresh` keeps what the pass read and wrote."""

    def __init__(self, store: NodeStore, size: int, known: dict[NodeId, bytes]) -> None:
        self._store = store
        self._size = size
        self._known = known
        self.fresh: dict[NodeId, bytes] = {}

    def size(self) -> int:
        return self._size

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        if all(node in self._known for node in ids):
            values = [self._known[node] for node in ids]
        else:
            values = self._store.read(ids)
        self.fresh.update(zip(ids, values, strict=True))
        return values

    def write(self, nodes: Sequence[Node]) -> None:
        self._store.write(nodes)
        self.fresh.update(((level, index), value) for level, index, value in nodes)


class Sequencer:
    def __init__(self, db: Database, hasher: TreeHasher = SM3, *, batch: int = BATCH) -> None:
        self.db = db
        self.hasher = hasher
        self.batch = batch
        self._pass_lock = threading.Lock()
        self._recent: dict[int, Sequenced] = {}  # event id → place, from this process's passes
        self._frontier: dict[NodeId, bytes] = {}  # the last committed pass's frontier (see _PassStore)
        self._loop_lock = threading.Lock()
        self._loop_waiting: dict[asyncio.AbstractEventLoop, dict[int, list[asyncio.Future[Sequenced]]]] = {}

    def waiting(self) -> bool:
        """Whether a committed event waits for its index: one read through the partial index on
        `ledger_index IS NULL`, no write transaction and no lock."""
        with self.db.engine.connect() as connection:
            return connection.execute(_ANY_WAITING).first() is not None

    def run_pass(self) -> int:
        """Sequence every event committed so far; returns how many got an index. Each batch of up to
        `batch` events is one transaction, so a long backlog (the first pass over an existing
        database) does not hold the lock in one huge transaction."""
        with self._pass_lock:
            return self._drain()

    def _drain(self) -> int:
        total = 0
        while True:
            done = self._one_batch()
            for place in done:  # committed: waiters may take them
                self._recent[place.event_id] = place
            total += len(done)
            if len(done) < self.batch:
                break
        excess = len(self._recent) - RECENT
        if excess > 0:
            for event_id in list(itertools.islice(self._recent, excess)):
                del self._recent[event_id]
        return total

    def _one_batch(self) -> list[Sequenced]:
        with self.db.write_connection() as connection:
            if not self.db.is_sqlite:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            rows = connection.execute(_WAITING, {"limit": self.batch}).all()
            if not rows:
                return []
            size = self._size(rows[0].highest_leaf, rows[0].highest_index)
            store = _PassStore(SqlNodeStore(connection), size, self._frontier)
            tree = MerkleTree(store, self.hasher)
            leaves = [
                entries.leaf_input(entries.entry(row.type, row.created_at, row.actor, row.subject, row.payload))
                for row in rows
            ]
            if self.db.is_sqlite:  # in-process: an executemany is as fast as one statement
                connection.execute(
                    _ASSIGN,
                    [
                        {"b_id": row.id, "b_index": size + n, "b_leaf": leaf}
                        for n, (row, leaf) in enumerate(zip(rows, leaves, strict=True))
                    ],
                )
            else:
                ids = [row.id for row in rows]
                indices = list(range(size, size + len(rows)))
                assigned = connection.execute(_ASSIGN_ARRAYS, {"ids": ids, "indices": indices, "leaves": leaves})
                if assigned.rowcount != len(rows):
                    raise SequencerFault(f"{assigned.rowcount} of {len(rows)} events took their index")
            hashes = [self.hasher.leaf(leaf) for leaf in leaves]
            grown = tree.append_hashes(hashes)
        # committed: the new frontier, for the next pass (only after the commit, never from a pass that failed)
        self._frontier = {node: store.fresh[node] for node in subtree_nodes(0, grown) if node in store.fresh}
        return [Sequenced(row.id, size + n, value) for n, (row, value) in enumerate(zip(rows, hashes, strict=True))]

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
        """The places of committed events, all from at most one pass of ours: those a pass of this
        process already gave are taken from memory, the rest after one pass (behind this process's
        running pass, and another process's leader, if any), and what another process sequenced is
        read back from the database. An event that does not exist or waits still (not committed)
        gets its error; a failing pass raises for all."""
        found: dict[int, Sequenced | Exception] = {}
        with self._pass_lock:
            missing = [event_id for event_id in event_ids if not self._take(event_id, found)]
            if missing:
                self._drain()
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
