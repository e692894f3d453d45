"""ledger/merkle.py against RFC 9162 written out independently (tests/ledger/rfc9162.py), exhaustively
for every tree size 1..70, every index and every size pair, with SM3 and SHA-256; and both anchored
to the published RFC 6962 test vectors (Certificate Transparency's, also in Trillian)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ledger.merkle import SHA256, SM3, MerkleTree, TreeHasher, verify_consistency, verify_inclusion
from ledger.node_store import MemoryNodeStore
from tests.fixtures import flip
from tests.ledger import rfc9162

MAX_SIZE = 70

CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                        "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
CT_CONSISTENCY = {
    (1, 1): [],
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip

HASHES: list[tuple[TreeHasher, Callable[[bytes], bytes]]] = [(SM3, rfc9162.sm3), (SHA256, rfc9162.sha256)]


def _leaves(count: int) -> list[bytes]:
    """Leaf inputs of varied lengths, the empty one included."""
    return [bytes(range(i % 7)) + i.to_bytes(2, "big") * (i % 3) for i in range(count)]


def _tree(leaves: list[bytes], hasher: TreeHasher, batch: int = 1) -> MerkleTree:
    tree = MerkleTree(MemoryNodeStore(), hasher)
    for start in range(0, len(leaves), batch):
        tree.append_leaves(leaves[start : start + batch])
    return tree


def _hex(hashes: list[bytes]) -> list[str]:
    return [h.hex() for h in hashes]


def test_reference_and_ledger_match_the_rfc6962_vectors() -> None:
    reference = rfc9162.Reference(CT_LEAVES, rfc9162.sha256)
    tree = _tree(CT_LEAVES, SHA256)
    for size, root in enumerate(CT_ROOTS):
        assert reference.mth(0, size).hex() == root
        assert tree.root(size).hex() == root
    for (index, size), path in CT_INCLUSION.items():
        assert _hex(reference.path(index, 0, size)) == path
        assert _hex(tree.inclusion_proof(index, size)) == path
    for (first, second), path in CT_CONSISTENCY.items():
        assert _hex(reference.proof(first, second)) == path
        assert _hex(tree.consistency_proof(first, second)) == path


def test_sm3_is_not_sha256() -> None:
    """The hash is really per log: the same leaves make other roots under SM3."""
    assert _tree(CT_LEAVES, SM3).root().hex() != CT_ROOTS[-1]
    assert SM3.empty_root() == rfc9162.sm3(b"")


@pytest.mark.parametrize(("hasher", "digest"), HASHES, ids=["sm3", "sha256"])
@pytest.mark.parametrize("batch", [1, 5, MAX_SIZE])
def test_roots_and_proofs_equal_the_reference(hasher: TreeHasher, digest: rfc9162.Digest, batch: int) -> None:
    leaves = _leaves(MAX_SIZE)
    reference = rfc9162.Reference(leaves, digest)
    tree = _tree(leaves, hasher, batch)
    assert tree.size() == MAX_SIZE
    assert tree.root(0) == reference.mth(0, 0)
    for size in range(1, MAX_SIZE + 1):
        assert tree.root(size) == reference.mth(0, size), size
        for index in range(size):
            assert tree.inclusion_proof(index, size) == reference.path(index, 0, size), (index, size)
        for first in range(1, size + 1):
            assert tree.consistency_proof(first, size) == reference.proof(first, size), (first, size)


def _inclusion_tampers(
    leaf: bytes, index: int, size: int, path: list[bytes], root: bytes, root_of: Callable[[int], bytes]
) -> list[tuple[str, tuple[bytes, int, int, list[bytes], bytes]]]:
    """Each a wrong claim. A size travels with its root (both come from one signed checkpoint): an
    unauthenticated (size, root) pair can be matched by a proof for a smaller tree."""
    other = bytes(32)
    cases = [(f"hash {n} flipped", (leaf, index, size, [*path[:n], flip(h, 0), *path[n + 1 :]], root))
             for n, h in enumerate(path)]  # fmt: skip
    cases += [
        ("leaf flipped", (flip(leaf, -1), index, size, path, root)),
        ("root flipped", (leaf, index, size, path, flip(root, 3))),
        ("index + 1", (leaf, index + 1, size, path, root)),
        ("index - 1", (leaf, index - 1, size, path, root)),
        ("size + 1", (leaf, index, size + 1, path, root_of(size + 1))),
        ("size - 1", (leaf, index, size - 1, path, root_of(size - 1))),
        ("size doubled", (leaf, index, 2 * size, path, root_of(2 * size))),
        ("extended at the end", (leaf, index, size, [*path, other], root)),
        ("extended at the start", (leaf, index, size, [other, *path], root)),
        ("a short leaf hash", (leaf[:31], index, size, path, root)),
    ]  # fmt: skip
    if path:
        cases += [
            ("short path hashes", (leaf, index, size, [h[:31] for h in path], root)),
            ("truncated at the end", (leaf, index, size, path[:-1], root)),
            ("truncated at the start", (leaf, index, size, path[1:], root)),
        ]
    if len(path) > 1:
        cases.append(("two hashes swapped", (leaf, index, size, [path[1], path[0], *path[2:]], root)))
    return cases


@pytest.mark.parametrize(("hasher", "digest"), HASHES, ids=["sm3", "sha256"])
def test_verify_inclusion_accepts_reference_proofs_and_rejects_tampered(
    hasher: TreeHasher, digest: rfc9162.Digest
) -> None:
    reference = rfc9162.Reference(_leaves(2 * MAX_SIZE), digest)

    def root_of(size: int) -> bytes:
        return reference.mth(0, size)

    for size in range(1, MAX_SIZE + 1):
        root = reference.mth(0, size)
        for index in range(size):
            leaf, path = reference.leaf_hash(index), reference.path(index, 0, size)
            assert verify_inclusion(leaf, index, size, path, root, hasher=hasher), (index, size)
            for name, args in _inclusion_tampers(leaf, index, size, path, root, root_of):
                assert not verify_inclusion(*args, hasher=hasher), (name, index, size)
    other = SHA256 if hasher is SM3 else SM3
    leaf, path, root = reference.leaf_hash(3), reference.path(3, 0, 9), reference.mth(0, 9)
    assert not verify_inclusion(leaf, 3, 9, path, root, hasher=other)


def _consistency_tampers(
    first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes], root_of: Callable[[int], bytes]
) -> list[tuple[str, tuple[int, int, bytes, bytes, list[bytes]]]]:
    """Each a wrong claim; sizes travel with their roots, as in `_inclusion_tampers`."""
    other = bytes(32)
    cases = [(f"hash {n} flipped", (first, second, first_root, second_root, [*path[:n], flip(h, 0), *path[n + 1 :]]))
             for n, h in enumerate(path)]  # fmt: skip
    cases += [
        ("first root flipped", (first, second, flip(first_root, 1), second_root, path)),
        ("second root flipped", (first, second, first_root, flip(second_root, 1), path)),
        ("roots swapped", (first, second, second_root, first_root, path)) if first != second else
        ("first root from elsewhere", (first, second, other, second_root, path)),
        ("second + 1", (first, second + 1, first_root, root_of(second + 1), path)),
        ("second - 1", (first, second - 1, first_root, root_of(second - 1), path)),
        ("first + 1", (first + 1, second, root_of(first + 1), second_root, path)),
        ("extended at the end", (first, second, first_root, second_root, [*path, other])),
        ("extended at the start", (first, second, first_root, second_root, [other, *path])),
        ("inverted", (second, first, second_root, first_root, path)) if first != second else
        ("inverted by one", (second + 1, second, first_root, second_root, path)),
    ]  # fmt: skip
    if first > 1:
        cases.append(("first - 1", (first - 1, second, root_of(first - 1), second_root, path)))
    if path:
        cases += [
            ("truncated at the end", (first, second, first_root, second_root, path[:-1])),
            ("truncated at the start", (first, second, first_root, second_root, path[1:])),
        ]
    if len(path) > 1:
        cases.append(("two hashes swapped", (first, second, first_root, second_root, [path[1], path[0], *path[2:]])))
    return cases


@pytest.mark.parametrize(("hasher", "digest"), HASHES, ids=["sm3", "sha256"])
def test_verify_consistency_accepts_reference_proofs_and_rejects_tampered(
    hasher: TreeHasher, digest: rfc9162.Digest
) -> None:
    reference = rfc9162.Reference(_leaves(MAX_SIZE + 1), digest)

    def root_of(size: int) -> bytes:
        return reference.mth(0, size)

    for second in range(1, MAX_SIZE + 1):
        second_root = reference.mth(0, second)
        for first in range(1, second + 1):
            first_root, path = reference.mth(0, first), reference.proof(first, second)
            assert verify_consistency(first, second, first_root, second_root, path, hasher=hasher), (first, second)
            for name, args in _consistency_tampers(first, second, first_root, second_root, path, root_of):
                assert not verify_consistency(*args, hasher=hasher), (name, first, second)


def test_consistency_with_the_empty_tree() -> None:
    """Beyond RFC 9162's 0 < first: C2SP tlog-witness starts from size 0 with an empty proof."""
    root = _tree(_leaves(5), SM3).root()
    assert verify_consistency(0, 5, SM3.empty_root(), root, [])
    assert not verify_consistency(0, 5, SM3.empty_root(), root, [root])
    assert not verify_consistency(-1, 5, SM3.empty_root(), root, [])
