"""The sequencer (ledger/sequencer.py) on SQLite and PostgreSQL: every committed event gets exactly one
index, densely from 0, in the order transactions became visible, with its canonical-JSON leaf in the
tree; events rolled back get none; a pass that fails half-way leaves nothing; events that existed
before the ledger go in first, in id order. After each test the whole log is checked against the
RFC 9162 reference written from the RFC (tests/ledger/rfc9162.py), not against ledger/."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, update

from ledger.entries import RESERVED
from ledger.errors import LedgerError
from ledger.events import INSERT_EVENT, event_row, record_event
from ledger.merkle import SM3, MerkleTree
from ledger.sequencer import Sequenced, Sequencer, UnknownEvent
from ledger.sql_node_store import SqlNodeStore
from store.db import Database
from store.models import Event
from tests.fixtures import postgres_url
from tests.ledger.rfc9162 import Reference, sm3

_E = Event.__table__.c


class Boom(RuntimeError):
    pass


def log_rows(database: Database) -> list[tuple[int, int | None, bytes | None]]:
    with database.engine.connect() as connection:
        rows = connection.execute(select(_E.id, _E.ledger_index, _E.leaf_input).order_by(_E.id)).all()
    return [(row[0], row[1], None if row[2] is None else bytes(row[2])) for row in rows]


def check_log(database: Database, *, sample: int = 40) -> list[bytes]:
    """Density, leaf bytes, and the tree against the RFC 9162 reference; returns the leaves by index."""
    rows = log_rows(database)
    sequenced = sorted((index, leaf) for _, index, leaf in rows if index is not None)
    assert [index for index, _ in sequenced] == list(range(len(sequenced))), "indices are dense from 0"
    leaves = [leaf for _, leaf in sequenced]
    assert all(leaf is not None for leaf in leaves)
    reference = Reference(leaves, sm3)  # type: ignore[arg-type]
    with database.engine.connect() as connection:
        tree = MerkleTree(SqlNodeStore(connection), SM3)
        size = tree.size()
        assert size == len(leaves)
        if not size:
            return []
        assert tree.root() == reference.mth(0, size)
        rng = random.Random(size)
        for index in rng.sample(range(size), min(sample, size)):
            assert tree.inclusion_proof(index, size) == reference.path(index, 0, size)
        for first in rng.sample(range(1, size + 1), min(sample, size)):
            assert tree.consistency_proof(first, size) == reference.proof(first, size)
    return leaves  # type: ignore[return-value]


def record(database: Database, type_: str, n: int, *, subject: str | None = None) -> int:
    with database.session() as session:
        return record_event(session, type_, actor="test", subject=subject, payload={"n": n, "note": "é\u2028"})


def test_existing_events_are_logged_in_id_order(database: Database) -> None:
    size = len(check_log(database))
    waiting = [event_id for event_id, index, _ in log_rows(database) if index is None]
    ids = [record(database, "legacy.event", n) for n in range(7)]  # rows written before any pass
    sequencer = Sequencer(database)
    assert sequencer.run_pass() == len(waiting) + 7
    leaves = check_log(database)
    for n, event_id in enumerate(waiting + ids):
        found = sequencer.lookup(event_id)
        assert found is not None and found.index == size + n
    for n, event_id in enumerate(ids):
        found = sequencer.lookup(event_id)
        assert found is not None
        entry = json.loads(leaves[found.index])
        assert entry["type"] == "legacy.event" and entry["n"] == n and entry["actor"] == "test"
        assert entry["subject"] is None and entry["time"].endswith("Z")
        plain = json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        assert leaves[found.index] == plain.encode()
        assert found.leaf_hash == sm3(b"\x00" + leaves[found.index])
    assert sequencer.run_pass() == 0


def test_wait_for_answers_the_index_after_commit(database: Database) -> None:
    sequencer = Sequencer(database)
    event_id = record(database, "test.wait", 1, subject="s-1")
    found = sequencer.wait_for(event_id)
    assert sequencer.wait_for(event_id) == found  # asked again: the same place
    assert found.index == check_log(database).__len__() - 1
    with pytest.raises(UnknownEvent):
        sequencer.wait_for(10**9)


def test_a_payload_may_not_name_the_entry_fields(database: Database) -> None:
    for name in sorted(RESERVED):
        with pytest.raises(LedgerError) as caught, database.session() as session:
            record_event(session, "test.bad", actor=None, subject=None, payload={name: "x"})
        assert caught.value.code == "payload_reserved"
        with pytest.raises(LedgerError):
            event_row("test.bad", actor=None, subject=None, payload={name: "x"})


def test_legacy_payload_values_outside_rfc8785_are_logged_as_strings(database: Database) -> None:
    """A float (trustseal writes none; jcs refuses them) must not stop the log."""
    row = {"type": "legacy.float", "created_at": datetime.now(UTC), "actor": None, "subject": None}
    with database.engine.begin() as connection:
        result = connection.execute(INSERT_EVENT, {**row, "payload": {"ratio": 0.5, "big": 2**60}})
        event_id = int(result.inserted_primary_key[0])  # type: ignore[index]
    found = Sequencer(database).wait_for(event_id)
    entry = json.loads(check_log(database)[found.index])
    assert entry["ratio"] == "0.5" and entry["big"] == str(2**60)


def _crash_after_writing(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Sequencer._write

    def write_then_fail(self: Sequencer, bind: Any, *args: Any) -> None:
        real(self, bind, *args)  # the indices and the nodes are written in the transaction...
        _sent(bind)
        raise Boom("the sequencer dies before its commit")  # ...which then never commits

    monkeypatch.setattr(Sequencer, "_write", write_then_fail)


def _sent(bind: Any) -> None:
    """On PostgreSQL the pass's writes are queued in a pipeline: have the server run them (they
    take effect in the open transaction) before the injected crash, as SQLite already has."""
    if isinstance(bind, psycopg.Cursor):
        with bind.connection.pipeline() as pipeline:
            pipeline.sync()


def test_a_pass_that_fails_half_way_leaves_no_gap(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sequencer = Sequencer(database, batch=4)
    Sequencer(database).run_pass()
    size = len(check_log(database))
    ids = [record(database, "test.crash", n) for n in range(10)]
    with monkeypatch.context() as patch:
        _crash_after_writing(patch)
        with pytest.raises(Boom):
            sequencer.run_pass()
    assert len(check_log(database)) == size  # the failed batch left neither an index nor a node
    assert all(sequencer.lookup(event_id) is None for event_id in ids)

    # The second batch of a pass fails: the first stays, whole; the rest waits, and nothing is skipped.
    calls = {"n": 0}
    real = Sequencer._write

    def second_fails(self: Sequencer, bind: Any, *args: Any) -> None:
        calls["n"] += 1
        real(self, bind, *args)
        if calls["n"] == 2:
            _sent(bind)
            raise Boom("dies in the second batch")

    with monkeypatch.context() as patch:
        patch.setattr(Sequencer, "_write", second_fails)
        with pytest.raises(Boom):
            sequencer.run_pass()
    assert len(check_log(database)) == size + 4
    assert sequencer.run_pass() == 6
    check_log(database)
    assert [sequencer.wait_for(event_id).index for event_id in ids] == list(range(size, size + 10))


def test_the_sequencer_refuses_a_tree_out_of_step_with_the_events(database: Database) -> None:
    Sequencer(database).run_pass()
    event_id = record(database, "test.fault", 0)
    with database.session() as session:  # damage: an index nobody sequenced
        highest = session.execute(select(func.max(_E.ledger_index))).scalar()
        session.execute(update(Event).where(_E.id == event_id).values(ledger_index=(highest or 0) + 5))
    other = record(database, "test.fault", 1)
    with pytest.raises(RuntimeError, match="highest event index"):
        Sequencer(database).wait_for(other)
    with database.session() as session:  # repaired: the same event waits again and is logged in order
        session.execute(update(Event).where(_E.id == event_id).values(ledger_index=None))
    sequencer = Sequencer(database)
    assert sequencer.wait_for(event_id).index + 1 == sequencer.wait_for(other).index
    check_log(database)


def test_threads_append_densely(database: Database) -> None:
    """Eight threads, each committing (or rolling back) events and waiting for their indices, with
    separate Sequencer objects (as separate services would have) and a shared one."""
    shared = Sequencer(database)
    before = len(check_log(database))
    committed: list[int] = []
    rolled_back: list[int] = []
    answers: dict[int, int] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        sequencer = shared if seed % 2 else Sequencer(database)
        try:
            for n in range(25):
                if rng.random() < 0.15:
                    try:
                        with database.session() as session:
                            rolled = record_event(session, "test.rolled", actor=None, subject=None, payload={})
                            raise Boom
                    except Boom:
                        with lock:
                            rolled_back.append(rolled)
                    continue
                event_id = record(database, "test.thread", n, subject=f"t{seed}")
                found = sequencer.wait_for(event_id)
                with lock:
                    committed.append(event_id)
                    answers[event_id] = found.index
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    leaves = check_log(database)
    assert len(leaves) == before + len(committed)
    assert sorted(answers.values()) == list(range(before, before + len(committed)))
    by_id = {event_id: index for event_id, index, _ in log_rows(database)}
    assert all(by_id[event_id] == index for event_id, index in answers.items())
    assert rolled_back  # (SQLite may give a rolled-back id to a later event: look for the rows instead)
    with database.engine.connect() as connection:
        assert connection.execute(select(_E.id).where(_E.type == "test.rolled")).all() == []


def _process_worker(url: str, seed: int, count: int) -> list[tuple[int, int]]:
    database = Database(url)
    try:
        sequencer = Sequencer(database)
        out = []
        for n in range(count):
            event_id = record(database, "test.process", n, subject=f"p{seed}")
            out.append((event_id, sequencer.wait_for(event_id).index))
        return out
    finally:
        database.dispose()


def test_processes_append_densely(database: Database) -> None:
    """Four processes on one database (PostgreSQL: advisory lock; SQLite: its write lock)."""
    if not database.is_sqlite:
        assert postgres_url() is not None
    before = len(check_log(database))
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(_process_worker, [(database.url, seed, 30) for seed in range(4)])
    answers = dict(pair for result in results for pair in result)
    assert sorted(answers.values()) == list(range(before, before + 120))
    leaves = check_log(database, sample=60)
    assert len(leaves) == before + 120
    by_id = {event_id: index for event_id, index, _ in log_rows(database)}
    assert all(by_id[event_id] == index for event_id, index in answers.items())


def _count_passes(monkeypatch: pytest.MonkeyPatch, sequencer: Sequencer) -> dict[str, int]:
    """Counts the sequencer's pass transactions and its reads of an event's place."""
    counts = {"passes": 0, "lookups": 0}
    one_batch, lookup = sequencer._one_batch, sequencer.lookup

    def counted_batch() -> list[Sequenced]:
        counts["passes"] += 1
        return one_batch()

    def counted_lookup(event_id: int) -> Sequenced | None:
        counts["lookups"] += 1
        return lookup(event_id)

    monkeypatch.setattr(sequencer, "_one_batch", counted_batch)
    monkeypatch.setattr(sequencer, "lookup", counted_lookup)
    return counts


def test_waiters_take_their_places_from_the_pass_that_gave_them(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pass covers every event committed before it; their waiters (threads of this process behind
    it) get their places from it, with no further pass and no query."""
    sequencer = Sequencer(database)
    sequencer.run_pass()
    ids = [record(database, "test.group", n) for n in range(5)]
    counts = _count_passes(monkeypatch, sequencer)
    places = [sequencer.wait_for(event_id) for event_id in ids]
    assert counts == {"passes": 1, "lookups": 0}
    assert [place.index for place in places] == list(range(places[0].index, places[0].index + 5))
    assert sequencer.wait_for(ids[0]) == places[0]  # asked again: read back from the database
    assert counts["lookups"] == 1
    leaves = check_log(database)
    assert all(place.leaf_hash == sm3(b"\x00" + leaves[place.index]) for place in places)


def test_waiters_on_an_event_loop_share_one_pass(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests served on one event loop wait together: one pass for all of them, each its own place,
    and an unknown event fails only its own waiter."""
    sequencer = Sequencer(database)
    sequencer.run_pass()
    ids = [record(database, "test.loop", n) for n in range(6)]
    counts = _count_passes(monkeypatch, sequencer)

    async def main() -> list[Sequenced | BaseException]:
        waits = [sequencer.wait_for_async(event_id) for event_id in [*ids, 10**9]]
        return await asyncio.gather(*waits, return_exceptions=True)

    *places, unknown = asyncio.run(main())
    assert isinstance(unknown, UnknownEvent)
    assert counts["passes"] == 1
    assert all(isinstance(place, Sequenced) for place in places)
    by_id = {event_id: index for event_id, index, _ in log_rows(database)}
    assert [place.index for place in places] == [by_id[event_id] for event_id in ids]  # type: ignore[union-attr]
    check_log(database)


def test_a_waiter_on_an_event_loop_sees_a_failing_pass(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    sequencer = Sequencer(database)
    event_id = record(database, "test.loop", 0)
    monkeypatch.setattr(sequencer, "_one_batch", lambda: (_ for _ in ()).throw(Boom("the database went away")))
    with pytest.raises(Boom):
        asyncio.run(sequencer.wait_for_async(event_id))
    monkeypatch.undo()
    assert asyncio.run(sequencer.wait_for_async(event_id)) == sequencer.wait_for(event_id)


def test_waiters_joining_over_a_few_loop_turns_share_one_pass(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests reach their wait on different turns of the loop (each ran its own issuance first): the
    pass steps behind them while they keep joining, and covers all of them at once."""
    sequencer = Sequencer(database)
    sequencer.run_pass()
    ids = [record(database, "test.turns", n) for n in range(4)]
    counts = _count_passes(monkeypatch, sequencer)
    served: list[list[int]] = []
    wait_for_all = sequencer._wait_for_all

    def counted(event_ids: Iterable[int]) -> dict[int, Sequenced | Exception]:
        served.append(list(event_ids))
        return wait_for_all(served[-1])

    monkeypatch.setattr(sequencer, "_wait_for_all", counted)

    async def late(event_id: int, turns: int) -> Sequenced:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await sequencer.wait_for_async(event_id)

    async def main() -> list[Sequenced]:
        return await asyncio.gather(*(late(event_id, turns) for turns, event_id in enumerate(ids)))

    places = asyncio.run(main())
    assert served == [ids]  # one service of the loop's waiters, all four together
    assert counts == {"passes": 1, "lookups": 0}
    assert [place.index for place in places] == list(range(places[0].index, places[0].index + 4))


def test_a_pass_extends_the_frontier_its_last_pass_left(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass after this process's own takes the frontier from memory (no read); after another
    appender's pass it reads the database; either way the log matches the RFC reference."""
    mine, other = Sequencer(database), Sequencer(database)
    reads: list[list[tuple[int, int]]] = []
    real = Sequencer._read_nodes

    def counted(self: Sequencer, bind: Any, ids: Sequence[tuple[int, int]]) -> list[bytes]:
        reads.append(list(ids))
        return real(self, bind, ids)

    monkeypatch.setattr(Sequencer, "_read_nodes", counted)
    for n in range(3):
        record(database, "test.frontier", n)
    mine.run_pass()
    reads.clear()
    for n in range(5):
        record(database, "test.frontier", n)
    assert mine.run_pass() == 5
    assert reads == []  # its own frontier, from memory
    record(database, "test.frontier", 9)
    assert other.run_pass() == 1
    reads.clear()
    record(database, "test.frontier", 10)
    assert mine.run_pass() == 1
    assert reads and reads[0]  # the tree grew elsewhere: the frontier comes from the database
    monkeypatch.undo()
    check_log(database)


def test_a_waiter_whose_place_is_known_does_not_wait_for_a_running_pass(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a pass runs (held here), a waiter whose event an earlier pass covered takes its place at
    once instead of queueing behind it; one whose event came too late for the held pass gets it from
    the next pass, begun as soon as the held one ends."""
    sequencer = Sequencer(database)
    early = record(database, "test.convoy", 0)
    sequencer.run_pass()  # covers `early`; its place waits in memory
    one_batch = sequencer._one_batch
    entered, release = threading.Event(), threading.Event()

    def held() -> list[Sequenced]:  # committed, and held before its places are handed out
        done = one_batch()
        entered.set()
        assert release.wait(30)
        return done

    monkeypatch.setattr(sequencer, "_one_batch", held)
    running = threading.Thread(target=sequencer.run_pass)
    running.start()
    try:
        assert entered.wait(30)
        late = record(database, "test.convoy", 1)  # committed while the held pass runs
        answers: dict[int, Sequenced] = {}
        late_waiter = threading.Thread(target=lambda: answers.update({late: sequencer.wait_for(late)}))
        late_waiter.start()
        early_waiter = threading.Thread(target=lambda: answers.update({early: sequencer.wait_for(early)}))
        early_waiter.start()
        early_waiter.join(10)
        assert not early_waiter.is_alive() and early in answers, "a known place waited for the running pass"
        assert late not in answers
    finally:
        monkeypatch.setattr(sequencer, "_one_batch", one_batch)
        release.set()
        running.join(30)
    late_waiter.join(30)
    assert answers[late].index == answers[early].index + 1
    check_log(database)
