"""Where the Merkle tree keeps its node hashes: the interface, and an in-memory store.

A node (level, index) is the hash of the perfect subtree over leaves [index·2^level, (index+1)·2^level)
— level 0 holds the leaf hashes — as in Trillian and C2SP tlog-tiles. Only complete subtrees are
stored, each written once when its last leaf arrives, so a stored node never changes: any tree head
and any proof of any size up to the log's is a combination of O(log n) of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ledger.errors import NodeMissing

NodeId = tuple[int, int]  # (level, index)
Node = tuple[int, int, bytes]  # (level, index, hash)


class NodeStore(Protocol):
    """What the tree asks of storage. `read` is one round trip however many ids it gets."""

    def size(self) -> int:
        """The number of leaves stored (level-0 nodes)."""
        ...

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        """The hashes of `ids`, in their order; raises NodeMissing if any is absent."""
        ...

    def write(self, nodes: Sequence[Node]) -> None:
        """Store new nodes; a node already present is an error, never overwritten."""
        ...


class MemoryNodeStore:
    """A dict of nodes: for tests, and for auditors rebuilding a tree from exported entries."""

    def __init__(self) -> None:
        self._nodes: dict[NodeId, bytes] = {}
        self._leaves = 0

    def size(self) -> int:
        return self._leaves

    def read(self, ids: Sequence[NodeId]) -> list[bytes]:
        try:
            return [self._nodes[node] for node in ids]
        except KeyError as missing:
            raise NodeMissing(f"node {missing.args[0]} is not in the store") from None

    def write(self, nodes: Sequence[Node]) -> None:
        fresh: dict[NodeId, bytes] = {}
        for level, index, value in nodes:
            if (level, index) in self._nodes or (level, index) in fresh:
                raise ValueError(f"node {(level, index)} is already stored: nodes are written once")
            fresh[(level, index)] = value
        self._nodes.update(fresh)
        self._leaves += sum(1 for level, _, _ in nodes if level == 0)
