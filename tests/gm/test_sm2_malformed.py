"""Malformed SM2 keys and signatures are refused with our exception types; verify never raises."""

from __future__ import annotations

import contextlib

import pytest
from asn1crypto import algos
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from gm import sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from tests.fixtures import examples

KEY = sm2.SM2PrivateKey.generate()
MESSAGE = b"message"
GOOD = KEY.sign(MESSAGE)


def _int(value: int, raw: bytes | None = None) -> bytes:
    body = raw if raw is not None else value.to_bytes((value.bit_length() + 8) // 8 or 1, "big")
    return b"\x02" + bytes([len(body)]) + body


def _seq(*parts: bytes) -> bytes:
    body = b"".join(parts)
    return b"\x30" + bytes([len(body)]) + body


@pytest.mark.parametrize(
    "signature",
    ids=[
        "empty",
        "truncated",
        "trailing",
        "r0",
        "s0",
        "r=n",
        "s>n",
        "negative",
        "non-minimal",
        "set",
        "long-form",
        "one-int",
        "three-ints",
    ],
    argvalues=[
        b"",
        GOOD[:-1],
        GOOD + b"\x00",
        _seq(_int(0), _int(5)),
        _seq(_int(5), _int(0)),
        _seq(_int(sm2.N), _int(5)),
        _seq(_int(5), _int(sm2.N + 1)),
        _seq(_int(0, b"\x80" + b"\x01" * 31), _int(5)),  # negative r
        _seq(_int(0, b"\x00\x01"), _int(5)),  # non-minimal
        b"\x31" + GOOD[1:],  # SET, not SEQUENCE
        b"\x30\x81" + bytes([len(GOOD) - 2]) + GOOD[2:],  # long-form length where short is required
        _seq(_int(5)),
        _seq(_int(5), _int(6), _int(7)),
    ],
)
def test_malformed_signatures(signature: bytes) -> None:
    with pytest.raises(sm2.InvalidSignatureEncoding):
        sm2.decode_signature(signature)
    assert KEY.public_key.verify(signature, MESSAGE) is False


def test_good_signature_decodes_in_range() -> None:
    r, s = sm2.decode_signature(GOOD)
    assert 1 <= r < sm2.N and 1 <= s < sm2.N
    assert sm2.encode_signature(r, s) == GOOD


@pytest.mark.parametrize(
    "point",
    ids=["empty", "zero", "compressed", "short", "bad-prefix", "off-curve", "x=p"],
    argvalues=[
        b"",
        b"\x04" + b"\x00" * 64,  # not on the curve
        b"\x02" + KEY.public_key.point[1:33],  # compressed: refused
        KEY.public_key.point[:-1],
        b"\x05" + KEY.public_key.point[1:],
        KEY.public_key.point[:-1] + bytes([KEY.public_key.point[-1] ^ 1]),  # off the curve
        b"\x04" + sm2.P.to_bytes(32, "big") + KEY.public_key.point[33:],  # x = p
    ],
)
def test_invalid_points(point: bytes) -> None:
    with pytest.raises(sm2.InvalidKey):
        sm2.SM2PublicKey(point)


def test_spki_of_other_curve_or_garbage() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = p256.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (der, b"", b"\x30\x00", b"garbage", KEY.public_key.spki_der()[:-1]):
        with pytest.raises(sm2.InvalidKey):
            sm2.SM2PublicKey.from_spki(bad)
    assert sm2.SM2PublicKey.from_spki(KEY.public_key.spki_der()) == KEY.public_key


@pytest.mark.parametrize(
    "scalar",
    [b"\x00" * 32, sm2.N.to_bytes(32, "big"), (sm2.N - 1).to_bytes(32, "big"), b"\x01"],
    ids=["0", "n", "n-1", "short"],
)
def test_invalid_scalars(scalar: bytes) -> None:
    with pytest.raises(sm2.InvalidKey):
        sm2.SM2PrivateKey.from_scalar(scalar)


def test_signatures_are_randomised_and_ids_matter() -> None:
    assert KEY.sign(MESSAGE) != KEY.sign(MESSAGE)  # fresh CSPRNG nonce every time
    assert not KEY.public_key.verify(GOOD, MESSAGE, b"")
    with pytest.raises(ValueError, match="digest"):
        KEY.sign_digest(b"short")
    assert KEY.public_key.verify_digest(GOOD, b"short") is False


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(1, sm2.N - 1), st.integers(1, sm2.N - 1))
def test_signature_encoding_round_trip(r: int, s: int) -> None:
    assert sm2.decode_signature(sm2.encode_signature(r, s)) == (r, s)


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=80))
def test_decode_arbitrary_bytes_is_strict(data: bytes) -> None:
    try:
        r, s = sm2.decode_signature(data)
    except sm2.InvalidSignatureEncoding:
        return
    assert sm2.encode_signature(r, s) == data  # accepted only if it is the one DER encoding


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=80), st.binary(max_size=64))
def test_verify_never_raises(signature: bytes, data: bytes) -> None:
    assert KEY.public_key.verify(signature, data) is False


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=120))
def test_from_spki_raises_only_invalid_key(data: bytes) -> None:
    with contextlib.suppress(sm2.InvalidKey):
        sm2.SM2PublicKey.from_spki(data)


def test_verify_signature_dispatch() -> None:
    sm2_alg = algos.SignedDigestAlgorithm({"algorithm": "1.2.156.10197.1.501"})
    spki = KEY.public_key.spki_der()
    assert verify_signature(spki, sm2_alg, GOOD, MESSAGE)
    assert not verify_signature(spki, sm2_alg, GOOD, MESSAGE + b"!")
    ecdsa_alg = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    assert not verify_signature(spki, ecdsa_alg, GOOD, MESSAGE)  # an SM2 key signs only with SM2
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_spki = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert verify_signature(p256_spki, ecdsa_alg, signature, MESSAGE)
    assert not verify_signature(p256_spki, ecdsa_alg, signature, MESSAGE + b"!")
    assert not verify_signature(p256_spki, sm2_alg, signature, MESSAGE)
    with pytest.raises(UnsupportedSignatureAlgorithm):
        verify_signature(p256_spki, algos.SignedDigestAlgorithm({"algorithm": "md5_rsa"}), signature, MESSAGE)
