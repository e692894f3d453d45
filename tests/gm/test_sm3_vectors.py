"""SM3 against the GB/T 32905-2016 appendix A vectors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gm import sm3
from tests.fixtures import examples


def test_standard_vector_abc() -> None:
    assert sm3.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_standard_vector_512_bits() -> None:
    assert sm3.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_incremental_equals_one_shot() -> None:
    h = sm3.new(b"ab")
    h.update(b"c")
    assert h.digest() == sm3.sm3(b"abc")
    assert sm3.sm3(b"") != sm3.sm3(b"\x00")


def test_digest_size_and_empty_message() -> None:
    # GM/T 0004 / OpenSSL: SM3("") = 1ab21d83...
    assert sm3.sm3(b"").hex() == "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"
    assert len(sm3.sm3(b"abc")) == sm3.DIGEST_SIZE == sm3.new().digest_size


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_incremental_chunks_equal_one_shot(chunks: list[bytes]) -> None:
    h = sm3.new()
    for chunk in chunks:
        h.update(chunk)
    assert h.digest() == sm3.sm3(b"".join(chunks))
    assert h.copy().digest() == h.digest()  # copy() does not disturb the running state
