"""Memoised X.509 name comparison for asn1crypto.

pyHanko and its certificate validator compare and hash names constantly (issuer lookups, registries,
OCSP responder checks); asn1crypto prepares every attribute value with RFC 4518 string preparation
each time, on freshly parsed certificates of every document: ~20 % of a verification. The
preparation is a pure function of the string, and a Name's `hashable` of its DER, so both are
memoised here with bounded caches; answers are those of asn1crypto (tests/verify/
test_asn1_speedups.py compares both on hypothesis-generated names). Installed by
verify/library_patches.py, the one place that replaces library code.
"""

from __future__ import annotations

import functools
from typing import Any

from asn1crypto import x509

ORIGINAL_PREP = x509.NameTypeAndValue._ldap_string_prep
ORIGINAL_HASHABLE = x509.Name.hashable.fget
ORIGINAL_EQ = x509.Name.__eq__


@functools.lru_cache(maxsize=16384)
def _prep(string: str) -> str:
    prepared: str = ORIGINAL_PREP(None, string)
    return prepared


_HASHABLES: dict[bytes, str] = {}
_MAX_HASHABLES = 8192


def memo_prep(self: Any, string: str) -> str:
    return _prep(string)


def memo_hashable(self: x509.Name) -> str:
    # Keyed by the RDNSequence's contents: a Name inside a GeneralName carries an explicit [4] tag,
    # so its own dump() differs while the name is the same.
    key = bytes(self.chosen.contents or b"")
    value = _HASHABLES.get(key)
    if value is None:
        value = ORIGINAL_HASHABLE(self)
        if len(_HASHABLES) >= _MAX_HASHABLES:
            _HASHABLES.clear()
        _HASHABLES[key] = value
    return value


def memo_eq(self: x509.Name, other: object) -> bool:
    """RFC 5280 §7.1 equality, as asn1crypto decides it: its RDNSequence equality and the equality of
    the `hashable` strings coincide (the separators cannot survive string preparation)."""
    return isinstance(other, x509.Name) and memo_hashable(self) == memo_hashable(other)


HASHABLE = property(memo_hashable)  # what replaces x509.Name.hashable
