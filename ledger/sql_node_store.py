"""The Merkle tree's nodes in the database (`ledger_nodes`, primary key (level, index)).

Works inside the caller's transaction (a Session or a Connection), so the nodes an append writes
commit or roll back with whatever else that transaction does. The primary key refuses a node written
twice: two appenders racing on one tree fail instead of forking it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, func, insert, select, tuple_
from sqlalchemy.orm import Session

from ledger.errors import NodeMissing
from ledger.node_store import Node, NodeId
from store.models import LedgerNode

_LEVEL = LedgerNode.__table__.c["level"]
_INDEX = LedgerNode.__table__.c["index"]
_HASH = LedgerNode.__table__.c["hash"]

# Built once (compiled-statement cache); "index" is quoted by SQLAlchemy wherever it is reserved.
_SIZE = select(func.max(_INDEX)).where(_LEVEL == 0)
_READ = select(_LEVEL, _INDEX, _HASH).where(tuple_(_LEVEL, _INDEX).in_(bindparam("ids", expanding=True)))
_WRITE = insert(LedgerNode.__table__)  # type: ignore[arg-type]


class SqlNodeStore:
    def __init__(self, bind: Session | Connection) -> None:
        self.bind = bind

    def size(self) -> int:
        """One indexed lookup: the highest leaf index (the PK's leading column is the level)."""
        highest = self.bind.execute(_SIZE).scalar()
        return 0 if highest is None else int(highest) + 1

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        """All of `ids` in one query."""
        if not ids:
            return []
        found = {(row[0], row[1]): bytes(row[2]) for row in self.bind.execute(_READ, {"ids": list(ids)})}
        try:
            return [found[node] for node in ids]
        except KeyError as missing:
            raise NodeMissing(f"ledger node {missing.args[0]} is not in the database") from None

    def write(self, nodes: Sequence[Node]) -> None:
        """All of `nodes` in one executemany."""
        if nodes:
            rows = [{"level": level, "index": index, "hash": value} for level, index, value in nodes]
            self.bind.execute(_WRITE, rows)
