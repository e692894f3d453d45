"""SM4-GCM key wrapping under a key-encryption key (KEK) derived from a passphrase with scrypt."""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keys.custody import CustodyLocked, KeyTampered

KEK_BYTES = 16  # SM4 key size
NONCE_BYTES = 12
TAG_BYTES = 16


def derive_kek(passphrase: str, salt: bytes, n: int = 2**15, r: int = 8, p: int = 1) -> bytes:
    return Scrypt(salt=salt, length=KEK_BYTES, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def wrap(kek: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || ciphertext || tag, the nonce fresh from the OS CSPRNG."""
    nonce = os.urandom(NONCE_BYTES)
    enc = Cipher(algorithms.SM4(kek), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    body = enc.update(plaintext) + enc.finalize()
    return nonce + body + enc.tag


def unwrap(kek: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + TAG_BYTES:
        raise CustodyLocked("wrapped key is truncated")
    nonce, body, tag = blob[:NONCE_BYTES], blob[NONCE_BYTES:-TAG_BYTES], blob[-TAG_BYTES:]
    dec = Cipher(algorithms.SM4(kek), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(body) + dec.finalize()
    except InvalidTag:
        raise CustodyLocked("wrong key-encryption key or tampered keystore") from None


def entry_binding(name: str, algorithm: str, entry: dict[str, Any]) -> bytes:
    """What a wrapped key is bound to (format 2, both keystores): every field of its stored entry a
    reader acts on, exactly as stored, so a swapped public key or a flipped enabled flag fails to open."""
    try:
        bound = {
            "name": name,
            "algorithm": algorithm,
            "version": entry["version"],
            "enabled": entry["enabled"],
            "public_key": entry["public_key"],
            "created_at": entry["created_at"],
        }
    except (KeyError, TypeError):
        raise KeyTampered(f"key {name}: a stored version lacks a required field") from None
    return b"trustseal-key/v2\n" + json.dumps(bound, sort_keys=True, separators=(",", ":")).encode()
