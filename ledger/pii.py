"""Keyed digests of personal data (holder names, ID numbers, certificate subjects) for events, logs
and the ledger (PIPL).

A digest is HMAC-SM3 under a 32-byte key that lives in key custody (`ledger.pii-hmac`, created on
first use, rotated like any other key), written as `hmac-sm3:v<key version>:<64 hex>`, so an auditor
knows which key version made it. Whoever reads the events cannot test guesses against a digest without
asking custody: an unsalted SM3 of a Chinese resident ID number falls to a dictionary of region code ×
birth date × sequence × check digit (365,000 candidates for one region and birth year, 3.1 s).

Events written before this scheme carry unsalted SM3 digests in fields named `…_sm3` (64 hex
characters, no label: the legacy scheme `sm3`). They cannot be re-keyed (the clear value is gone) and
are left as they are; nothing writes that scheme any more.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

from keys.custody import KeyAlgorithm, KeyCustody, KeyExists, KeyNotFound, MacHandle

PII_KEY = "ledger.pii-hmac"
SCHEME = "hmac-sm3"
LEGACY_SCHEME = "sm3"  # unlabelled 64-hex SM3 in `…_sm3` fields of events older than this module

_KEYED = re.compile(r"^hmac-sm3:v([1-9][0-9]*):([0-9a-f]{64})$")
_LEGACY = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredDigest:
    scheme: str  # SCHEME or LEGACY_SCHEME
    key_version: int | None  # the custody key version of a keyed digest; None for the legacy scheme
    hex: str


def scheme_of(value: str) -> StoredDigest:
    """Which scheme made a personal-data digest found in an event: `hmac-sm3:v<N>:<hex>` (keyed) or a
    bare 64-hex SM3 (legacy, reversible by dictionary for ID numbers). Anything else is not a digest."""
    keyed = _KEYED.match(value)
    if keyed:
        return StoredDigest(SCHEME, int(keyed[1]), keyed[2])
    if _LEGACY.match(value):
        return StoredDigest(LEGACY_SCHEME, None, value)
    raise ValueError("not a personal-data digest")


class PiiDigests:
    """`digests(value)` → `hmac-sm3:v<N>:<hex>` with the newest enabled version of the custody key."""

    def __init__(self, custody: KeyCustody, key_name: str = PII_KEY) -> None:
        self.custody = custody
        self.key_name = key_name

    def __call__(self, value: str) -> str:
        return self._label(self._handle(), value)

    def all_versions(self, value: str) -> list[str]:
        """The digests of `value` under every enabled key version, newest first: what a search over
        events written across key rotations looks for."""
        self._handle()  # creates the key if nobody has written a digest yet
        versions = sorted(
            (v for v in self.custody.versions(self.key_name) if v.enabled), key=lambda v: v.version, reverse=True
        )
        return [self._label(self.custody.mac(v.ref), value) for v in versions]

    def prepare(self) -> None:
        """Create the key now if nobody has yet: a caller about to digest inside a write transaction
        calls this first, since creating a key records its event in a transaction of its own
        (ledger/key_events.py)."""
        self._handle()

    @staticmethod
    def _label(handle: MacHandle, value: str) -> str:
        return f"{SCHEME}:v{handle.version.version}:{handle.mac(value.encode('utf-8')).hex()}"

    def _handle(self) -> MacHandle:
        try:
            return self.custody.mac(self.key_name)
        except KeyNotFound:
            pass
        with contextlib.suppress(KeyExists):  # another process or thread created it first
            self.custody.create(self.key_name, KeyAlgorithm.HMAC_SM3)
        return self.custody.mac(self.key_name)
