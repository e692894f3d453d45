"""RFC 9162 §2.1 written out from the RFC's definitions, independent of ledger/: the reference the
ledger's trees and proofs are checked against. Recursive as the RFC states it; MTH is memoised per
(start, end) only to keep the exhaustive tests fast."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

Digest = Callable[[bytes], bytes]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


class Reference:
    """D[0:n] = `leaves` (the leaf inputs, not their hashes); subtrees are D[start:end]."""

    def __init__(self, leaves: list[bytes], digest: Digest) -> None:
        self.leaves = leaves
        self.digest = digest
        self._mth: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def leaf_hash(self, i: int) -> bytes:
        return self.digest(b"\x00" + self.leaves[i])

    def mth(self, start: int, end: int) -> bytes:
        """§2.1.1: MTH({}) = HASH(); MTH({d0}) = HASH(0x00 || d0);
        MTH(D[n]) = HASH(0x01 || MTH(D[0:k]) || MTH(D[k:n]))."""
        key = (start, end)
        if key not in self._mth:
            n = end - start
            if n == 0:
                value = self.digest(b"")
            elif n == 1:
                value = self.leaf_hash(start)
            else:
                k = self.k(n)
                value = self.digest(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end))
            self._mth[key] = value
        return self._mth[key]

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """§2.1.3.1: PATH(0, {d0}) = {}; for m < k: PATH(m, D[0:k]) : MTH(D[k:n]);
        for m >= k: PATH(m - k, D[k:n]) : MTH(D[0:k]). `m` is relative to `start`."""
        n = end - start
        if n == 1:
            assert m == 0
            return []
        k = self.k(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """§2.1.4.1: PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        """SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])};
        for m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n]);
        for m > k: SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])."""
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = self.k(n)
        if m <= k:
            return [*self.subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]
