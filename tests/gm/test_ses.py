"""SES structures: real vendor seals parse and verify; what we build round-trips through DER."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from gm import oids, ses, sm2
from tests.fixtures import examples

INTEROP = Path(__file__).resolve().parents[2].parent / "shared" / "interop" / "ofd"


def _vendor_blobs(name: str) -> list[tuple[str, bytes]]:
    path = INTEROP / name
    if not path.exists():
        pytest.fail(f"interop sample {path} missing: CI keeps ../shared beside the checkout")
    with zipfile.ZipFile(path) as package:
        return [(n, package.read(n)) for n in package.namelist() if n.endswith(("SignedValue.dat", ".esl"))]


def _public(cert_der: bytes) -> sm2.SM2PublicKey:
    return sm2.SM2PublicKey.from_spki(x509.Certificate.load(cert_der).public_key.dump())


@pytest.mark.parametrize("sample", ["1.ofd", "zsbk.ofd", "999.ofd"])
def test_vendor_v4_signatures_parse_and_verify(sample: str) -> None:
    blobs = [b for n, b in _vendor_blobs(sample) if n.endswith("SignedValue.dat")]
    assert blobs
    for der in blobs:
        signature = ses.parse_ses_signature(der)
        assert signature.version == 4 and signature.seal.version == 4
        seal = signature.seal
        assert seal.signature_algorithm == oids.SM2_WITH_SM3
        assert _public(seal.maker_cert).verify(seal.signature, seal.signed_bytes)
        assert _public(signature.signer_cert).verify(signature.signature, signature.signed_bytes)
        assert seal.cert_list_type == 1 and signature.signer_cert in seal.certs
        assert seal.valid_start < seal.valid_end
        # tampered twin: one bit of the signed part
        flipped = bytearray(signature.signed_bytes)
        flipped[-3] ^= 1
        assert not _public(signature.signer_cert).verify(signature.signature, bytes(flipped))


def test_vendor_v4_details() -> None:
    (der,) = [b for n, b in _vendor_blobs("1.ofd") if n.endswith("SignedValue.dat")]
    signature = ses.parse_ses_signature(der)
    assert signature.time_info == datetime(2020, 7, 23, 13, 9, 7, tzinfo=UTC)
    assert signature.property_info == "/Doc_0/Signs/Sign_0/Signature.xml"
    assert signature.seal.name == "国家税务总局浙江省税务局"
    assert signature.seal.vendor_id == "GOMAIN" and signature.seal.picture_type == "ofd"
    assert len(signature.data_hash) == 32


def test_vendor_v1_seal_parses_and_its_maker_signature_verifies() -> None:
    blobs = dict(_vendor_blobs("n.ofd"))
    seal_der = next(b for n, b in blobs.items() if n.endswith(".esl"))
    seal = ses.parse_seal(seal_der)
    assert seal.version == 1 and seal.vendor_id == "dms360.cn" and seal.picture_type == "PNG"
    assert seal.picture.startswith(b"\x89PNG")
    assert _public(seal.maker_cert).verify(seal.signature, seal.signed_bytes)
    signature = ses.parse_ses_signature(next(b for n, b in blobs.items() if n.endswith("SignedValue.dat")))
    assert signature.version == 1 and signature.seal.es_id == seal.es_id
    assert isinstance(signature.time_info, bytes) and signature.time_info.startswith(b"2020-01-25")


@pytest.mark.parametrize("junk", [b"", b"\x30\x00", b"\x04\x02ab", b"\x30\x03\x02\x01\x01", b"\x30\x80\x00\x00"])
def test_garbage_is_a_format_error(junk: bytes) -> None:
    with pytest.raises(ses.SESFormatError):
        ses.parse_seal(junk)
    with pytest.raises(ses.SESFormatError):
        ses.parse_ses_signature(junk)


def _seal(**overrides: object) -> bytes:
    key = sm2.SM2PrivateKey.generate()
    fields: dict[str, object] = {
        "es_id": "37010000000001",
        "seal_type": 1,
        "name": "济南市市场监督管理局",
        "certs": [b"\x30\x03\x02\x01\x01"],
        "create_date": datetime(2026, 1, 1, tzinfo=UTC),
        "valid_start": datetime(2026, 1, 1, tzinfo=UTC),
        "valid_end": datetime(2029, 1, 1, tzinfo=UTC),
        "picture_type": "png",
        "picture": b"\x89PNG....",
        "width_mm": 42,
        "height_mm": 42,
    }
    fields.update(overrides)
    info = ses.build_seal_info(**fields)  # type: ignore[arg-type]
    return ses.assemble_seal(info, b"maker-cert", key.sign(info))


dates = st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(9999, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)
ia5 = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=examples(150), deadline=None)
@given(
    es_id=ia5,
    seal_type=st.integers(0, 2**31),
    name=st.text(max_size=60),
    certs=st.one_of(st.none(), st.lists(st.binary(max_size=200), max_size=4)),
    digests=st.lists(st.tuples(st.sampled_from(["sm3", "sha256"]), st.binary(min_size=32, max_size=32)), max_size=3),
    create=dates,
    start=dates,
    end=dates,
    picture=st.binary(max_size=300),
    width=st.integers(0, 500),
    height=st.integers(0, 500),
    extension=st.booleans(),
)
def test_built_seals_round_trip(
    es_id: str,
    seal_type: int,
    name: str,
    certs: list[bytes] | None,
    digests: list[tuple[str, bytes]],
    create: datetime,
    start: datetime,
    end: datetime,
    picture: bytes,
    width: int,
    height: int,
    extension: bool,
) -> None:
    key = sm2.SM2PrivateKey.generate()
    extensions = [("1.2.156.10197.6.7.2.2.1", False, b"2.1")] if extension else None
    info = ses.build_seal_info(
        es_id=es_id,
        seal_type=seal_type,
        name=name,
        certs=certs,
        cert_digests=None if certs is not None else digests,
        create_date=create,
        valid_start=start,
        valid_end=end,
        picture_type="png",
        picture=picture,
        width_mm=width,
        height_mm=height,
        extensions=extensions,
    )
    der = ses.assemble_seal(info, b"maker", key.sign(info))
    seal = ses.parse_seal(der)
    assert (seal.version, seal.header_version, seal.vendor_id) == (4, 4, ses.VENDOR_ID)
    assert (seal.es_id, seal.seal_type, seal.name) == (es_id, seal_type, name)
    if certs is not None:
        assert seal.cert_list_type == 1 and seal.certs == tuple(certs)
    else:
        assert seal.cert_list_type == 2 and seal.cert_digests == tuple(digests)
    assert (seal.create_date, seal.valid_start, seal.valid_end) == (create, start, end)
    assert (seal.picture, seal.width_mm, seal.height_mm) == (picture, width, height)
    assert seal.signed_bytes == info and seal.der == der
    assert seal.extensions == tuple(extensions or ())
    assert key.public_key.verify(seal.signature, seal.signed_bytes)
    # and a seal signature over it
    tbs = ses.build_tbs_sign(seal_der=der, time_info=create, data_hash=b"\x01" * 32, property_info="doc.pdf")
    signature = ses.parse_ses_signature(ses.assemble_ses_signature(tbs, b"signer", key.sign(tbs)))
    assert signature.seal == seal and signature.signed_bytes == tbs and signature.data_hash == b"\x01" * 32
    assert key.public_key.verify(signature.signature, signature.signed_bytes)


def test_build_requires_exactly_one_cert_list() -> None:
    with pytest.raises(ValueError, match="either"):
        _seal(certs=None)
    with pytest.raises(ValueError, match="either"):
        _seal(cert_digests=[("sm3", b"x" * 32)])


def test_v5_seal_with_timestamp_is_read() -> None:
    """GM/T 0031-2025 adds SESeal.timeStamp [0]: a v4 body plus the maker's timestamp token."""
    v4 = ses.SESeal.load(_seal())
    token = b"\x30\x03\x02\x01\x05"  # stands in for a TimeStampToken: the structure is what is tested
    v5 = ses.SESeal(
        {
            "seal_info": v4["seal_info"],
            "cert": v4["cert"],
            "sign_alg_id": v4["sign_alg_id"],
            "signed_value": v4["signed_value"],
            "time_stamp": token,
        }
    ).dump()
    seal = ses.parse_seal(v5)
    assert seal.version == 5 and seal.time_stamp == token
    assert seal.signed_bytes == v4["seal_info"].dump() and seal.name == "济南市市场监督管理局"
    assert ses.parse_seal(v4.dump()).version == 4 and ses.parse_seal(v4.dump()).time_stamp is None
