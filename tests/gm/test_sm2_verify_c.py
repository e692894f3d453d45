"""gm/_sm2verify.c against a plain Python reference of the curve and against Botan.

The C code is hand-written field and point arithmetic, so it is checked where such code breaks:
carries at the edges of the field, the equal-point and opposite-point cases of addition, scalars
0, 1 and n - 1, and — end to end — the same accept / reject answer as Botan on valid, tampered
and random signatures.
"""

from __future__ import annotations

import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gm import sm2
from tests.fixtures import examples

try:
    from gm import _sm2verify as C
except ImportError:  # reported by test_the_c_verifier_is_built
    C = None  # type: ignore[assignment]
P, N, A = sm2.P, sm2.N, sm2.A
G = (sm2.GX, sm2.GY)
Point = tuple[int, int] | None


def test_the_c_verifier_is_built() -> None:
    """`make install` compiles it; without it gm/ falls back to Botan and the benchmarks lose ~2x."""
    assert C is not None


def _add(p1: Point, p2: Point) -> Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % P == 0:
        return None
    tangent = p1 == p2
    numerator, denominator = (3 * x1 * x1 + A, 2 * y1) if tangent else (y2 - y1, x2 - x1)
    slope = numerator * pow(denominator, -1, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _mul(k: int, point: Point) -> Point:
    out: Point = None
    while k:
        if k & 1:
            out = _add(out, point)
        point = _add(point, point)
        k >>= 1
    return out


def _combine(point: tuple[int, int], u1: int, u2: int) -> bytes | None:
    assert C is not None
    x, y = (v.to_bytes(32, "big") for v in point)
    return C.combine(x, y, u1.to_bytes(32, "big"), u2.to_bytes(32, "big"))


def _expected(point: tuple[int, int], u1: int, u2: int) -> bytes | None:
    result = _add(_mul(u1, G), _mul(u2, point))
    return None if result is None else result[0].to_bytes(32, "big")


_FIELD_EDGES = [0, 1, 2, P - 1, P - 2, 2**64 - 1, 2**128, 2**192 + 2**64, 2**224 - 1, P >> 1]


@settings(max_examples=examples(500), deadline=None)
@given(st.one_of(st.sampled_from(_FIELD_EDGES), st.integers(0, P - 1)), st.integers(0, P - 1))
def test_field_multiplication_matches_python(a: int, b: int) -> None:
    assert C is not None
    for x, y in ((a, b), (a, a), (b, P - 1)):
        got = C._field_mul(x.to_bytes(32, "big"), y.to_bytes(32, "big"))
        assert int.from_bytes(got, "big") == x * y % P


_SCALAR_EDGES = [0, 1, 2, 15, 16, 255, 256, N - 1, N - 2, 2**255, 2**64 - 1]


@settings(max_examples=examples(40), deadline=None)
@given(
    k=st.integers(1, N - 1),
    u1=st.one_of(st.sampled_from(_SCALAR_EDGES), st.integers(0, N - 1)),
    u2=st.one_of(st.sampled_from(_SCALAR_EDGES), st.integers(0, N - 1)),
)
def test_combination_matches_the_reference(k: int, u1: int, u2: int) -> None:
    point = _mul(k, G)
    assert point is not None
    assert _combine(point, u1, u2) == _expected(point, u1, u2)


def test_equal_and_opposite_points_inside_the_sum() -> None:
    assert _combine(G, 1, 1) == _expected(G, 1, 1)  # G + G: addition falls back to doubling
    assert _combine(G, 5, 7) == _expected(G, 5, 7)
    assert _combine(G, 1, N - 1) is None  # G + (-G): the point at infinity
    k = secrets.randbelow(N - 1) + 1
    point = _mul(k, G)
    assert point is not None
    u2 = secrets.randbelow(N - 1) + 1
    assert _combine(point, (-k * u2) % N, u2) is None  # u1 G + u2 k G = 0
    assert _combine(point, 0, 0) is None
    assert _combine(point, 0, 1) == point[0].to_bytes(32, "big")


def test_inputs_of_the_wrong_size_are_refused() -> None:
    assert C is not None
    with pytest.raises(ValueError):
        C.combine(b"\x01" * 31, b"\x01" * 32, b"\x01" * 32, b"\x01" * 32)
    with pytest.raises(TypeError):
        C.combine("x" * 32, b"\x01" * 32, b"\x01" * 32, b"\x01" * 32)  # type: ignore[arg-type]


_KEY = sm2.SM2PrivateKey.generate()


@settings(max_examples=examples(150), deadline=None)
@given(message=st.binary(max_size=200), flip=st.integers(0, 8 * 72 - 1), tamper=st.sampled_from(["none", "sig", "msg"]))
def test_same_verdict_as_botan(message: bytes, flip: int, tamper: str) -> None:
    public = _KEY.public_key
    signature = bytearray(_KEY.sign(message))
    e = public.digest(message)
    if tamper == "sig":
        signature[flip // 8 % len(signature)] ^= 1 << (flip % 8)
    elif tamper == "msg":
        e = public.digest(message + b"x")
    ours = public.verify_digest(bytes(signature), e)
    assert ours == public.verify_with_botan(bytes(signature), e)
    assert ours == (tamper == "none")


@settings(max_examples=examples(100), deadline=None)
@given(r=st.integers(1, N - 1), s=st.integers(1, N - 1), e=st.binary(min_size=32, max_size=32))
def test_random_signatures_rejected_by_both(r: int, s: int, e: bytes) -> None:
    public = _KEY.public_key
    signature = sm2.encode_signature(r, s)
    assert public.verify_digest(signature, e) is False
    assert public.verify_with_botan(signature, e) is False


def test_t_equal_zero_is_rejected() -> None:
    """r + s = n makes t = 0, which GB/T 32918.2 B5 rejects before any point arithmetic."""
    s = secrets.randbelow(N - 2) + 1
    e = _KEY.public_key.digest(b"m")
    assert _KEY.public_key.verify_digest(sm2.encode_signature(N - s, s), e) is False


@settings(max_examples=examples(40), deadline=None)
@given(
    u1=st.one_of(st.sampled_from(_SCALAR_EDGES), st.integers(0, N - 1)),
    u2=st.one_of(st.sampled_from(_SCALAR_EDGES), st.integers(0, N - 1)),
)
def test_key_table_combination_matches_the_reference(u1: int, u2: int) -> None:
    assert C is not None
    point = _mul(0xC0FFEE, G)
    assert point is not None
    table = C.key_table(*(v.to_bytes(32, "big") for v in point))
    got = C.combine_table(table, u1.to_bytes(32, "big"), u2.to_bytes(32, "big"))
    assert got == _expected(point, u1, u2)


def test_key_table_edge_cases_and_misuse() -> None:
    assert C is not None
    table = C.key_table(sm2.GX.to_bytes(32, "big"), sm2.GY.to_bytes(32, "big"))
    one, minus_one = (1).to_bytes(32, "big"), (N - 1).to_bytes(32, "big")
    assert C.combine_table(table, one, minus_one) is None  # G - G
    assert C.combine_table(table, one, one) == _expected(G, 1, 1)  # G + G through the doubling case
    with pytest.raises(ValueError):
        C.combine_table(table[:-1], one, one)


def test_a_key_verified_often_switches_to_its_table_and_keeps_its_answers() -> None:
    key = sm2.SM2PrivateKey.generate()
    public = key.public_key
    assert public.point not in sm2._tables
    for i in range(sm2._TABLE_AFTER_USES + 3):
        message = b"licence %d" % i
        signature = key.sign(message)
        assert public.verify(signature, message)
        assert not public.verify(signature, message + b".")
        assert not public.verify(signature, message, ident=b"another id")
    assert public.point in sm2._tables


def test_one_shot_keys_never_get_a_table() -> None:
    """A CSR's key is verified once: it must not count towards (or profit from) a table."""
    key = sm2.SM2PrivateKey.generate()
    signature = key.sign(b"csr")
    for _ in range(sm2._TABLE_AFTER_USES * 2):
        assert key.public_key.verify(signature, b"csr", one_shot=True)
    assert key.public_key.point not in sm2._tables and key.public_key.point not in sm2._uses
