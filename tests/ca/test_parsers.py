"""Garbage in, a CAError out: hypothesis drives the CSR and OCSP parsers and the whole issuance path."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from pathlib import Path

import pytest
from asn1crypto import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ca.authority import CertificateAuthorityService
from ca.csr import MAX_CSR_BYTES, parse_csr
from ca.errors import CAError, CSRMalformed, CSRSignatureInvalid, KeyAlgorithmNotAllowed, OCSPMalformed
from ca.ocsp import MAX_REQUEST_BYTES, parse_request
from store.models import Certificate, Event
from tests.fixtures import ORG_SUBJECT, examples, make_csr

_DIR = Path(tempfile.mkdtemp(prefix="csr-"))
SM2_CSR = make_csr(_DIR, algorithm="sm2", subject=ORG_SUBJECT)
P256_CSR = make_csr(_DIR, algorithm="p256", subject=ORG_SUBJECT)


def _der(pem_bytes: bytes) -> bytes:
    from asn1crypto import pem

    return pem.unarmor(pem_bytes)[2]


CSR_ERRORS = (CSRMalformed, CSRSignatureInvalid, KeyAlgorithmNotAllowed)


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=2048))
def test_parse_csr_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_csr(data)
    except CSR_ERRORS:
        return
    pytest.fail("arbitrary bytes parsed as a valid CSR")


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        if not data:
            data = bytearray(b"\x30")
    return bytes(data)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(mutated(_der(SM2_CSR)), mutated(_der(P256_CSR))))
def test_parse_csr_on_mutated_requests(data: bytes) -> None:
    try:
        parsed = parse_csr(data)
    except CSR_ERRORS:
        return
    # a mutation that still parses must still prove possession (e.g. it only touched a tolerated byte)
    assert parsed.key_algorithm in ("sm2", "p256")


def test_csr_size_limit_and_pem_garbage() -> None:
    with pytest.raises(CSRMalformed):
        parse_csr(b"0" * (MAX_CSR_BYTES + 1))
    with pytest.raises(CSRMalformed):
        parse_csr("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----")
    with pytest.raises(CSRMalformed):
        parse_csr("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
    assert parse_csr(SM2_CSR.decode()).key_algorithm == "sm2"
    assert parse_csr(_der(P256_CSR)).key_algorithm == "p256"


def test_csr_signed_with_empty_sm2_id_is_accepted(tmp_path: Path) -> None:
    # OpenSSL `req` without -sigopt distid: signs with the empty ID: still a valid proof of possession
    assert (
        parse_csr(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT, sigopt_distid=False)).key_algorithm == "sm2"
    )


@settings(max_examples=examples(300), deadline=None)
@given(st.binary(max_size=1024))
def test_parse_ocsp_request_on_arbitrary_bytes(data: bytes) -> None:
    with contextlib.suppress(OCSPMalformed):
        parse_request(data)


def _valid_request() -> bytes:
    return ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha1"},
                            "issuer_name_hash": secrets.token_bytes(20),
                            "issuer_key_hash": secrets.token_bytes(20),
                            "serial_number": 1234567,
                        }
                    }
                ],
                "request_extensions": [{"extn_id": "nonce", "extn_value": b"\x04\x10" + secrets.token_bytes(16)}],
            }
        }
    ).dump()


@settings(max_examples=examples(300), deadline=None)
@given(mutated(_valid_request()))
def test_parse_ocsp_request_on_mutated_requests(data: bytes) -> None:
    with contextlib.suppress(OCSPMalformed):
        parse_request(data)


def test_ocsp_limits() -> None:
    with pytest.raises(OCSPMalformed):
        parse_request(b"")
    with pytest.raises(OCSPMalformed):
        parse_request(b"\x30" * (MAX_REQUEST_BYTES + 1))
    assert (
        parse_request(_valid_request())["tbs_request"]["request_list"][0]["req_cert"]["serial_number"].native == 1234567
    )


def _rows(service: CertificateAuthorityService) -> tuple[int, int]:
    with service.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Certificate)) or 0,
            session.scalar(select(func.count()).select_from(Event)) or 0,
        )


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated(_der(SM2_CSR)), profile=st.sampled_from(["org-seal", "person", "tls-server", "nope"]))
def test_issuance_of_mutated_csrs_errs_cleanly_and_writes_nothing(
    ca_service: CertificateAuthorityService, data: bytes, profile: str
) -> None:
    before = _rows(ca_service)
    try:
        ca_service.issue(data, profile, "cn-370000-sm2")
    except CAError:
        assert _rows(ca_service) == before
        return
    assert _rows(ca_service) == (before[0] + 1, before[1] + 1)


def test_service_ocsp_on_garbage_is_malformed(ca_service: CertificateAuthorityService) -> None:
    with pytest.raises(OCSPMalformed):
        ca_service.ocsp(b"\x30\x00")


def test_malformed_signature_algorithm_is_csr_malformed() -> None:
    """Found by hypothesis: an AlgorithmIdentifier whose OID tag is corrupted used to escape as a ValueError."""
    der = bytearray(_der(SM2_CSR))
    at = der.rindex(bytes.fromhex("06082a811ccf55018375"))  # the SM2-with-SM3 OID after the request info
    der[at] = 0x07
    with pytest.raises(CSRMalformed):
        parse_csr(bytes(der))


def test_csr_keys_are_verified_one_shot() -> None:
    """Re-submitting one CSR (a benchmark, a retrying client) must not build it an SM2 key table."""
    from gm import sm2

    for _ in range(sm2._TABLE_AFTER_USES + 2):
        request = parse_csr(SM2_CSR)
    from asn1crypto import keys

    point = bytes(keys.PublicKeyInfo.load(request.spki_der)["public_key"].native)
    assert point not in sm2._tables and point not in sm2._uses
