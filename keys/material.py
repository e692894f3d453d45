"""Private key material in memory: generate, serialise for wrapping, sign.

Only custody backends touch this module; the bytes from `secret_bytes` are encrypted before they
are stored anywhere.
"""

from __future__ import annotations

from typing import Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gm import sm2


class PrivateMaterial(Protocol):
    algorithm: str

    def sign(self, data: bytes) -> bytes: ...

    def public_key_der(self) -> bytes: ...

    def secret_bytes(self) -> bytes: ...


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


def generate(algorithm: str) -> PrivateMaterial:
    if algorithm == "sm2":
        return SM2Material(sm2.SM2PrivateKey.generate())
    if algorithm == "p256":
        return P256Material(ec.generate_private_key(ec.SECP256R1()))
    raise ValueError(f"unsupported key algorithm {algorithm!r}")


def load(algorithm: str, secret: bytes) -> PrivateMaterial:
    if algorithm == "sm2":
        return SM2Material(sm2.SM2PrivateKey.from_scalar(secret))
    if algorithm == "p256":
        return P256Material(ec.derive_private_key(int.from_bytes(secret, "big"), ec.SECP256R1()))
    raise ValueError(f"unsupported key algorithm {algorithm!r}")
