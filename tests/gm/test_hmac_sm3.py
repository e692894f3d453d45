"""HMAC-SM3 (gm/sm3.py, through cryptography's OpenSSL HMAC) against RFC 2104 written out in the test
and against the OpenSSL command line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gm.sm3 import BLOCK_SIZE, DIGEST_SIZE, hmac_sm3, sm3
from tests.fixtures import examples
from tests.gm.hmac_oracles import openssl_hmac_sm3, rfc2104_hmac_sm3

# Edge keys: shorter than, equal to, one over the 64-byte block (the last is hashed first), and a 32-byte key.
KEYS = [b"k", bytes(range(32)), bytes(range(64)), bytes(range(65)), b"\xff" * 131]
MESSAGES = [b"", b"abc", b"370102199001011234", "张三".encode(), b"\x00" * 200]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"key{len(k)}")
@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"msg{len(m)}")
def test_against_openssl_cli_and_rfc2104(key: bytes, message: bytes) -> None:
    ours = hmac_sm3(key, message)
    assert len(ours) == DIGEST_SIZE
    assert ours == rfc2104_hmac_sm3(key, message) == openssl_hmac_sm3(key, message)


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(min_size=1, max_size=3 * BLOCK_SIZE), st.binary(max_size=300))
def test_against_rfc2104(key: bytes, message: bytes) -> None:
    assert hmac_sm3(key, message) == rfc2104_hmac_sm3(key, message)


def test_keyed_is_not_plain_sm3_and_depends_on_the_key() -> None:
    message = b"370102199001011234"
    assert hmac_sm3(b"a" * 32, message) != sm3(message)
    assert hmac_sm3(b"a" * 32, message) != hmac_sm3(b"b" * 32, message)
    assert hmac_sm3(b"a" * 32, message) != hmac_sm3(b"a" * 32, message + b"5")


def test_empty_key_refused() -> None:
    with pytest.raises(ValueError):
        hmac_sm3(b"", b"m")
