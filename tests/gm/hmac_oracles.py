"""Two HMAC-SM3 implementations that share no code with gm/sm3.py's `hmac_sm3` (cryptography's HMAC):
RFC 2104 written out here over hashlib's SM3, and the OpenSSL 3 command line."""

from __future__ import annotations

import hashlib
import subprocess

BLOCK = 64  # SM3 block size in bytes


def _sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def rfc2104_hmac_sm3(key: bytes, message: bytes) -> bytes:
    """H(K ⊕ opad ‖ H(K ⊕ ipad ‖ m)), K hashed first when longer than a block, then zero-padded."""
    if len(key) > BLOCK:
        key = _sm3(key)
    key = key.ljust(BLOCK, b"\x00")
    inner = _sm3(bytes(k ^ 0x36 for k in key) + message)
    return _sm3(bytes(k ^ 0x5C for k in key) + inner)


def openssl_hmac_sm3(key: bytes, message: bytes) -> bytes:
    """`openssl mac -digest SM3 -macopt hexkey:… HMAC` over stdin."""
    out = subprocess.run(
        ["openssl", "mac", "-digest", "SM3", "-macopt", f"hexkey:{key.hex()}", "HMAC"],
        input=message,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    return bytes.fromhex(out.decode().strip())
