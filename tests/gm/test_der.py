"""The strict DER reader used on hot paths: agrees with asn1crypto on valid input, refuses the rest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from asn1crypto import core, keys, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from ca.certificates import key_identifier_extension
from gm import der, sm2
from tests.fixtures import examples


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_children_of_a_built_sequence_are_its_parts(parts: list[bytes]) -> None:
    encoded = der.sequence(*(der.octet_string(p) for p in parts))
    start, end = der.single(encoded, 0x30)
    found = der.children(encoded, start, end)
    assert [encoded[c:e] for _, _, c, e in found] == parts
    assert core.Sequence.load(encoded).contents == encoded[start:end]  # asn1crypto reads the same span


@settings(max_examples=examples(500), deadline=None)
@given(st.binary(max_size=64))
def test_reader_on_arbitrary_bytes_returns_in_bounds_or_raises(data: bytes) -> None:
    try:
        tag, start, end = der.read(data)
    except der.DERError:
        return
    assert 2 <= start <= end <= len(data)
    assert tag == data[0]


@pytest.mark.parametrize(
    "bad",
    [
        b"\x30\x80\x00\x00",  # indefinite length
        b"\x04\x81\x05abcde",  # long form for a short length
        b"\x04\x82\x00\x81" + b"a" * 0x81,  # leading zero in the length
        b"\x04\x05abc",  # truncated
        b"\x1f\x01\x00",  # multi-byte tag
        b"\x04",
    ],
)
def test_non_der_is_refused(bad: bytes) -> None:
    with pytest.raises(der.DERError):
        der.read(bad)


def test_single_refuses_trailing_bytes_and_wrong_tag() -> None:
    with pytest.raises(der.DERError):
        der.single(der.octet_string(b"x") + b"\x00", 0x04)
    with pytest.raises(der.DERError):
        der.single(der.octet_string(b"x"), 0x30)


def _spkis() -> list[bytes]:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    out = [
        k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for k in (p256, rsa_key)
    ]
    return [*out, sm2.SM2PrivateKey.generate().public_key.spki_der()]


@pytest.mark.parametrize("spki_der", _spkis(), ids=["p256", "rsa", "sm2"])
def test_subject_key_identifier_extension_matches_asn1crypto(spki_der: bytes) -> None:
    spki = keys.PublicKeyInfo.load(spki_der)
    expected = x509.Extension(
        {"extn_id": "key_identifier", "critical": False, "extn_value": core.OctetString(spki.sha1)}
    ).dump()
    assert key_identifier_extension(spki_der) == expected
    assert spki.sha1 == hashlib.sha1(spki["public_key"].contents[1:]).digest()
    with pytest.raises(der.DERError):
        key_identifier_extension(spki_der + b"\x00")


@settings(max_examples=examples(300), deadline=None)
@given(st.datetimes(min_value=datetime(1950, 1, 1), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_time_der_matches_asn1crypto(moment: datetime) -> None:
    from ca.certificates import time_der, to_time

    assert time_der(moment) == to_time(moment).dump()
