"""SM3 against the GB/T 32905-2016 appendix A vectors."""

from __future__ import annotations

from gm import sm3


def test_standard_vector_abc() -> None:
    assert sm3.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"


def test_standard_vector_512_bits() -> None:
    assert sm3.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_incremental_equals_one_shot() -> None:
    h = sm3.new(b"ab")
    h.update(b"c")
    assert h.digest() == sm3.sm3(b"abc")
    assert sm3.sm3(b"") != sm3.sm3(b"\x00")
