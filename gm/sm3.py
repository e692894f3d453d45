"""SM3 (GB/T 32905) through OpenSSL's hashlib provider: C speed, no extra dependency."""

import hashlib

DIGEST_SIZE = 32


def sm3(data: bytes) -> bytes:
    return hashlib.new("sm3", data).digest()


def new(data: bytes = b"") -> "hashlib._Hash":
    """An incremental SM3 hasher, for documents too large to hash in one piece."""
    return hashlib.new("sm3", data)
