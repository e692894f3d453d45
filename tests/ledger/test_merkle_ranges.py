"""Bad proof requests: a LedgerRangeError (a ValueError) with a stable code, for the API's 4xx."""

from __future__ import annotations

import pytest

from ledger.errors import LedgerError, LedgerRangeError
from ledger.merkle import SM3, MerkleTree, tree_hasher
from ledger.node_store import MemoryNodeStore


@pytest.fixture
def tree() -> MerkleTree:
    tree = MerkleTree(MemoryNodeStore(), SM3)
    tree.append_leaves([b"entry %d" % i for i in range(10)])
    return tree


@pytest.mark.parametrize(
    ("index", "size", "code"),
    [
        (10, 10, "proof_out_of_range"),  # index = size
        (11, 10, "proof_out_of_range"),
        (-1, 10, "proof_out_of_range"),
        (0, 0, "proof_out_of_range"),  # the empty tree holds nothing
        (0, -3, "proof_out_of_range"),
        (0, 11, "size_beyond_tree"),
        (10, 11, "size_beyond_tree"),  # the leaf after the last: its proof needs only stored nodes
        (5, 1 << 40, "size_beyond_tree"),
    ],
)
def test_inclusion_out_of_range(tree: MerkleTree, index: int, size: int, code: str) -> None:
    with pytest.raises(LedgerRangeError) as caught:
        tree.inclusion_proof(index, size)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == code
    assert str(index) in str(caught.value) or str(size) in str(caught.value)


@pytest.mark.parametrize(
    ("first", "second", "code"),
    [
        (5, 4, "proof_inverted"),
        (11, 10, "proof_inverted"),
        (0, 5, "proof_out_of_range"),  # RFC 9162 proofs start at size 1
        (0, 0, "proof_out_of_range"),
        (-2, 5, "proof_out_of_range"),
        (5, 11, "size_beyond_tree"),
        (11, 11, "size_beyond_tree"),
    ],
)
def test_consistency_out_of_range(tree: MerkleTree, first: int, second: int, code: str) -> None:
    with pytest.raises(LedgerRangeError) as caught:
        tree.consistency_proof(first, second)
    assert caught.value.code == code


def test_tree_heads_out_of_range(tree: MerkleTree) -> None:
    assert tree.root(0) == SM3.empty_root()
    assert tree.root(10) == tree.root()
    with pytest.raises(LedgerRangeError) as caught:
        tree.root(11)
    assert caught.value.code == "size_beyond_tree"
    with pytest.raises(LedgerRangeError) as caught:
        tree.root(-1)
    assert caught.value.code == "size_invalid"


def test_bad_hashes_and_unknown_hash_names(tree: MerkleTree) -> None:
    with pytest.raises(LedgerError) as caught:
        tree.append_hashes([bytes(31)])
    assert caught.value.code == "hash_length"
    assert tree.size() == 10  # nothing written
    with pytest.raises(LedgerError) as caught:
        tree_hasher("md5")
    assert caught.value.code == "hash_unknown"
    assert tree_hasher("sha256").name == "sha256"
    assert tree_hasher().name == "sm3"
