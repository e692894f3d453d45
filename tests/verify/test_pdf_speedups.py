"""The fast hex-string reader behaves exactly like pyHanko's own."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.misc import PdfStreamError

from tests.fixtures import examples
from verify import pdf_speedups

pieces = st.lists(st.sampled_from([b"0", b"7", b"a", b"F", b" ", b"\n", b"\r", b"\t", b"\x00", b"\x0c", b"g", b"<"]),
                  max_size=200)  # fmt: skip


def _run(reader: object, data: bytes) -> tuple[str, object, int]:
    stream = io.BytesIO(data)
    try:
        value = reader(stream)  # type: ignore[operator]
    except PdfStreamError:
        return "error", None, -1
    content = str(value) if isinstance(value, str) else bytes(value)
    return "ok", (type(value).__name__, content), stream.tell()


@settings(max_examples=examples(500), deadline=None)
@given(pieces, st.binary(max_size=20), st.booleans())
def test_same_as_pyhankos_reader(body: list[bytes], tail: bytes, closed: bool) -> None:
    data = b"<" + b"".join(body) + (b">" if closed else b"") + tail
    assert _run(pdf_speedups.read_hex_string_from_stream, data) == _run(pdf_speedups.ORIGINAL, data)


def test_long_strings_span_chunks() -> None:
    payload = bytes(range(256)) * 600  # 150 KB: more than one read
    data = b"<" + payload.hex().encode() + b">rest"
    stream = io.BytesIO(data)
    value = pdf_speedups.read_hex_string_from_stream(stream)
    assert bytes(value) == payload and stream.read() == b"rest"  # binary: a ByteStringObject
    with pytest.raises(PdfStreamError):
        pdf_speedups.read_hex_string_from_stream(io.BytesIO(b"<" + payload.hex().encode()))


def test_certificates_are_interned_by_their_der() -> None:
    from asn1crypto import x509

    from gm import sm2

    cert_der = _self_signed(sm2.SM2PrivateKey.generate())
    first, second = x509.Certificate.load(cert_der), x509.Certificate.load(cert_der)
    assert pdf_speedups.intern_certificate(first) is first
    assert pdf_speedups.intern_certificate(second) is first  # same DER: the parse already made
    other = x509.Certificate.load(_self_signed(sm2.SM2PrivateKey.generate()))
    assert pdf_speedups.intern_certificate(other) is other


def _self_signed(key: object) -> bytes:
    from datetime import UTC, datetime, timedelta

    from asn1crypto import x509

    from gm import sm2

    assert isinstance(key, sm2.SM2PrivateKey)
    name = x509.Name.build({"common_name": "intern test"})
    now = datetime.now(UTC).replace(microsecond=0)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": 1,
            "signature": {"algorithm": "sm2_sm3"},
            "issuer": name,
            "validity": {
                "not_before": x509.Time(name="utc_time", value=now),
                "not_after": x509.Time(name="utc_time", value=now + timedelta(days=1)),
            },
            "subject": name,
            "subject_public_key_info": key.public_key.spki(),
        }
    )
    return x509.Certificate(
        {
            "tbs_certificate": tbs,
            "signature_algorithm": {"algorithm": "sm2_sm3"},
            "signature_value": key.sign(tbs.dump()),
        }
    ).dump()


def test_revocation_data_is_parsed_once_per_der() -> None:
    from asn1crypto import crl, x509

    encoded = crl.CertificateList(
        {
            "tbs_cert_list": {
                "version": "v2",
                "signature": {"algorithm": "sm2_sm3"},
                "issuer": x509.Name.build({"common_name": "x"}),
                "this_update": crl.Time(name="utc_time", value=_now()),
            },
            "signature_algorithm": {"algorithm": "sm2_sm3"},
            "signature": b"\x30\x00",
        }
    ).dump()
    first = pdf_speedups.load_interned(crl.CertificateList, encoded)
    assert pdf_speedups.load_interned(crl.CertificateList, bytearray(encoded)) is first
    assert first.dump() == encoded


def _now() -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0)
