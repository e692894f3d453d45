"""Secret key material in memory: generate, serialise for wrapping, sign (SM2, P-256) or MAC (HMAC-SM3).

Only custody backends touch this module; the bytes from `secret_bytes` are encrypted before they
are stored anywhere.
"""

from __future__ import annotations

import os
from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gm import sm2
from gm.sm3 import hmac_sm3

SIGNING_ALGORITHMS = frozenset({"sm2", "p256"})
MAC_ALGORITHMS = frozenset({"hmac-sm3"})
MAC_KEY_BYTES = 32


class SecretMaterial(Protocol):
    """What a backend stores: the bytes it wraps and the public part (empty for a MAC key)."""

    algorithm: str

    def public_key_der(self) -> bytes: ...

    def secret_bytes(self) -> bytes: ...


class PrivateMaterial(SecretMaterial, Protocol):
    def sign(self, data: bytes) -> bytes: ...


class SM2Material:
    algorithm = "sm2"
    __slots__ = ("_key",)

    def __init__(self, key: sm2.SM2PrivateKey) -> None:
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, sm2.DEFAULT_ID)

    def public_key_der(self) -> bytes:
        return self._key.public_key.spki_der()

    def secret_bytes(self) -> bytes:
        return self._key.private_scalar()

    def __repr__(self) -> str:
        return "SM2Material(<secret>)"


class P256Material:
    algorithm = "p256"
    __slots__ = ("_key",)

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def public_key_der(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def secret_bytes(self) -> bytes:
        return self._key.private_numbers().private_value.to_bytes(32, "big")

    def __repr__(self) -> str:
        return "P256Material(<secret>)"


class HmacSM3Material:
    """A 32-byte HMAC-SM3 key (e.g. for keyed digests of personal data). It has no public part."""

    algorithm = "hmac-sm3"
    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) != MAC_KEY_BYTES:
            raise ValueError(f"an HMAC-SM3 key is {MAC_KEY_BYTES} bytes")
        self._key = key

    def mac(self, data: bytes) -> bytes:
        return hmac_sm3(self._key, data)

    def public_key_der(self) -> bytes:
        return b""

    def secret_bytes(self) -> bytes:
        return self._key

    def __repr__(self) -> str:
        return "HmacSM3Material(<secret>)"


def generate(algorithm: str) -> SecretMaterial:
    if algorithm == "sm2":
        return SM2Material(sm2.SM2PrivateKey.generate())
    if algorithm == "p256":
        return P256Material(ec.generate_private_key(ec.SECP256R1()))
    if algorithm == "hmac-sm3":
        return HmacSM3Material(os.urandom(MAC_KEY_BYTES))
    raise ValueError(f"unsupported key algorithm {algorithm!r}")


def load_mac(algorithm: str, secret: bytes) -> HmacSM3Material:
    if algorithm == "hmac-sm3":
        return HmacSM3Material(secret)
    raise ValueError(f"{algorithm!r} is not a MAC key algorithm")


def load(algorithm: str, secret: bytes) -> PrivateMaterial:
    if algorithm == "sm2":
        return SM2Material(sm2.SM2PrivateKey.from_scalar(secret))
    if algorithm == "p256":
        return P256Material(ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1()))
    raise ValueError(f"unsupported key algorithm {algorithm!r}")
