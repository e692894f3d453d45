"""The built-in RFC 3161 TSA and PAdES B-T / B-LT: checked by `openssl ts`, `openssl pkeyutl` and pyHanko."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext

from ca.authority import CertificateAuthorityService
from gm import oids
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller, SigningService
from signing.tsa import SIGNATURE_TIMESTAMP, TSA_POLICY, TimestampAuthority, TimeStampResp, digest
from tests.fixtures import flip, make_pdf, openssl, pem
from verify.sm2_validator import SM2SignatureValidator


@pytest.fixture(scope="module")
def tsa(seal_service: SealService) -> TimestampAuthority:
    return TimestampAuthority(seal_service.db, seal_service.custody, seal_service.ca)


@pytest.fixture(scope="module")
def signing(seal_service: SealService, tsa: TimestampAuthority) -> SigningService:
    return SigningService(seal_service.db, seal_service, tsa=tsa)


def _query(tmp: Path, algorithm: str) -> bytes:
    (tmp / "data.txt").write_bytes(b"licence 2026-000123")
    openssl("ts", "-query", "-data", "data.txt", f"-{algorithm}", "-cert", "-out", "q.tsq", cwd=tmp)
    return (tmp / "q.tsq").read_bytes()


def test_openssl_ts_verifies_a_p256_token(tsa: TimestampAuthority, tmp_path: Path) -> None:
    reply = tsa.respond(_query(tmp_path, "sha256"))
    (tmp_path / "r.tsr").write_bytes(reply)
    unit = tsa.unit("p256")
    (tmp_path / "chain.pem").write_bytes(b"".join(pem(c) for c in unit.chain))
    (tmp_path / "tsa.pem").write_bytes(pem(unit.certificate_der))
    args = ("ts", "-verify", "-data", "data.txt", "-in", "r.tsr", "-CAfile", "chain.pem", "-untrusted", "tsa.pem")
    ok = openssl(*args, cwd=tmp_path, check=False)
    assert ok.returncode == 0 and b"Verification: OK" in ok.stdout, ok.stdout + ok.stderr
    text = openssl("ts", "-reply", "-in", "r.tsr", "-text", cwd=tmp_path).stdout.decode()
    assert "Status: Granted." in text and f"Policy OID: {TSA_POLICY}" in text and "Nonce:" in text
    (tmp_path / "data.txt").write_bytes(b"licence 2026-000124")  # tampered twin: other data
    assert openssl(*args, cwd=tmp_path, check=False).returncode != 0


def test_sm2_token_signature_verifies_with_pkeyutl(tsa: TimestampAuthority, tmp_path: Path) -> None:
    reply = TimeStampResp.load(tsa.respond(_query(tmp_path, "sm3")))
    assert reply["status"]["status"].native == "granted"
    signed = reply["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == "sm3"
    assert info["message_imprint"]["hashed_message"].native == digest("sm3", b"licence 2026-000123")
    signer = signed["signer_infos"][0]
    assert signer["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
    attrs = b"\x31" + signer["signed_attrs"].dump()[1:]
    (tmp_path / "attrs.der").write_bytes(attrs)
    (tmp_path / "sig.bin").write_bytes(signer["signature"].native)
    (tmp_path / "pub.pem").write_bytes(pem(tsa.unit("sm2").certificate.public_key.dump(), "PUBLIC KEY"))

    def verify() -> bool:
        result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "attrs.der",
                         "-sigfile", "sig.bin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
                         cwd=tmp_path, check=False)  # fmt: skip
        return result.returncode == 0

    assert verify()
    (tmp_path / "attrs.der").write_bytes(flip(attrs, -5))
    assert not verify()
    # the messageDigest attribute is OpenSSL's SM3 of the TSTInfo
    (tmp_path / "tst.der").write_bytes(signed["encap_content_info"]["content"].contents)
    sm3 = openssl("dgst", "-sm3", "-binary", "tst.der", cwd=tmp_path).stdout
    assert sm3 == next(a["values"][0].native for a in signer["signed_attrs"] if a["type"].native == "message_digest")


@pytest.mark.parametrize("request_der", [b"", b"\x30\x00", b"garbage", b"\x30" * 20000])
def test_malformed_requests_are_rejections(tsa: TimestampAuthority, request_der: bytes) -> None:
    reply = TimeStampResp.load(tsa.respond(request_der))
    assert reply["status"]["status"].native == "rejection"
    assert reply["time_stamp_token"].native is None


def test_wrong_imprint_length_and_policy_are_rejected(tsa: TimestampAuthority) -> None:
    short = tsp.TimeStampReq(
        {"version": "v1", "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x" * 5}}
    ).dump()
    assert TimeStampResp.load(tsa.respond(short))["status"]["status"].native == "rejection"
    policy = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"x" * 32},
            "req_policy": "1.2.3.4",
        }
    ).dump()
    reply = TimeStampResp.load(tsa.respond(policy))
    assert (
        reply["status"]["status"].native == "rejection" and "unaccepted_policy" in reply["status"]["fail_info"].native
    )


def _sealed(signing: SigningService, family: str, level: str) -> bytes:
    caller = Caller(role="issuer", name="test", seal_ids=("*",))
    return signing.seal_pdf(
        make_pdf(), seal_id=f"demo-370000-{family}", caller=caller, placement=Placement(), level=level
    ).pdf


def _context(ca_service: CertificateAuthorityService, family: str) -> ValidationContext:
    return ValidationContext(
        trust_roots=[ca_service.ca_certificate(f"cn-root-{family}")],
        allow_fetching=False,
        signature_validator=SM2SignatureValidator(),
    )


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_pades_b_t_timestamp_validates(
    signing: SigningService, ca_service: CertificateAuthorityService, family: str
) -> None:
    pdf = _sealed(signing, family, "B-T")
    embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    signer = embedded.signer_info
    (token,) = [a["values"][0] for a in signer["unsigned_attrs"] if a["type"].dotted == SIGNATURE_TIMESTAMP]
    info = token["content"]["encap_content_info"]["content"].parsed
    md = "sm3" if family == "sm2" else "sha256"
    assert info["message_imprint"]["hashed_message"].native == digest(md, signer["signature"].native)
    status = validate_pdf_signature(
        embedded, _context(ca_service, family), ts_validation_context=_context(ca_service, family)
    )
    assert status.bottom_line, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.intact
    assert status.timestamp_validity.valid and status.timestamp_validity.trusted


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_pades_b_lt_validates_offline_from_the_dss(
    signing: SigningService, ca_service: CertificateAuthorityService, family: str, tmp_path: Path
) -> None:
    pdf = _sealed(signing, family, "B-LT")
    reader = PdfFileReader(io.BytesIO(pdf))
    dss = reader.root["/DSS"]
    assert len(dss["/Certs"]) >= 4 and len(dss["/OCSPs"]) == 2 and len(dss["/CRLs"]) >= 2
    # offline, hard-fail: every certificate on both paths (signer and TSA) must be proven unrevoked by
    # the DSS alone; nothing may be fetched
    context = DocumentSecurityStore.read_dss(reader).as_validation_context(
        {
            "trust_roots": [ca_service.ca_certificate(f"cn-root-{family}")],
            "signature_validator": SM2SignatureValidator(),
            "allow_fetching": False,
            "revocation_mode": "hard-fail",
        }
    )
    status = validate_pdf_signature(reader.embedded_signatures[0], context, ts_validation_context=context)
    assert status.bottom_line, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted
    # twin: the same check without the DSS fails (no revocation information at all)
    bare = ValidationContext(
        trust_roots=[ca_service.ca_certificate(f"cn-root-{family}")],
        allow_fetching=False,
        revocation_mode="hard-fail",
        signature_validator=SM2SignatureValidator(),
        crls=[],
        ocsps=[],
    )
    assert not validate_pdf_signature(reader.embedded_signatures[0], bare).bottom_line
    (tmp_path / "lt.pdf").write_bytes(pdf)
    check = subprocess.run(["qpdf", "--check", str(tmp_path / "lt.pdf")], capture_output=True, timeout=60, check=False)
    assert check.returncode == 0


def test_tsa_over_http(seal_service: SealService, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.context import Context
    from api.settings import Settings

    settings = Settings(home=tmp_path, database_url=seal_service.db.url, public_url="http://127.0.0.1:8000",
                        keystore="local", passphrase="test-passphrase", max_upload_bytes=1 << 20)  # fmt: skip
    context = Context(settings=settings, db=seal_service.db, custody=seal_service.custody, ca=seal_service.ca)
    with TestClient(create_app(context)) as client:
        reply = client.post("/v1/tsa", content=_query(tmp_path, "sm3"),
                            headers={"Content-Type": "application/timestamp-query"})  # fmt: skip
        assert reply.headers["content-type"] == "application/timestamp-reply"
        parsed = TimeStampResp.load(reply.content)
        assert parsed["status"]["status"].native == "granted"
        token = parsed["time_stamp_token"]
        assert isinstance(token, cms.ContentInfo)
        assert token["content"]["signer_infos"][0]["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
        assert client.post("/v1/tsa", content=b"x" * 20000).status_code == 413
        assert client.post("/v1/tsa?family=rsa", content=b"x").status_code == 400
