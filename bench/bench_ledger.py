"""The ledger's cost and speed (issue 11), each figure against an anchor measured in the same run.

1. **Issuance over HTTP with the ledger vs without it** (target >= 0.9x). Two services on two demo
   homes (SQLite, the embedded default, as in bench_issuance), both up at once and loaded by the same
   wrk settings in paired one-second slices whose order alternates (ABBA). *With*: `api.asgi:app` as shipped
   (the response waits for its ledger index; the background integrator signs checkpoints every
   0.25 s). *Without* (bench/asgi_without_ledger.py): the same app and code with the ledger's
   request-time work switched off in that process only: certificate and event row still committed
   in one transaction, as before the ledger, no sequencer pass, no integrator; `ledger_index` then
   carries the event id. Ratio = median of the pairs' ratios (and its lower quartile). Also the
   servers' own CPU time per request (from /proc, integrator included), which the machine's load
   moves far less than a rate.
2. **Ledger appends per second on PostgreSQL, 8 concurrent writers** vs plain single-row INSERTs into
   a table of the same shape (`CREATE TABLE … (LIKE events INCLUDING ALL)`, own id sequence), target
   >= 0.5x, two ways, each against the anchor slice of its round (rounds of three slices, the order
   reversed every other round; the background integrator, every 0.25 s as the service's, throughout):
   - *waiting*: each writer thread commits a business transaction inserting its event
     (`record_event`), then `Ledger.wait_for` (its dense index, via a sequencer pass it runs or
     shares); an append counts when its writer holds its index.
   - *not waiting* (Tessera style: the response may wait for its index, the tree's growth may run
     behind): each writer only commits its event; the integrator gives indices and grows the tree.
     Counted: entries integrated (indexed and in the tree: the tree's size grew by exactly the
     events committed), over the time from the slice's start until the integrator has caught up
     with the slice's last event (its period and last pass included).
   Anchor: the same insert and commit into the plain table, same engine, same 8 threads.
3. **Under that load** (the slices of ours): the wait for an index after commit, p50 / p99 (issue:
   p99 <= 100 ms), and the time from an event's commit to the first signed checkpoint covering it
   (issue: <= 1 s), from the integrator's own record of when it published each checkpoint.
4. **Inclusion-proof time at 10^4 vs 10^6 entries** (target: within 2x, i.e. rate(10^6) / rate(10^4)
   >= 0.5). Two PostgreSQL trees filled by the real append code (`MerkleTree.append_hashes`, in
   chunks of 2^16 leaves) whose nodes are written with COPY: exactly the rows appends would store.
   Checked against the RFC 9162 reference of tests/ledger/rfc9162.py (written from the RFC,
   independent of ledger/): the 10^4 tree's root and sampled proofs; of the 10^6 tree, 64 sampled
   leaves and two whole subtrees of 2^16 leaves (its root and proofs too with TRUSTSEAL_BENCH_LONG=1:
   hashing 10^6 leaves in the reference takes ~10-25 s here). Timed: `Ledger.inclusion_proof`
   (a pool checkout, the size check and one read of the proof's nodes) for random indices, in paired
   slices alternating between the two trees.

PostgreSQL: `TRUSTSEAL_BENCH_DATABASE_URL` (default postgresql+psycopg://postgres@127.0.0.1:5432/test);
every schema made here is dropped after. `TRUSTSEAL_BENCH_LONG=1` runs more and longer slices.
"""

from __future__ import annotations

import bisect
import json
import os
import random
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.csrs import sm2_csr
from bench.server import cpu_seconds, post_script, serving, wrk, wrk_available

PG_URL = os.environ.get("TRUSTSEAL_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LONG = os.environ.get("TRUSTSEAL_BENCH_LONG") == "1"
WRITERS = 8
SMALL, LARGE = 10_000, 1_000_000
CHUNK = 1 << 16  # leaves per append while filling a tree (its frontier then holds only levels >= 16)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1. issuance over HTTP, with and without the ledger ----------------------------------------------


def _home(path: Path) -> str:
    from bench.bench_issuance import _setup

    return _setup(path)


def issuance(seconds: float, pairs: int) -> dict[str, float]:
    bodies = [json.dumps({"csr_pem": sm2_csr(), "profile": "org-seal", "ca": "cn-370000-sm2"}) for _ in range(32)]
    with tempfile.TemporaryDirectory() as with_dir, tempfile.TemporaryDirectory() as without_dir:
        with_token, without_token = _home(Path(with_dir)), _home(Path(without_dir))
        off = {"TRUSTSEAL_LEDGER_INTEGRATE_SECONDS": "0"}
        with (
            serving(Path(with_dir)) as (with_url, with_pid),
            serving(Path(without_dir), off, app="bench.asgi_without_ledger:app") as (without_url, without_pid),
        ):
            sides = {
                "with": (with_url, with_pid, post_script("/v1/certificates", bodies, with_token)),
                "without": (without_url, without_pid, post_script("/v1/certificates", bodies, without_token)),
            }
            for url, _, script in sides.values():
                wrk(url, 1, script=script)  # warm-up
            rates: dict[str, list[float]] = {"with": [], "without": []}
            cpu: dict[str, list[float]] = {"with": [], "without": []}  # server CPU seconds per request
            for pair in range(pairs):
                for side in ("with", "without") if pair % 2 == 0 else ("without", "with"):
                    url, pid, script = sides[side]
                    before = cpu_seconds(pid)
                    answer = wrk(url, seconds, script=script)
                    rates[side].append(answer["rps"])
                    cpu[side].append((cpu_seconds(pid) - before) / answer["requests"])
    ratios = [w / o for w, o in zip(rates["with"], rates["without"], strict=True)]
    cpu_ratios = [o / w for w, o in zip(cpu["with"], cpu["without"], strict=True)]
    return {
        "issuance_http_with_ledger_rps": statistics.median(rates["with"]),
        "issuance_http_without_ledger_rps": statistics.median(rates["without"]),
        "ratio_issuance_with_vs_without_ledger": statistics.median(ratios),
        "ratio_issuance_with_vs_without_lowest_quartile": _quantile(ratios, 0.25),
        # requests per second of the server's own CPU (its integrator included): load moves it less
        "issuance_per_server_cpu_s_with_ledger": 1 / statistics.median(cpu["with"]),
        "issuance_per_server_cpu_s_without_ledger": 1 / statistics.median(cpu["without"]),
        "ratio_issuance_per_cpu_with_vs_without_ledger": statistics.median(cpu_ratios),
    }


# -- PostgreSQL schemas --------------------------------------------------------------------------------


@contextmanager
def _schema(tag: str) -> Iterator[str]:
    """A fresh schema in the bench database, dropped after; yields a URL whose search_path is it."""
    from sqlalchemy import create_engine, text

    name = f"bench_{tag}_{secrets.token_hex(4)}"
    engine = create_engine(PG_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{name}"'))
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        engine.dispose()


def postgres_version() -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    try:
        with engine.connect() as connection:
            return str(connection.execute(text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


# -- 2 and 3. appends under 8 writers, waits and checkpoints ---------------------------------------------


@dataclass
class _Load:
    """What the slices of ours recorded: per event (commit time, index, wait for the index), and per
    checkpoint the integrator published (time, size)."""

    events: list[tuple[float, int, float]] = field(default_factory=list)
    checkpoints: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _writers(work: Callable[[int, int], None], seconds: float) -> tuple[int, float]:
    """WRITERS threads each doing `work(writer, n)` until the deadline; (operations done, seconds taken)."""
    done = [0] * WRITERS
    errors: list[BaseException] = []
    stop = time.perf_counter() + seconds

    def writer(w: int) -> None:
        try:
            while time.perf_counter() < stop:
                work(w, done[w])
                done[w] += 1
        except BaseException as error:  # reported below
            errors.append(error)

    start = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a writer failed: {errors[0]!r}") from errors[0]
    return sum(done), time.perf_counter() - start


def _slice(work: Callable[[int, int], None], seconds: float) -> float:
    """Operations per second of WRITERS threads doing `work` for `seconds`."""
    count, elapsed = _writers(work, seconds)
    return count / elapsed


def appends(seconds: float, pairs: int) -> dict[str, float]:
    from sqlalchemy import MetaData, Table, text

    from api.context import open_context
    from api.settings import Settings
    from ca.hierarchy import create_demo_hierarchy
    from ledger.events import event_row, record_event
    from ledger.integrator import Integrator
    from ledger.sequencer import Sequencer

    with _schema("appends") as url, tempfile.TemporaryDirectory() as home:
        settings = Settings(
            home=Path(home),
            database_url=url,
            public_url="http://127.0.0.1:8000",
            keystore="local",
            passphrase="bench-passphrase",
            max_upload_bytes=1 << 20,
        )
        context = open_context(settings, create=True)
        create_demo_hierarchy(context.ca)
        db, ledger = context.db, context.ledger
        ledger.signer()  # the ledger key certified before the load, as the service does at start
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE plain_events (LIKE events INCLUDING ALL EXCLUDING DEFAULTS)"))
            connection.execute(text("CREATE SEQUENCE plain_events_id_seq OWNED BY plain_events.id"))
            connection.execute(text("ALTER TABLE plain_events ALTER id SET DEFAULT nextval('plain_events_id_seq')"))
        plain = Table("plain_events", MetaData(), autoload_with=db.engine)
        insert_plain = plain.insert()
        load = _Load()
        recording = threading.Event()

        def integrate() -> Any:
            published = ledger.integrate()
            if published is not None and recording.is_set():
                with load.lock:
                    load.checkpoints.append((time.perf_counter(), published.size))
            return published

        def ours(w: int, n: int) -> None:
            with db.engine.begin() as connection:
                event_id = record_event(
                    connection, "bench.appended", actor=f"writer-{w}", subject=f"w{w}-{n}", payload={"n": n}
                )
            committed = time.perf_counter()
            place = ledger.wait_for(event_id)
            waited = time.perf_counter() - committed
            if recording.is_set():  # not the warm-up's: checkpoints are recorded from the same moment
                with load.lock:
                    load.events.append((committed, place.index, waited))

        def committed_only(w: int, n: int) -> None:  # the event committed; its index left to the integrator
            with db.engine.begin() as connection:
                record_event(connection, "bench.appended", actor=f"writer-{w}", subject=f"w{w}-{n}", payload={"n": n})

        def integrated(length: float) -> float:
            """Entries integrated (an index, and their leaf in the tree) per second: from the slice's
            start until the integrator has taken in every event its writers committed."""
            before = ledger.size()  # nothing waits here: every earlier slice ended integrated
            start = time.perf_counter()
            written, _ = _writers(committed_only, length)
            while ledger.size() < before + written:
                if time.perf_counter() - start > length + 60:
                    raise RuntimeError("the integrator did not catch up within a minute")
                time.sleep(0.005)
            elapsed = time.perf_counter() - start
            grown = ledger.size() - before
            assert grown == written, f"{grown} entries integrated for {written} events committed"
            return grown / elapsed

        def anchor(w: int, n: int) -> None:
            with db.engine.begin() as connection:
                row = event_row("bench.appended", actor=f"writer-{w}", subject=f"w{w}-{n}", payload={"n": n})
                key = connection.execute(insert_plain, row).inserted_primary_key
                assert key is not None and key[0] is not None

        Sequencer(db).run_pass()  # the hierarchy's own events, before anything is timed
        integrator = Integrator(integrate).start()
        try:
            _slice(anchor, 0.5)  # warm every path and the pool
            _slice(ours, 0.5)
            integrated(0.5)
            ledger.integrate()
            recording.set()
            rates: dict[str, list[float]] = {"ours": [], "anchor": [], "integrated": []}
            for round_ in range(pairs):  # each round one slice of each, the order reversed every other round
                order = ("ours", "anchor", "integrated") if round_ % 2 == 0 else ("integrated", "anchor", "ours")
                for side in order:
                    if side == "integrated":
                        rates[side].append(integrated(seconds))
                    else:
                        rates[side].append(_slice(ours if side == "ours" else anchor, seconds))
            time.sleep(2 * integrator.every + 0.5)  # the last events' checkpoint
        finally:
            integrator.stop()
        sizes = [size for _, size in load.checkpoints]
        times = [at for at, _ in load.checkpoints]
        covered: list[float] = []
        for committed, index, _ in load.events:
            first = bisect.bisect_right(sizes, index)  # the first checkpoint whose size exceeds the index
            if first == len(sizes):
                raise RuntimeError(f"no checkpoint covered index {index}")
            covered.append(times[first] - committed)
        waits = [waited for _, _, waited in load.events]
        with db.engine.connect() as connection:
            query = text("SELECT count(*), min(ledger_index), max(ledger_index) FROM events")
            indices = connection.execute(query).one()
        assert indices[1] == 0 and indices[2] + 1 == indices[0], f"indices not dense: {indices}"
        context.close()
    ratios = [o / a for o, a in zip(rates["ours"], rates["anchor"], strict=True)]
    integrated_ratios = [i / a for i, a in zip(rates["integrated"], rates["anchor"], strict=True)]
    return {
        "pg_ledger_appends_per_s": statistics.median(rates["ours"]),
        "pg_plain_inserts_per_s": statistics.median(rates["anchor"]),
        "ratio_appends_vs_plain_inserts": statistics.median(ratios),
        "ratio_appends_lowest_quartile": _quantile(ratios, 0.25),
        "pg_ledger_integrated_per_s": statistics.median(rates["integrated"]),
        "ratio_integrated_vs_plain_inserts": statistics.median(integrated_ratios),
        "ratio_integrated_lowest_quartile": _quantile(integrated_ratios, 0.25),
        "wait_for_index_p50_ms": 1e3 * _quantile(waits, 0.5),
        "wait_for_index_p99_ms": 1e3 * _quantile(waits, 0.99),
        "commit_to_checkpoint_p50_ms": 1e3 * _quantile(covered, 0.5),
        "commit_to_checkpoint_p99_ms": 1e3 * _quantile(covered, 0.99),
        "commit_to_checkpoint_max_ms": 1e3 * max(covered),
        "events_under_load": float(len(load.events)),
    }


# -- 4. inclusion proofs at 10^4 and 10^6 entries -----------------------------------------------------------


def _leaf(i: int) -> bytes:
    return b"bench entry %d" % i


class _CopyStore:
    """A NodeStore for filling a tree fast: every node the append code computes goes to PostgreSQL by
    COPY; the only reads an append in chunks of CHUNK leaves makes (its frontier: complete subtrees of
    level >= 16) are answered from the nodes of those levels it keeps."""

    def __init__(self, copy: Any) -> None:
        self.copy = copy
        self.leaves = 0
        self.kept: dict[tuple[int, int], bytes] = {}

    def size(self) -> int:
        return self.leaves

    def read(self, ids: Any) -> list[bytes]:
        return [self.kept[node] for node in ids]

    def write(self, nodes: Any) -> None:
        for level, index, value in nodes:
            self.copy.write_row((level, index, value))
            if level >= CHUNK.bit_length() - 1:
                self.kept[(level, index)] = value
            if level == 0:
                self.leaves += 1


def _fill(url: str, size: int) -> None:
    """The tree of `size` entries as real appends would store it, checked against the RFC reference."""
    from sqlalchemy import create_engine, text

    from ledger.merkle import SM3, MerkleTree, verify_inclusion
    from ledger.sql_node_store import SqlNodeStore
    from store.models import LedgerNode
    from tests.ledger.rfc9162 import Reference, sm3

    engine = create_engine(url)
    try:
        with engine.begin() as connection:  # the model's table; its primary key is built after the load
            LedgerNode.__table__.create(connection)  # type: ignore[attr-defined]
            connection.execute(text("ALTER TABLE ledger_nodes DROP CONSTRAINT ledger_nodes_pkey"))
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy('COPY ledger_nodes (level, "index", hash) FROM STDIN') as copy:
                tree = MerkleTree(_CopyStore(copy), SM3)
                for start in range(0, size, CHUNK):
                    tree.append_hashes([SM3.leaf(_leaf(i)) for i in range(start, min(size, start + CHUNK))])
            cursor.execute('ALTER TABLE ledger_nodes ADD CONSTRAINT ledger_nodes_pkey PRIMARY KEY (level, "index")')
            raw.commit()
        finally:
            raw.close()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) ledger_nodes"))  # not autovacuum in the middle of timing
        reference = Reference([_leaf(i) for i in range(size)], sm3)
        with engine.connect() as connection:
            stored = MerkleTree(SqlNodeStore(connection), SM3)
            assert stored.size() == size
            rng = random.Random(size)
            if size <= SMALL or LONG:  # the whole root from the reference: each node hashed once, no memo
                reference._mth = _LastOnly()
                root = reference.mth(0, size)
                assert stored.root() == root, "the filled tree's root is not the reference's"
                for index in (0, size - 1, *rng.sample(range(size), 3)):
                    path = stored.inclusion_proof(index, size)
                    assert verify_inclusion(sm3(b"\x00" + _leaf(index)), index, size, path, root), index
            else:  # a sample: leaves, and whole subtrees of 2^16 leaves, hashed by the reference
                for index in rng.sample(range(size), 64):
                    assert SqlNodeStore(connection).read([(0, index)]) == [reference.leaf_hash(index)]
                level = CHUNK.bit_length() - 1
                for chunk in rng.sample(range(size // CHUNK), 2):
                    reference._mth = _LastOnly()
                    expected = reference.mth(chunk * CHUNK, (chunk + 1) * CHUNK)
                    assert SqlNodeStore(connection).read([(level, chunk)]) == [expected], chunk
            if size <= SMALL:  # and the reference's own PATH, where its memo stays small
                full = Reference([_leaf(i) for i in range(size)], sm3)
                for index in rng.sample(range(size), 5):
                    assert stored.inclusion_proof(index, size) == full.path(index, 0, size), index
    finally:
        engine.dispose()


class _LastOnly(dict[tuple[int, int], bytes]):
    """A memo that remembers only the value just stored (what Reference.mth reads back at once)."""

    def __setitem__(self, key: tuple[int, int], value: bytes) -> None:
        self.clear()
        super().__setitem__(key, value)


def proofs(seconds: float, pairs: int) -> dict[str, float]:
    from ledger.service import Ledger
    from store.db import Database

    def no_signer() -> Any:
        raise AssertionError("proofs are not signed")

    with _schema("proofs_small") as small_url, _schema("proofs_large") as large_url:
        _fill(small_url, SMALL)
        _fill(large_url, LARGE)
        databases = {SMALL: Database(small_url), LARGE: Database(large_url)}
        ledgers = {size: Ledger(db, "bench.invalid/ledger", no_signer) for size, db in databases.items()}
        rng = random.Random(7)

        def rate(size: int, length: float) -> float:
            ledger = ledgers[size]
            n, start = 0, time.perf_counter()
            while time.perf_counter() - start < length:
                ledger.inclusion_proof(rng.randrange(size), size)
                n += 1
            return n / (time.perf_counter() - start)

        rate(SMALL, 0.3)
        rate(LARGE, 0.3)
        rates: dict[int, list[float]] = {SMALL: [], LARGE: []}
        for pair in range(pairs):
            for size in (SMALL, LARGE) if pair % 2 == 0 else (LARGE, SMALL):
                rates[size].append(rate(size, seconds))
        for db in databases.values():
            db.dispose()
    ratios = [large / small for small, large in zip(rates[SMALL], rates[LARGE], strict=True)]
    small_rate, large_rate = statistics.median(rates[SMALL]), statistics.median(rates[LARGE])
    return {
        "proofs_per_s_at_1e4": small_rate,
        "proofs_per_s_at_1e6": large_rate,
        "proof_us_at_1e4": 1e6 / small_rate,
        "proof_us_at_1e6": 1e6 / large_rate,
        "ratio_proof_rate_1e6_vs_1e4": statistics.median(ratios),  # = t(10^4) / t(10^6)
    }


def run() -> dict[str, float]:
    scale = 2 if LONG else 1
    result: dict[str, float] = {}
    if wrk_available():
        result.update(issuance(seconds=1.0 * scale, pairs=12 * scale))
    else:
        result["issuance_http_skipped"] = 1.0
    try:
        postgres_version()
    except Exception as error:  # no PostgreSQL here: its rows show as missing in RESULTS.md
        print(f"   PostgreSQL at {PG_URL} unavailable ({type(error).__name__}): appends and proofs skipped")
        result["postgres_skipped"] = 1.0
        return result
    result.update(appends(seconds=1.5 * scale, pairs=6 * scale))
    result.update(proofs(seconds=0.5 * scale, pairs=10 * scale))
    return result


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:48} {value:12.3f}")
