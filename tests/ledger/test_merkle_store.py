"""The Merkle tree on the SQL node store (SQLite, and PostgreSQL when configured): the same roots and
proofs as the in-memory tree (itself checked against RFC 9162 in test_merkle_rfc9162.py), from one
query of O(log n) nodes per proof, for random sizes up to a few thousand appended in random batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, event, text
from sqlalchemy.exc import IntegrityError

from ledger.errors import NodeMissing
from ledger.merkle import SM3, MerkleTree, verify_consistency, verify_inclusion
from ledger.node_store import MemoryNodeStore, Node, NodeId, NodeStore
from ledger.sql_node_store import SqlNodeStore
from store.db import Database
from tests.fixtures import examples


class CountingStore:
    """Counts what the tree asks of storage: queries (`read` calls) and node ids read."""

    def __init__(self, inner: NodeStore) -> None:
        self.inner = inner
        self.reads = 0
        self.nodes_read = 0

    def size(self) -> int:
        return self.inner.size()

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        self.reads += 1
        self.nodes_read += len(ids)
        return self.inner.read(ids)

    def write(self, nodes: Sequence[Node]) -> None:
        self.inner.write(nodes)

    def reset(self) -> None:
        self.reads = self.nodes_read = 0


def log_bound(size: int) -> int:
    """Nodes a proof in a tree of `size` may read: 2·⌈log2 size⌉ (measured worst case is below it)."""
    return 2 * max(1, (size - 1).bit_length())


@contextmanager
def rolled_back(database: Database) -> Iterator[Connection]:
    """A transaction that never commits: every example starts from an empty tree."""
    with database.engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def leaf(i: int) -> bytes:
    return b"entry %d" % i


@settings(max_examples=examples(12), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=st.lists(st.integers(1, 700), min_size=1, max_size=8), data=st.data())
def test_sql_tree_matches_memory_tree_in_log_reads(database: Database, batches: list[int], data: st.DataObject) -> None:
    memory = MerkleTree(MemoryNodeStore(), SM3)
    with rolled_back(database) as connection:
        counting = CountingStore(SqlNodeStore(connection))
        tree = MerkleTree(counting, SM3)
        size = 0
        for batch in batches:
            leaves = [leaf(i) for i in range(size, size + batch)]
            counting.reset()
            size = tree.append_leaves(leaves)
            assert counting.reads == 1 and counting.nodes_read == bin(size - batch).count("1")  # the old frontier
            memory.append_leaves(leaves)
            assert tree.size() == memory.size() == size
            assert tree.root() == memory.root()
        for _ in range(8):
            n = data.draw(st.integers(1, size), label="size")
            index = data.draw(st.integers(0, n - 1), label="index")
            first = data.draw(st.integers(1, n), label="first")
            counting.reset()
            root = tree.root(n)
            assert counting.reads == 1 and counting.nodes_read <= n.bit_length()
            assert root == memory.root(n)

            counting.reset()
            path = tree.inclusion_proof(index, n)
            assert counting.reads == 1 and counting.nodes_read <= log_bound(n), (index, n, counting.nodes_read)
            assert path == memory.inclusion_proof(index, n)
            assert verify_inclusion(SM3.leaf(leaf(index)), index, n, path, root)

            counting.reset()
            proof = tree.consistency_proof(first, n)
            assert counting.reads <= 1 and counting.nodes_read <= log_bound(n), (first, n, counting.nodes_read)
            assert proof == memory.consistency_proof(first, n)
            assert verify_consistency(first, n, memory.root(first), root, proof)


def test_proof_reads_stay_logarithmic_at_every_size() -> None:
    """Not a sample: every index and first size of every tree up to 260 (what a proof reads does not
    depend on the store), plus sampled proofs of the worst sizes near 4096 (2^k - 1)."""
    counting = CountingStore(MemoryNodeStore())
    tree = MerkleTree(counting, SM3)
    tree.append_leaves([leaf(i) for i in range(4097)])
    for n in [*range(1, 261), 4095, 4096, 4097]:
        for m in range(0, n, 1 if n <= 260 else 37):
            counting.reset()
            tree.inclusion_proof(m, n)
            assert counting.reads == 1 and counting.nodes_read <= log_bound(n), (m, n)
            counting.reset()
            tree.consistency_proof(m + 1, n)
            assert counting.reads == 1 and counting.nodes_read <= log_bound(n), (m + 1, n)


def test_nodes_persist_across_transactions(database: Database) -> None:
    """Committed nodes are the tree: a later session continues it to the same root as one long append."""
    memory = MerkleTree(MemoryNodeStore(), SM3)
    memory.append_leaves([leaf(i) for i in range(37)])
    try:
        for start, end in ((0, 10), (10, 11), (11, 37)):
            with database.session() as session:
                MerkleTree(SqlNodeStore(session), SM3).append_leaves([leaf(i) for i in range(start, end)])
        with database.session() as session:
            tree = MerkleTree(SqlNodeStore(session), SM3)
            assert tree.size() == 37
            assert tree.root() == memory.root()
            assert tree.inclusion_proof(36, 37) == memory.inclusion_proof(36, 37)
    finally:
        with database.session() as session:
            session.execute(text("DELETE FROM ledger_nodes"))


def test_a_node_is_written_once(database: Database) -> None:
    """Two appenders racing from the same size would write the same (level, index): the primary key
    refuses the second, so the tree cannot fork."""
    with rolled_back(database) as connection:
        tree = MerkleTree(SqlNodeStore(connection), SM3)
        tree.append_leaves([leaf(0), leaf(1)])
        with pytest.raises(IntegrityError), connection.begin_nested():
            SqlNodeStore(connection).write([(0, 1, SM3.leaf(b"another entry"))])
        assert tree.root() == SM3.node(SM3.leaf(leaf(0)), SM3.leaf(leaf(1)))
    memory = MemoryNodeStore()
    memory.write([(0, 0, SM3.leaf(leaf(0)))])
    with pytest.raises(ValueError, match="written once"):
        memory.write([(0, 0, SM3.leaf(leaf(0)))])


def test_a_damaged_store_is_not_a_bad_request(database: Database) -> None:
    """A missing node is NodeMissing (a server fault), never a range error the API would answer 4xx."""
    with rolled_back(database) as connection:
        tree = MerkleTree(SqlNodeStore(connection), SM3)
        tree.append_leaves([leaf(i) for i in range(8)])
        connection.execute(text("DELETE FROM ledger_nodes WHERE level = 3"))
        with pytest.raises(NodeMissing) as caught:
            tree.root(8)
        assert not isinstance(caught.value, ValueError)
        assert caught.value.code == "ledger_node_missing"
        assert tree.inclusion_proof(0, 7)  # trees that do not need the lost node still prove


def test_a_read_is_primary_key_lookups_not_a_scan(database: Database) -> None:
    """The statement a read runs, as the database plans it: every id a primary-key probe. SQLite plans
    `(level, index) IN (VALUES …)` as a scan of the whole table, which made each append and each proof
    O(n) there. PostgreSQL's plan depends on the table's size (a tiny table is scanned whatever the
    query), so the plan is checked on SQLite."""
    if not database.is_sqlite:
        pytest.skip("PostgreSQL plans a tiny table as a scan whatever the query")
    seen: list[tuple[str, Any]] = []

    def capture(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if "FROM ledger_nodes" in statement and "max(" not in statement:
            seen.append((statement, parameters))

    with rolled_back(database) as connection:
        tree = MerkleTree(SqlNodeStore(connection), SM3)
        tree.append_leaves([leaf(i) for i in range(300)])
        event.listen(connection, "before_cursor_execute", capture)
        try:
            tree.inclusion_proof(123, 300)
        finally:
            event.remove(connection, "before_cursor_execute", capture)
        assert len(seen) == 1
        statement, parameters = seen[0]
        plan = [row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert not any(step.startswith("SCAN ledger_nodes") for step in plan), plan
    assert any(step.startswith("SEARCH ledger_nodes USING") for step in plan), plan
