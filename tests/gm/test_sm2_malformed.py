"""Malformed SM2 keys and signatures are refused with our exception types; verify never raises."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import algos, core, keys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from gm import sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from tests.fixtures import examples, flip

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


def _spki(algorithm: bytes, point: bytes) -> bytes:
    return _seq(algorithm, b"\x03" + bytes([len(point) + 1]) + b"\x00" + point)


@pytest.mark.parametrize(
    "signature",
    ids=["int-tag-r", "int-tag-s", "zero-length-r", "seq-length-short", "seq-length-long", "r-33-bytes>=n", "n-ff"],
    argvalues=[
        _seq(b"\x03\x01\x05", _int(6)),  # BIT STRING for r
        _seq(_int(5), b"\x04\x01\x06"),  # OCTET STRING for s
        _seq(b"\x02\x00", _int(6)),
        b"\x30" + bytes([len(GOOD) - 3]) + GOOD[2:],
        b"\x30" + bytes([len(GOOD) - 1]) + GOOD[2:],
        _seq(_int(0, b"\x00" + (sm2.N + 1).to_bytes(32, "big")), _int(5)),
        _seq(_int(0, b"\x00" + b"\xff" * 32), _int(5)),
    ],
)
def test_more_malformed_signatures(signature: bytes) -> None:
    with pytest.raises(sm2.InvalidSignatureEncoding):
        sm2.decode_signature(signature)
    assert KEY.public_key.verify(signature, MESSAGE) is False


@pytest.mark.parametrize("bad", ["text", 12345, None, [1, 2]], ids=["str", "int", "none", "list"])
def test_decode_signature_non_bytes(bad: object) -> None:
    with pytest.raises(sm2.InvalidSignatureEncoding):
        sm2.decode_signature(bad)  # type: ignore[arg-type]


def test_boundary_values_accepted() -> None:
    """The extremes that are valid: r = s = 1, r = s = n-1 (33-byte INTEGER with a leading zero)."""
    for r, s in ((1, 1), (sm2.N - 1, sm2.N - 1), (1, sm2.N - 1)):
        der = sm2.encode_signature(r, s)
        assert sm2.decode_signature(der) == (r, s)
        assert sm2.decode_signature(bytearray(der)) == (r, s)  # type: ignore[arg-type]
        assert KEY.public_key.verify(der, MESSAGE) is False  # well formed, but not a signature by KEY


def test_scalar_boundaries() -> None:
    one = sm2.SM2PrivateKey.from_scalar((1).to_bytes(32, "big"))
    assert one.public_key.point == b"\x04" + sm2.GX.to_bytes(32, "big") + sm2.GY.to_bytes(32, "big")
    top = sm2.SM2PrivateKey.from_scalar((sm2.N - 2).to_bytes(32, "big"))  # n-2: the largest SM2 allows
    assert top.public_key.verify(top.sign(MESSAGE), MESSAGE)
    assert KEY.private_scalar() and sm2.SM2PrivateKey.from_scalar(KEY.private_scalar()).public_key == KEY.public_key
    for bad in (b"", b"\x00" * 30 + b"\x05", b"\x00" * 32 + b"\x05", (sm2.N + 1).to_bytes(32, "big"), b"\xff" * 32):
        with pytest.raises(sm2.InvalidKey):
            sm2.SM2PrivateKey.from_scalar(bad)
    assert KEY.private_scalar().hex() not in repr(KEY)


def test_spki_wrong_algorithm_or_curve() -> None:
    point = KEY.public_key.point
    sm2_curve = core.ObjectIdentifier("1.2.156.10197.1.301").dump()
    ec_oid = core.ObjectIdentifier("1.2.840.10045.2.1").dump()
    rsa_oid = core.ObjectIdentifier("1.2.840.113549.1.1.1").dump()
    p256 = core.ObjectIdentifier("1.2.840.10045.3.1.7").dump()
    assert sm2.SM2PublicKey.from_spki(_spki(_seq(ec_oid, sm2_curve), point)) == KEY.public_key
    for bad in (
        _spki(_seq(ec_oid, p256), point),  # P-256 curve OID around an SM2 point
        _spki(_seq(rsa_oid, b"\x05\x00"), point),
        _spki(_seq(ec_oid, b"\x05\x00"), point),  # implicitCA
        _spki(_seq(ec_oid, sm2_curve), point[:-1] + bytes([point[-1] ^ 1])),  # off the curve
        _spki(_seq(ec_oid, sm2_curve), b"\x03" + point[1:]),  # odd prefix, uncompressed length
        KEY.public_key.spki_der() + b"\x00",  # trailing bytes
    ):
        with pytest.raises(sm2.InvalidKey):
            sm2.SM2PublicKey.from_spki(bad)


def test_spki_ec_without_parameters_is_invalid_key() -> None:
    der = keys.PublicKeyInfo({"algorithm": {"algorithm": "ec"}, "public_key": KEY.public_key.point}).dump()
    with pytest.raises(sm2.InvalidKey):
        sm2.SM2PublicKey.from_spki(der)


def test_verify_accepts_bytearray_signature() -> None:
    # decode_signature explicitly accepts bytearray; verify answers too (found by a helper's test)
    assert KEY.public_key.verify(bytearray(GOOD), MESSAGE) is True  # type: ignore[arg-type]


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(0, len(GOOD) - 1), st.integers(1, 255))
def test_mutated_good_signature(offset: int, xor: int) -> None:
    """Every single-byte mutation of a valid signature: strict decode or refusal, and never a valid signature."""
    mutated = bytearray(GOOD)
    mutated[offset] ^= xor
    data = bytes(mutated)
    try:
        r, s = sm2.decode_signature(data)
    except sm2.InvalidSignatureEncoding:
        pass
    else:
        assert sm2.encode_signature(r, s) == data
    assert KEY.public_key.verify(data, MESSAGE) is False


def test_truncated_spki_raises_only_invalid_key() -> None:
    good = KEY.public_key.spki_der()
    for cut in range(len(good)):
        with pytest.raises(sm2.InvalidKey):
            sm2.SM2PublicKey.from_spki(good[:cut])


def _unknown_algorithm_spki() -> bytes:
    """A well-formed SubjectPublicKeyInfo whose algorithm OID asn1crypto does not know."""
    oid = core.ObjectIdentifier("1.2.3.4").dump()
    return _spki(_seq(oid), KEY.public_key.point)


# pyhanko-certvalidator (imported by the rest of the code base, hence by this test process) patches
# asn1crypto's PublicKeyInfo so that an unknown key algorithm parses as an opaque BIT STRING. Without
# that patch asn1crypto raises KeyError from `info["algorithm"]`. gm alone must not depend on it, so
# these cases run in a fresh interpreter that imports gm and nothing else.
_CLEAN_CHECK = """
import sys
from asn1crypto import algos
from gm import sm2
from gm.signatures import verify_signature
assert "pyhanko_certvalidator" not in sys.modules
der = bytes.fromhex(sys.argv[1])
good = bytes.fromhex(sys.argv[2])
out = []
try:
    sm2.SM2PublicKey.from_spki(der)
    out.append("accepted")
except sm2.InvalidKey:
    out.append("InvalidKey")
except Exception as exc:
    out.append(type(exc).__name__)
try:
    out.append(repr(verify_signature(der, algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"}), b"0", b"m")))
except Exception as exc:
    out.append(type(exc).__name__)
bad = set()
for offset in range(len(good)):
    for xor in range(1, 256):
        mutated = bytearray(good)
        mutated[offset] ^= xor
        try:
            key = sm2.SM2PublicKey.from_spki(bytes(mutated))
            assert len(key.point) == 65
        except sm2.InvalidKey:
            pass
        except Exception as exc:
            bad.add(type(exc).__name__)
out.append(",".join(sorted(bad)) or "-")
print(" ".join(out))
"""


def _clean_interpreter_results() -> list[str]:
    root = Path(__file__).resolve().parents[2]
    args = [_unknown_algorithm_spki().hex(), KEY.public_key.spki_der().hex()]
    result = subprocess.run(
        [sys.executable, "-c", _CLEAN_CHECK, *args], capture_output=True, check=True, cwd=root, timeout=120
    )
    return result.stdout.decode().split()


# Found by CI: for some random keys one single-byte mutation (the BIT STRING length 0x42 -> 0x00) still
# parses, and asn1crypto then indexes the empty BIT STRING. Kept as a fixed case so it cannot hide again.
_EMPTY_BIT_STRING_SPKI = bytes.fromhex(
    "3059301306072a8648ce3d020106082a811ccf5501822d030000041aa478e9fb3ab01078a63d279493ca3256f1333a9b47a7b1"
    "6114827a1f69b7ddd34880114f3920248a4a8c26ef7d592cc2957c456fce72bc248140d9b10c1439"
)


def test_empty_public_key_bit_string_is_invalid_key() -> None:
    with pytest.raises(sm2.InvalidKey, match="empty public key"):
        sm2.SM2PublicKey.from_spki(_EMPTY_BIT_STRING_SPKI)
    sm2_alg = algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
    assert verify_signature(_EMPTY_BIT_STRING_SPKI, sm2_alg, GOOD, MESSAGE) is False


def test_unknown_spki_algorithm_in_this_process() -> None:
    """With pyhanko-certvalidator's patch loaded (as in the application) the answers are clean."""
    with pytest.raises(sm2.InvalidKey):
        sm2.SM2PublicKey.from_spki(_unknown_algorithm_spki())
    sm2_alg = algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
    assert verify_signature(_unknown_algorithm_spki(), sm2_alg, GOOD, MESSAGE) is False
    good = KEY.public_key.spki_der()
    for offset in range(len(good)):  # every single-byte mutation: about 23,000 cases, one second
        for xor in range(1, 256):
            mutated = bytearray(good)
            mutated[offset] ^= xor
            try:
                key = sm2.SM2PublicKey.from_spki(bytes(mutated))
            except sm2.InvalidKey:
                continue
            assert len(key.point) == 65 and key.point[0] == 4  # accepted only as a real SM2 point


def test_unknown_spki_algorithm_in_gm_alone() -> None:
    """from_spki → InvalidKey, verify_signature → False, and no single-byte mutation escapes as another error
    (xor 0x16 into the algorithm OID's length byte makes the OID swallow the curve, an unknown algorithm)."""
    assert _clean_interpreter_results() == ["InvalidKey", "False", "-"]


def test_verify_never_raises_on_odd_inputs() -> None:
    public = KEY.public_key
    for signature in (b"", b"\x30", b"\x30\x00", b"\x00" * 72, b"\xff" * 73, GOOD * 2, flip(GOOD, 5)):
        assert public.verify(signature, MESSAGE) is False
        assert public.verify_digest(signature, public.digest(MESSAGE)) is False
    assert public.verify(GOOD, MESSAGE, b"x" * 100) is False
    with pytest.raises(ValueError, match="8191"):
        public.verify(GOOD, MESSAGE, b"x" * (sm2.MAX_ID_BYTES + 1))


def test_verify_signature_custom_id_and_unknown_algorithms() -> None:
    sm2_alg = algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
    spki = KEY.public_key.spki_der()
    custom = KEY.sign(MESSAGE, b"alice@example.cn")
    assert verify_signature(spki, sm2_alg, custom, MESSAGE, sm2_id=b"alice@example.cn")
    assert not verify_signature(spki, sm2_alg, custom, MESSAGE)
    assert not verify_signature(spki, sm2_alg, b"garbage", MESSAGE)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_spki = p256.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    assert not verify_signature(p256_spki, algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}), b"junk", MESSAGE)
    assert not verify_signature(p256_spki, algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}), signature, MESSAGE)
    for unknown in ("1.2.3.4", "sha3_256_ecdsa"):
        with pytest.raises(UnsupportedSignatureAlgorithm):
            verify_signature(p256_spki, algos.SignedDigestAlgorithm({"algorithm": unknown}), signature, MESSAGE)


def test_verify_signature_pss_without_parameters() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    spki = p256.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    signature = p256.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
    pss = algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss"})
    with contextlib.suppress(UnsupportedSignatureAlgorithm):
        assert verify_signature(spki, pss, signature, MESSAGE) is False
