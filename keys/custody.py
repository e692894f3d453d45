"""The key-custody interface every backend implements, and the signing handle it hands out.

A caller names a key (`cn-root-sm2`), custody keeps its versions; the caller gets public keys and
signing handles, never private bytes. Key references are `name` (newest enabled version) or
`name@version`.

Besides signing keys (SM2, P-256) custody holds secret MAC keys (HMAC-SM3, 32 bytes, e.g. the key of
the keyed digests of personal data in events). A MAC key has no public part (`public_key_der` is
empty); callers get a `MacHandle` that computes MACs, never the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from keys.material import HmacSM3Material, PrivateMaterial

KEY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class KeyAlgorithm(StrEnum):
    SM2 = "sm2"
    P256 = "p256"
    HMAC_SM3 = "hmac-sm3"

    @property
    def is_mac(self) -> bool:
        return self is KeyAlgorithm.HMAC_SM3


class CustodyError(Exception):
    """Base of custody errors; messages never contain key material."""

    code = "custody_error"


class KeyNotFound(CustodyError):
    code = "key_not_found"


class KeyExists(CustodyError):
    code = "key_exists"


class KeyDisabled(CustodyError):
    code = "key_disabled"


class KeyWrongType(CustodyError):
    """A MAC key asked to sign, or a signing key asked to MAC."""

    code = "key_wrong_type"


class CustodyLocked(CustodyError):
    """Wrong passphrase / KEK, or ciphertext that fails authentication."""

    code = "custody_locked"


class KeyTampered(CustodyLocked):
    """A stored key whose bound metadata (public key, enabled flag, name, version, algorithm,
    creation time) no longer matches what was sealed with its private part: refused, never used."""

    code = "key_tampered"


@dataclass(frozen=True)
class KeyVersion:
    name: str
    version: int
    algorithm: KeyAlgorithm
    public_key_der: bytes  # SubjectPublicKeyInfo
    created_at: datetime
    enabled: bool

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class SigningHandle:
    """Signs with one key version. Holds the key in process memory only; not serialisable."""

    __slots__ = ("_material", "version")

    def __init__(self, version: KeyVersion, material: PrivateMaterial) -> None:
        self.version = version
        self._material = material

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self.version.algorithm

    @property
    def public_key_der(self) -> bytes:
        return self.version.public_key_der

    def sign(self, data: bytes) -> bytes:
        """DER signature: SM2-with-SM3 (standard ID) or ECDSA-with-SHA256, over `data`."""
        return self._material.sign(data)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("signing handles cannot be pickled")

    def __repr__(self) -> str:
        return f"SigningHandle({self.version.ref}, {self.version.algorithm})"


class MacHandle:
    """Computes HMAC-SM3 with one MAC key version. Holds the key in process memory only; not
    serialisable, and nothing on it returns the key."""

    __slots__ = ("_material", "version")

    def __init__(self, version: KeyVersion, material: HmacSM3Material) -> None:
        self.version = version
        self._material = material

    def mac(self, data: bytes) -> bytes:
        return self._material.mac(data)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("MAC handles cannot be pickled")

    def __repr__(self) -> str:
        return f"MacHandle({self.version.ref}, {self.version.algorithm})"


def parse_ref(ref: str) -> tuple[str, int | None]:
    name, _, version = ref.partition("@")
    if not KEY_NAME.match(name):
        raise KeyNotFound(f"invalid key name {name!r}")
    if not version:
        return name, None
    if not version.isdigit():
        raise KeyNotFound(f"invalid key version in {ref!r}")
    return name, int(version)


class KeyCustody(Protocol):
    """What `ca/`, `seal/`, `signing/` and `ledger/` may ask of custody."""

    def create(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion: ...

    def rotate(self, name: str) -> KeyVersion: ...

    def disable(self, name: str, version: int) -> KeyVersion: ...

    def versions(self, name: str) -> list[KeyVersion]: ...

    def names(self) -> list[str]: ...

    def get(self, ref: str) -> KeyVersion:
        """`name` → newest enabled version; `name@N` → that version (enabled or not)."""
        ...

    def signer(self, ref: str) -> SigningHandle:
        """A handle for an enabled version; raises KeyDisabled for a disabled one, KeyWrongType for a MAC key."""
        ...

    def mac(self, ref: str) -> MacHandle:
        """A MAC handle for an enabled version of a MAC key; KeyDisabled / KeyWrongType as for `signer`."""
        ...


def newest_enabled(versions: list[KeyVersion], name: str) -> KeyVersion:
    enabled = [v for v in versions if v.enabled]
    if not enabled:
        raise KeyDisabled(f"key {name} has no enabled version")
    return max(enabled, key=lambda v: v.version)


def select(versions: list[KeyVersion], ref: str) -> KeyVersion:
    name, number = parse_ref(ref)
    if not versions:
        raise KeyNotFound(f"no key named {name}")
    if number is None:
        return newest_enabled(versions, name)
    for v in versions:
        if v.version == number:
            return v
    raise KeyNotFound(f"key {name} has no version {number}")
