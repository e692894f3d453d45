"""SM2 against the OpenSSL 3 CLI in both directions: default ID, custom IDs, and tampered twins."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from asn1crypto import keys

from gm import sm2
from tests.fixtures import flip, openssl, pem

pytestmark = pytest.mark.openssl
DEFAULT = "1234567812345678"


def _openssl_verify(tmp: Path, spki_der: bytes, data: bytes, signature: bytes, distid: str = DEFAULT) -> bool:
    tag = secrets.token_hex(4)
    (tmp / f"{tag}.pub").write_bytes(pem(spki_der, "PUBLIC KEY"))
    (tmp / f"{tag}.dat").write_bytes(data)
    (tmp / f"{tag}.sig").write_bytes(signature)
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", f"{tag}.pub", "-rawin", "-in", f"{tag}.dat",
        "-sigfile", f"{tag}.sig", "-digest", "sm3", "-pkeyopt", f"distid:{distid}", check=False, cwd=tmp,
    )  # fmt: skip
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


def _openssl_key(tmp: Path) -> tuple[Path, bytes]:
    key = tmp / f"{secrets.token_hex(4)}.pem"
    openssl("genpkey", "-algorithm", "SM2", "-out", str(key))
    spki = openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER").stdout
    return key, spki


def _openssl_sign(tmp: Path, key: Path, data: bytes, distid: str = DEFAULT) -> bytes:
    data_file = tmp / f"{secrets.token_hex(4)}.dat"
    data_file.write_bytes(data)
    return openssl(
        "pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(data_file), "-digest", "sm3",
        "-pkeyopt", f"distid:{distid}",
    ).stdout  # fmt: skip


@pytest.mark.parametrize("size", [0, 1, 55, 64, 1000])
def test_ours_verified_by_openssl(tmp_path: Path, size: int) -> None:
    key = sm2.SM2PrivateKey.generate()
    data = secrets.token_bytes(size)
    signature = key.sign(data)
    spki = key.public_key.spki_der()
    assert _openssl_verify(tmp_path, spki, data, signature)
    # tampered twins: other data, other ID, other key, flipped signature
    assert not _openssl_verify(tmp_path, spki, data + b"x", signature)
    assert not _openssl_verify(tmp_path, spki, data, signature, distid="1234567812345679")
    assert not _openssl_verify(tmp_path, sm2.SM2PrivateKey.generate().public_key.spki_der(), data, signature)
    flipped = bytearray(signature)
    flipped[-1] ^= 1
    assert not _openssl_verify(tmp_path, spki, data, bytes(flipped))


def test_openssl_verified_by_us(tmp_path: Path) -> None:
    key, spki = _openssl_key(tmp_path)
    public = sm2.SM2PublicKey.from_spki(spki)
    for data in (b"", b"abc", secrets.token_bytes(777)):
        signature = _openssl_sign(tmp_path, key, data)
        assert public.verify(signature, data)
        assert not public.verify(signature, data + b"\x00")
        assert not public.verify(signature, data, b"")  # the empty ID OpenSSL assumes elsewhere
        assert not public.verify(signature, data, b"1234567812345679")


def test_custom_ids_both_directions(tmp_path: Path) -> None:
    ident = "alice@example.cn"
    ours = sm2.SM2PrivateKey.generate()
    data = b"licence 370000-2026-000001"
    assert _openssl_verify(tmp_path, ours.public_key.spki_der(), data, ours.sign(data, ident.encode()), distid=ident)
    assert not _openssl_verify(tmp_path, ours.public_key.spki_der(), data, ours.sign(data), distid=ident)
    key, spki = _openssl_key(tmp_path)
    theirs = _openssl_sign(tmp_path, key, data, distid=ident)
    assert sm2.SM2PublicKey.from_spki(spki).verify(theirs, data, ident.encode())
    assert not sm2.SM2PublicKey.from_spki(spki).verify(theirs, data)


def test_openssl_private_key_loads_into_gm(tmp_path: Path) -> None:
    key, spki = _openssl_key(tmp_path)
    pkcs8 = openssl("pkcs8", "-topk8", "-nocrypt", "-in", str(key), "-outform", "DER").stdout
    scalar = keys.PrivateKeyInfo.load(pkcs8)["private_key"].parsed["private_key"].native
    ours = sm2.SM2PrivateKey.from_scalar(scalar.to_bytes(32, "big"))
    assert ours.public_key == sm2.SM2PublicKey.from_spki(spki)
    assert _openssl_verify(tmp_path, spki, b"data", ours.sign(b"data"))
    assert repr(ours).count(format(scalar, "x")[:16]) == 0


def test_z_value_matches_openssl_digest(tmp_path: Path) -> None:
    """e = SM3(Z || M): a signature over our precomputed e verifies in OpenSSL over M."""
    key = sm2.SM2PrivateKey.generate()
    data = b"precomputed digest path"
    e = key.public_key.digest(data)
    assert _openssl_verify(tmp_path, key.public_key.spki_der(), data, key.sign_digest(e))


def test_flipped_data_byte_fails_both_directions(tmp_path: Path) -> None:
    """A tampered twin that keeps the length: one bit of one byte of the data flipped."""
    data = secrets.token_bytes(100)
    ours = sm2.SM2PrivateKey.generate()
    signature = ours.sign(data)
    spki = ours.public_key.spki_der()
    assert _openssl_verify(tmp_path, spki, data, signature)
    for offset in (0, 50, -1):
        assert not _openssl_verify(tmp_path, spki, flip(data, offset), signature)
    key, their_spki = _openssl_key(tmp_path)
    theirs = _openssl_sign(tmp_path, key, data)
    public = sm2.SM2PublicKey.from_spki(their_spki)
    assert public.verify(theirs, data)
    for offset in (0, 50, -1):
        assert not public.verify(theirs, flip(data, offset))
    assert not public.verify(flip(theirs, -1), data)


def test_openssl_rejects_wrong_distid_for_custom_id(tmp_path: Path) -> None:
    ours = sm2.SM2PrivateKey.generate()
    data = b"custom id"
    signature = ours.sign(data, b"alice@example.cn")
    spki = ours.public_key.spki_der()
    assert _openssl_verify(tmp_path, spki, data, signature, distid="alice@example.cn")
    assert not _openssl_verify(tmp_path, spki, data, signature, distid="bob@example.cn")
    assert not _openssl_verify(tmp_path, spki, data, signature)  # default ID


def test_openssl_pkey_der_private_key_scalar(tmp_path: Path) -> None:
    """`openssl pkey -outform DER` → ECPrivateKey.private_key → from_scalar: same key, both ways.

    OpenSSL 3.0 writes the RFC 5915 ECPrivateKey here, not PKCS#8 (which `-in k.pem` holds, and
    test_openssl_private_key_loads_into_gm reads through `openssl pkcs8 -topk8`).
    """
    key, spki = _openssl_key(tmp_path)
    der = openssl("pkey", "-in", str(key), "-outform", "DER").stdout
    ec_key = keys.ECPrivateKey.load(der)
    assert ec_key["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    scalar: int = ec_key["private_key"].native
    ours = sm2.SM2PrivateKey.from_scalar(scalar.to_bytes(32, "big"))
    assert ours.private_scalar() == scalar.to_bytes(32, "big")
    assert ours.public_key.point == sm2.SM2PublicKey.from_spki(spki).point
    assert ours.public_key.spki_der() == spki  # byte-identical SubjectPublicKeyInfo
    data = b"signed with the imported scalar"
    assert _openssl_verify(tmp_path, spki, data, ours.sign(data))
    assert _openssl_verify(tmp_path, spki, data, ours.sign(data, b"alice@example.cn"), distid="alice@example.cn")
    assert ours.public_key.verify(_openssl_sign(tmp_path, key, data), data)
