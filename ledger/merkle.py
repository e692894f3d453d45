"""The ledger's Merkle tree: RFC 9162 §2.1 hashing, tree heads and proofs from stored subtree hashes.

leaf = H(0x00 ‖ leaf_input), node = H(0x01 ‖ left ‖ right), H named per log (SM3 by default, or
SHA-256). Proofs are exactly RFC 9162's PATH (§2.1.3.1) and PROOF (§2.1.4.1), but every hash in them
is assembled from the perfect subtrees a `NodeStore` keeps (see ledger/node_store.py): a proof reads
O(log n) nodes in one `read`, never the log's leaves. The verifiers are RFC 9162 §2.1.3.2 / §2.1.4.2,
for clients and auditors who hold only a tree head.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gm.sm3 import sm3
from ledger.errors import LedgerError, LedgerRangeError
from ledger.node_store import Node, NodeId, NodeStore


@dataclass(frozen=True)
class TreeHasher:
    """One named hash function and the RFC 9162 domain separation built on it."""

    name: str
    digest: Callable[[bytes], bytes]
    size: int = 32

    def leaf(self, leaf_input: bytes) -> bytes:
        return self.digest(b"\x00" + leaf_input)

    def node(self, left: bytes, right: bytes) -> bytes:
        return self.digest(b"\x01" + left + right)

    def empty_root(self) -> bytes:
        """MTH({}) = HASH(), the root of the empty tree."""
        return self.digest(b"")


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


SM3 = TreeHasher("sm3", sm3)
SHA256 = TreeHasher("sha256", _sha256)
HASHERS = {hasher.name: hasher for hasher in (SM3, SHA256)}


def tree_hasher(name: str = "sm3") -> TreeHasher:
    try:
        return HASHERS[name]
    except KeyError:
        raise LedgerError(f"unknown ledger hash {name!r} (known: {', '.join(HASHERS)})", code="hash_unknown") from None


def _split(size: int) -> int:
    """RFC 9162's k: the largest power of two smaller than `size` (size ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_nodes(start: int, end: int) -> list[NodeId]:
    """The stored nodes whose right fold is MTH(D[start:end]), for the subtrees RFC 9162's recursion
    names (start a multiple of a power of two ≥ end - start): the binary decomposition of the size,
    largest first."""
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees [start, end) whose MTHs form PATH(index, D[0:size]), in the order of the proof."""
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(first: int, second: int) -> list[tuple[int, int]]:
    """The subtrees whose MTHs form PROOF(first, D[0:second]) = SUBPROOF(first, D[0:second], true)."""
    ranges: list[tuple[int, int]] = []
    start, end, whole = 0, second, True
    while True:
        if first - start == end - start:  # SUBPROOF(m, D[m], b): {} if b, else {MTH(D[m])}
            if not whole:
                ranges.append((start, end))
            break
        k = _split(end - start)
        if first - start <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            ranges.append((start + k, end))
            end = start + k
        else:  # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            ranges.append((start, start + k))
            start += k
            whole = False
    ranges.reverse()
    return ranges


class MerkleTree:
    """An append-only RFC 9162 tree over a node store. Appends must be serialised by the caller (the
    store refuses a node written twice, so a lost race fails loudly instead of forking the tree)."""

    def __init__(self, store: NodeStore, hasher: TreeHasher = SM3) -> None:
        self.store = store
        self.hasher = hasher

    def size(self) -> int:
        return self.store.size()

    def append_leaves(self, leaf_inputs: Sequence[bytes]) -> int:
        """Append entries by their exact leaf bytes; returns the new tree size."""
        return self.append_hashes([self.hasher.leaf(leaf) for leaf in leaf_inputs])

    def append_hashes(self, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaf hashes: writes each leaf and every parent it completes, in one `write`, after
        one `read` of the current tree's frontier (its perfect subtrees). Returns the new size."""
        for value in leaf_hashes:
            if len(value) != self.hasher.size:
                raise LedgerError(f"a leaf hash has {len(value)} bytes, not {self.hasher.size}", code="hash_length")
        size = self.store.size()
        if not leaf_hashes:
            return size
        frontier_ids = subtree_nodes(0, size)
        stack: list[Node] = [
            (level, index, value)
            for (level, index), value in zip(frontier_ids, self.store.read(frontier_ids), strict=True)
        ]
        fresh: list[Node] = []
        for leaf_index, value in enumerate(leaf_hashes, start=size):
            node: Node = (0, leaf_index, value)
            fresh.append(node)
            while stack and stack[-1][0] == node[0]:
                left_level, left_index, left = stack.pop()
                assert left_index + 1 == node[1] and node[1] % 2 == 1
                node = (left_level + 1, left_index >> 1, self.hasher.node(left, node[2]))
                fresh.append(node)
            stack.append(node)
        self.store.write(fresh)
        return size + len(leaf_hashes)

    def root(self, size: int | None = None) -> bytes:
        """MTH(D[0:size]) (the current size when None); the empty tree's root is HASH()."""
        if size is None:
            size = self.size()
        else:
            self._check_size(size)
        if size == 0:
            return self.hasher.empty_root()
        return self._fold(self.store.read(subtree_nodes(0, size)))

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf-side first."""
        if size <= 0 or index < 0 or index >= size:
            raise LedgerRangeError(f"no inclusion proof for index {index} in a tree of size {size}")
        self._check_size(size)
        return self._hashes(inclusion_ranges(index, size))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """PROOF(first, D[0:second]) (RFC 9162 §2.1.4.1), 0 < first ≤ second; empty when they are equal."""
        if first > second:
            raise LedgerRangeError(f"first size {first} is larger than second size {second}", code="proof_inverted")
        if first <= 0:
            raise LedgerRangeError(f"no consistency proof from size {first}: sizes start at 1")
        self._check_size(second)
        return self._hashes(consistency_ranges(first, second))

    def _check_size(self, size: int) -> None:
        if size < 0:
            raise LedgerRangeError(f"tree size {size} is negative", code="size_invalid")
        current = self.size()
        if size > current:
            raise LedgerRangeError(f"tree size {size} is beyond the log's {current}", code="size_beyond_tree")

    def _hashes(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """MTH of each range, from one read of all the stored nodes they decompose into."""
        parts = [subtree_nodes(start, end) for start, end in ranges]
        wanted = list(dict.fromkeys(node for part in parts for node in part))
        found = dict(zip(wanted, self.store.read(wanted), strict=True))
        return [self._fold([found[node] for node in part]) for part in parts]

    def _fold(self, hashes: list[bytes]) -> bytes:
        """Right fold of a decomposition, largest subtree first: RFC 9162 MTH of the whole range."""
        value = hashes[-1]
        for left in reversed(hashes[:-1]):
            value = self.hasher.node(left, value)
        return value


def _is_hash(value: object, hasher: TreeHasher) -> bool:
    return isinstance(value, bytes) and len(value) == hasher.size


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, path: Sequence[bytes], root: bytes, *, hasher: TreeHasher = SM3
) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove the leaf with `leaf_hash` at `index` in the tree of
    `size` whose root is `root`? False for any malformed input."""
    if not (_is_hash(leaf_hash, hasher) and _is_hash(root, hasher) and all(_is_hash(p, hasher) for p in path)):
        return False
    if index < 0 or index >= size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hasher.node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hasher.node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int,
    second: int,
    first_root: bytes,
    second_root: bytes,
    path: Sequence[bytes],
    *,
    hasher: TreeHasher = SM3,
) -> bool:
    """RFC 9162 §2.1.4.2: does `path` prove the tree of size `first` with root `first_root` a prefix of
    the tree of size `second` with root `second_root`? Beyond the RFC's 0 < first < second, as C2SP
    tlog-witness needs: first == second holds with an empty path and equal roots, and first == 0
    (nothing seen yet) with an empty path. False for any malformed input."""
    if not (_is_hash(first_root, hasher) and _is_hash(second_root, hasher) and all(_is_hash(p, hasher) for p in path)):
        return False
    if first < 0 or first > second:
        return False
    if first == 0:
        return not path
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a node of the second
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = hasher.node(c, fr)
            sr = hasher.node(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = hasher.node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
