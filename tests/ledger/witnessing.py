"""A real log for witness tests: an RFC 9162 tree in memory whose checkpoints a custody key signs, and
forks of it (a leaf rewritten, every hash recomputed, signed by the same real key)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from keys.custody import SigningHandle
from ledger.checkpoint import sign_checkpoint
from ledger.merkle import SM3, MerkleTree, TreeHasher
from ledger.node_store import MemoryNodeStore


class SignedLog:
    def __init__(self, handle: SigningHandle, origin: str, leaves: int = 0, hasher: TreeHasher = SM3) -> None:
        self.handle = handle
        self.origin = origin
        self.hasher = hasher
        self.leaves: list[bytes] = []
        self.tree = MerkleTree(MemoryNodeStore(), hasher)
        self.grow(leaves)

    @property
    def size(self) -> int:
        return len(self.leaves)

    def grow(self, count: int) -> SignedLog:
        fresh = [b'{"type":"test","n":%d,"origin":"%s"}' % (self.size + n, self.origin.encode()) for n in range(count)]
        self.leaves += fresh
        self.tree.append_leaves(fresh)
        return self

    def fork(self, index: int) -> SignedLog:
        """The same log with leaf `index` rewritten: what a log operator who rewrote history would sign."""
        forked = SignedLog(self.handle, self.origin, hasher=self.hasher)
        leaves = list(self.leaves)
        leaves[index] = leaves[index].replace(b'"type":"test"', b'"type":"rewritten"')
        forked.leaves = leaves
        forked.tree.append_leaves(leaves)
        return forked

    def checkpoint(
        self, size: int | None = None, *, timestamp: datetime | None = None, origin: str | None = None
    ) -> dict[str, Any]:
        size = self.size if size is None else size
        signed = sign_checkpoint(
            [self.handle],
            origin=origin or self.origin,
            size=size,
            root_hash=self.tree.root(size),
            timestamp=timestamp or datetime.now(UTC),
            hash_name=self.hasher.name,
        )
        document: dict[str, Any] = json.loads(json.dumps(signed.to_json()))
        return document

    def submission(self, old_size: int, size: int | None = None, **checkpoint: Any) -> dict[str, Any]:
        size = self.size if size is None else size
        proof = self.tree.consistency_proof(old_size, size) if old_size > 0 else []
        return {
            "old_size": old_size,
            "proof": [value.hex() for value in proof],
            "checkpoint": self.checkpoint(size, **checkpoint),
        }
