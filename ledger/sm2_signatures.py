"""The SM2 signatures of the ledger's wire format: key ids, strict base64, signing through custody.

Checkpoints, cosignatures and receipts are all "base64 of a DER SM2 signature (default ID) over exact
UTF-8 bytes", so that an auditor can check any of them with `openssl pkeyutl -verify -rawin -digest
sm3 -pkeyopt distid:1234567812345678`. Keys are named by `key_id`, the hex SM3 of their
SubjectPublicKeyInfo DER.
"""

from __future__ import annotations

import base64
import binascii
import re

from asn1crypto import pem, x509

from gm import sm2
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm, SigningHandle
from ledger.errors import CheckpointError

KEY_ID = re.compile(r"^[0-9a-f]{64}$")


def key_id(spki_der: bytes) -> str:
    """Hex SM3 of a SubjectPublicKeyInfo DER: how checkpoints name the key that signed them."""
    return sm3(spki_der).hex()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: object, what: str, *, code: str = "checkpoint_malformed") -> bytes:
    """Standard, padded, canonical base64 only: one encoding per value, so nothing signed is malleable."""
    if not isinstance(text, str) or not text:
        raise CheckpointError(f"{what} must be a non-empty base64 string", code=code)
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not valid base64", code=code) from None
    if b64encode(data) != text:
        raise CheckpointError(f"{what} is not canonical base64", code=code)
    return data


def public_key_der(key: bytes) -> bytes:
    """The SubjectPublicKeyInfo DER of an SM2 key given as SPKI DER, or as a certificate in DER or
    PEM. Only the key is taken: the caller checks the certificate itself (pin, chain, validity)."""
    try:
        if pem.detect(key):
            _, _, key = pem.unarmor(key)
        try:
            sm2.SM2PublicKey.from_spki(key)
            return key
        except sm2.InvalidKey:
            info: bytes = x509.Certificate.load(key, strict=True)["tbs_certificate"]["subject_public_key_info"].dump()
            sm2.SM2PublicKey.from_spki(info)
            return info
    except (ValueError, TypeError, KeyError, IndexError, sm2.InvalidKey) as exc:
        raise CheckpointError(f"not an SM2 public key or certificate: {exc}", code="ledger_key_invalid") from None


def sign(handle: SigningHandle, message: bytes) -> bytes:
    """DER SM2 signature (default ID) over `message` by a custody handle; the ledger signs with SM2 only."""
    if handle.algorithm != KeyAlgorithm.SM2:
        raise CheckpointError(f"the ledger signs with SM2 keys, not {handle.algorithm}", code="ledger_key_invalid")
    return handle.sign(message)


def verify(spki_der: bytes, signature: bytes, message: bytes) -> bool:
    """An SM2 signature with the default ID, strict DER."""
    return sm2.SM2PublicKey.from_spki(spki_der).verify(signature, message)
