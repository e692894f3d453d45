"""The Merkle tree's nodes in the database (`ledger_nodes`, primary key (level, index)).

Works inside the caller's transaction (a Session or a Connection), so the nodes an append writes
commit or roll back with whatever else that transaction does. The primary key refuses a node written
twice: two appenders racing on one tree fail instead of forking it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, insert, or_, select
from sqlalchemy.orm import Session

from ledger.errors import NodeMissing
from ledger.node_store import Node, NodeId
from store.models import LedgerNode

_LEVEL = LedgerNode.__table__.c["level"]
_INDEX = LedgerNode.__table__.c["index"]
_HASH = LedgerNode.__table__.c["hash"]

# Built once (compiled-statement cache); "index" is quoted by SQLAlchemy wherever it is reserved.
# The highest leaf index (the tree's size less one), one indexed lookup: the PK's leading column is the level.
HIGHEST_LEAF = select(func.max(_INDEX)).where(_LEVEL == 0)
_WRITE = insert(LedgerNode.__table__)  # type: ignore[arg-type]
# Ids one read asks for in one statement; a proof needs ~2·log2(size) (64 ≈ a log of 2^32 entries), so
# more is rare, and a larger read is split only to keep SQLite's expression tree shallow.
READ_CHUNK = 256


@functools.lru_cache(maxsize=READ_CHUNK)
def _read_statement(count: int) -> Select[Any]:
    """`count` primary-key probes OR-ed together, built once per count. Not `(level, index) IN (…)`:
    SQLite plans a row-value IN list as a scan of the whole table (a proof or an append then cost
    O(n)), while it runs each OR-ed equality pair as a primary-key lookup; PostgreSQL plans both
    forms as the same BitmapOr of index probes."""
    level, index = _LEVEL, _INDEX
    return select(level, index, _HASH).where(
        or_(*(and_(level == bindparam(f"l{k}"), index == bindparam(f"i{k}")) for k in range(count)))
    )


class SqlNodeStore:
    def __init__(self, bind: Session | Connection) -> None:
        self.bind = bind

    def size(self) -> int:
        """One indexed lookup: the highest leaf index (the PK's leading column is the level)."""
        highest = self.bind.execute(HIGHEST_LEAF).scalar()
        return 0 if highest is None else int(highest) + 1

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        """All of `ids` in one query (one per READ_CHUNK ids), each id an index lookup."""
        if not ids:
            return []
        found: dict[NodeId, bytes] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), READ_CHUNK):
            chunk = unique[start : start + READ_CHUNK]
            params: dict[str, int] = {}
            for k, (level, index) in enumerate(chunk):
                params[f"l{k}"] = level
                params[f"i{k}"] = index
            for row in self.bind.execute(_read_statement(len(chunk)), params):
                found[(row[0], row[1])] = bytes(row[2])
        try:
            return [found[node] for node in ids]
        except KeyError as missing:
            raise NodeMissing(f"ledger node {missing.args[0]} is not in the database") from None

    def write(self, nodes: Sequence[Node]) -> None:
        """All of `nodes` in one executemany."""
        if nodes:
            rows = [{"level": level, "index": index, "hash": value} for level, index, value in nodes]
            self.bind.execute(_WRITE, rows)
