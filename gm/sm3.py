"""SM3 (GB/T 32905) through OpenSSL's hashlib provider: C speed, no extra dependency.

HMAC-SM3 (RFC 2104 over SM3: 64-byte block, 32-byte tag; the construction GB/T 15852.2 names) goes
through `cryptography`'s HMAC over the same OpenSSL SM3, so neither is implemented here by hand.
"""

import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _hmac

DIGEST_SIZE = 32
BLOCK_SIZE = 64


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def new(data: bytes = b"") -> "hashlib._Hash":
    """An incremental SM3 hasher, for documents too large to hash in one piece."""
    return hashlib.new("sm3", data)


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    """HMAC-SM3 of `data` under `key` (32 bytes). Only key custody should hold the keys it is called with."""
    if not key:
        raise ValueError("HMAC-SM3 needs a non-empty key")
    mac = _hmac.HMAC(key, hashes.SM3())
    mac.update(data)
    return mac.finalize()
