"""Independent acceptance: the OpenSSL 3 CLI checks our certificates, CRLs and OCSP responses.

OpenSSL 3.0 uses an empty SM2 ID wherever none can be given (DESIGN.md), so SM2 chains are checked link
by link with `-vfyopt distid:`, and SM2 CRLs / OCSP responses with `pkeyutl -rawin -digest sm3` over their
signed part. Every positive check has a tampered twin that must fail.
"""

from __future__ import annotations

import base64
import re
import secrets
from pathlib import Path

import httpx
import pytest
from asn1crypto import core, crl, ocsp, x509

from ca.authority import CertificateAuthorityService, IssuedCertificate
from store.models import CertificateAuthority
from tests.fixtures import ORG_SUBJECT, flip, make_csr, openssl, pem

pytestmark = pytest.mark.openssl

DISTID = "distid:1234567812345678"


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def _issue(
    service: CertificateAuthorityService, directory: Path, family: str, region: str = "370000"
) -> IssuedCertificate:
    csr = make_csr(directory, algorithm=family, subject=ORG_SUBJECT)
    return service.issue(csr, "org-seal", f"cn-{region}-{family}")


def _ca_der(service: CertificateAuthorityService, name: str) -> bytes:
    return service.ca_certificate(name).dump()


def _signature_offset(der: bytes) -> int:
    """Offset of a byte inside the signature BIT STRING at the end of a signed structure."""
    return len(der) - 5


def _pkeyutl_verify(directory: Path, signer_spki_der: bytes, signed: bytes, signature: bytes) -> bool:
    pub = _write(directory, f"pub-{secrets.token_hex(3)}.pem", pem(signer_spki_der, "PUBLIC KEY"))
    data = _write(directory, f"tbs-{secrets.token_hex(3)}.der", signed)
    sig = _write(directory, f"sig-{secrets.token_hex(3)}.bin", signature)
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", data, "-sigfile", sig,
        "-digest", "sm3", "-pkeyopt", DISTID, check=False,
    )  # fmt: skip
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


# -- certificates ----------------------------------------------------------------------------------


def test_p256_chain_passes_one_openssl_verify(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = _issue(ca_service, tmp_path, "p256")
    root = _write(tmp_path, "root.pem", pem(_ca_der(ca_service, "cn-root-p256")))
    regional = _write(tmp_path, "regional.pem", pem(_ca_der(ca_service, "cn-370000-p256")))
    leaf = _write(tmp_path, "leaf.pem", pem(issued.der))
    ok = openssl("verify", "-CAfile", root, "-untrusted", regional, leaf, check=False)
    assert ok.returncode == 0, ok.stderr
    assert b": OK" in ok.stdout
    # the chain we hand out is the chain OpenSSL builds
    assert issued.chain == [_ca_der(ca_service, "cn-370000-p256"), _ca_der(ca_service, "cn-root-p256")]

    tampered = _write(tmp_path, "tampered.pem", pem(flip(issued.der, _signature_offset(issued.der))))
    bad = openssl("verify", "-CAfile", root, "-untrusted", regional, tampered, check=False)
    assert bad.returncode != 0
    # a regional CA of the other region does not vouch for this leaf
    other = _write(tmp_path, "other.pem", pem(_ca_der(ca_service, "cn-530000-p256")))
    wrong = openssl("verify", "-CAfile", root, "-untrusted", other, leaf, check=False)
    assert wrong.returncode != 0


def test_sm2_chain_passes_openssl_verify_link_by_link(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = _issue(ca_service, tmp_path, "sm2", "530000")
    root = _write(tmp_path, "root.pem", pem(_ca_der(ca_service, "cn-root-sm2")))
    regional = _write(tmp_path, "regional.pem", pem(_ca_der(ca_service, "cn-530000-sm2")))
    leaf = _write(tmp_path, "leaf.pem", pem(issued.der))

    def verify(parent: str, child: str, distid: str = DISTID) -> bool:
        result = openssl("verify", "-partial_chain", "-vfyopt", distid, "-CAfile", parent, child, check=False)
        return result.returncode == 0 and b": OK" in result.stdout

    assert verify(root, root)
    assert verify(root, regional)
    assert verify(regional, leaf)

    # twins: a flipped signature bit, the wrong parent, and the empty ID OpenSSL would assume
    assert not verify(regional, _write(tmp_path, "t.pem", pem(flip(issued.der, _signature_offset(issued.der)))))
    assert not verify(root, leaf)
    assert not verify(_write(tmp_path, "o.pem", pem(_ca_der(ca_service, "cn-370000-sm2"))), leaf)
    assert not verify(regional, leaf, "distid:")


def test_sm2_certificate_fields_follow_gmt_0015(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = _issue(ca_service, tmp_path, "sm2")
    text = openssl("x509", "-in", _write(tmp_path, "leaf.pem", pem(issued.der)), "-noout", "-text").stdout.decode()
    assert "Signature Algorithm: SM2-with-SM3" in text
    assert "ASN1 OID: SM2" in text
    assert "id-ecPublicKey" in text
    assert "CRL Distribution Points" in text and "/v1/cas/cn-370000-sm2/crl" in text
    assert "OCSP - URI:http://127.0.0.1:8000/v1/ocsp" in text
    assert "CA Issuers - URI:http://127.0.0.1:8000/v1/cas/cn-370000-sm2/certificate" in text
    cert = x509.Certificate.load(issued.der)
    # SM2-with-SM3 carries no parameters (GM/T 0015)
    assert cert["signature_algorithm"]["parameters"].native is None
    assert cert.serial_number >= 2**64
    assert format(cert.serial_number, "x") == issued.serial


# -- CRLs --------------------------------------------------------------------------------------


def _crl_number(der: bytes) -> int:
    number: int = crl.CertificateList.load(der).crl_number_value.native
    return number


def test_p256_crl_passes_openssl_crl_cafile(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = _issue(ca_service, tmp_path, "p256")
    before = ca_service.current_crl("cn-370000-p256")
    ca_service.revoke(issued.serial, "keyCompromise")
    after = ca_service.current_crl("cn-370000-p256")
    assert _crl_number(after) > _crl_number(before)

    ca_file = _write(tmp_path, "ca.pem", pem(_ca_der(ca_service, "cn-370000-p256")))
    crl_file = _write(tmp_path, "crl.der", after)
    result = openssl("crl", "-inform", "DER", "-in", crl_file, "-CAfile", ca_file, "-noout", "-text", check=False)
    assert result.returncode == 0
    assert b"verify OK" in result.stderr + result.stdout
    assert issued.serial.upper().encode() in result.stdout.replace(b":", b"").upper()
    assert b"Key Compromise" in result.stdout

    # the revoked certificate fails a CRL-checked verify; a good one passes
    root = _write(tmp_path, "root.pem", pem(_ca_der(ca_service, "cn-root-p256")))
    root_crl = _write(tmp_path, "root-crl.pem", pem(ca_service.current_crl("cn-root-p256"), "X509 CRL"))
    crls = _write(tmp_path, "crls.pem", Path(root_crl).read_bytes() + pem(after, "X509 CRL"))
    leaf = _write(tmp_path, "leaf.pem", pem(issued.der))
    revoked = openssl(
        "verify", "-crl_check_all", "-CRLfile", crls, "-CAfile", root, "-untrusted", ca_file, leaf, check=False
    )
    assert revoked.returncode != 0 and b"certificate revoked" in revoked.stdout + revoked.stderr
    good = _write(tmp_path, "good.pem", pem(_issue(ca_service, tmp_path, "p256").der))
    passed = openssl(
        "verify", "-crl_check_all", "-CRLfile", crls, "-CAfile", root, "-untrusted", ca_file, good, check=False
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr

    tampered = _write(tmp_path, "tampered.der", flip(after, _signature_offset(after)))
    bad = openssl("crl", "-inform", "DER", "-in", tampered, "-CAfile", ca_file, "-noout", check=False)
    assert b"verify failure" in bad.stderr + bad.stdout or bad.returncode != 0


def test_sm2_crl_verifies_with_pkeyutl_over_tbs(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = _issue(ca_service, tmp_path, "sm2")
    first = _crl_number(ca_service.current_crl("cn-370000-sm2"))
    ca_service.revoke(issued.serial, "cessationOfOperation")
    der = ca_service.current_crl("cn-370000-sm2")
    parsed = crl.CertificateList.load(der)
    assert parsed.crl_number_value.native > first
    assert parsed["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert issued.certificate.serial_number in {
        entry["user_certificate"].native for entry in parsed["tbs_cert_list"]["revoked_certificates"]
    }
    this_update = parsed["tbs_cert_list"]["this_update"].native
    next_update = parsed["tbs_cert_list"]["next_update"].native
    assert this_update < next_update

    spki = ca_service.ca_certificate("cn-370000-sm2").public_key.dump()
    tbs = parsed["tbs_cert_list"].dump()
    signature = parsed["signature"].native
    assert _pkeyutl_verify(tmp_path, spki, tbs, signature)
    assert not _pkeyutl_verify(tmp_path, spki, flip(tbs, -3), signature)
    other = ca_service.ca_certificate("cn-530000-sm2").public_key.dump()
    assert not _pkeyutl_verify(tmp_path, other, tbs, signature)
    # openssl parses it (signature checks impossible there: it would assume the empty ID)
    text = openssl("crl", "-inform", "DER", "-in", _write(tmp_path, "c.der", der), "-noout", "-text").stdout
    assert b"Cessation Of Operation" in text


def test_crl_numbers_only_increase(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    numbers = [_crl_number(ca_service.current_crl("cn-530000-p256"))]
    for _ in range(3):
        ca_service.revoke(_issue(ca_service, tmp_path, "p256", "530000").serial, "superseded")
        numbers.append(_crl_number(ca_service.current_crl("cn-530000-p256")))
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


# -- OCSP against the running responder ------------------------------------------------------------


def _ocsp_signer_der(ca_service: CertificateAuthorityService, name: str) -> bytes:
    with ca_service.db.session() as session:
        row = session.get(CertificateAuthority, name)
        assert row is not None and row.ocsp_certificate_der is not None
        return row.ocsp_certificate_der


def _openssl_ocsp(url: str, issuer: str, cert: str, *extra: str) -> tuple[int, str]:
    result = openssl("ocsp", "-issuer", issuer, "-cert", cert, "-url", f"{url}/v1/ocsp", *extra, check=False)
    return result.returncode, (result.stdout + result.stderr).decode()


def test_openssl_ocsp_client_accepts_p256_responses(
    ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    good = _issue(ca_service, tmp_path, "p256")
    revoked = _issue(ca_service, tmp_path, "p256")
    ca_service.revoke(revoked.serial, "keyCompromise")
    issuer = _write(tmp_path, "issuer.pem", pem(_ca_der(ca_service, "cn-370000-p256")))
    trust = _write(tmp_path, "trust.pem", pem(_ca_der(ca_service, "cn-root-p256")) + Path(issuer).read_bytes())

    code, out = _openssl_ocsp(live_url, issuer, _write(tmp_path, "good.pem", pem(good.der)), "-CAfile", trust)
    assert code == 0 and "Response verify OK" in out, out
    assert re.search(r": good", out), out
    assert "WARNING: no nonce" not in out and "nonce" not in out.lower().replace("-no_nonce", "")

    code, out = _openssl_ocsp(live_url, issuer, _write(tmp_path, "revoked.pem", pem(revoked.der)), "-CAfile", trust)
    assert code == 0 and "Response verify OK" in out, out
    assert ": revoked" in out and "Reason: keyCompromise" in out, out

    # unknown: a serial this CA never issued
    unknown = openssl(
        "ocsp", "-issuer", issuer, "-serial", "0x" + secrets.token_hex(16), "-url", f"{live_url}/v1/ocsp",
        "-CAfile", trust, check=False,
    )  # fmt: skip
    assert b"Response verify OK" in unknown.stdout + unknown.stderr
    assert b": unknown" in unknown.stdout, unknown.stdout

    # tampered twin: a response with a bit flipped in its signature fails verification
    resp = _write(tmp_path, "resp.der", b"")
    openssl("ocsp", "-issuer", issuer, "-cert", _write(tmp_path, "g.pem", pem(good.der)), "-url", f"{live_url}/v1/ocsp",
            "-respout", resp, "-noverify")  # fmt: skip
    der = Path(resp).read_bytes()
    tampered = _write(tmp_path, "tampered.der", flip(der, _signature_offset(der)))
    bad = openssl("ocsp", "-respin", tampered, "-issuer", issuer, "-CAfile", trust, check=False)
    assert b"Response Verify Failure" in bad.stdout + bad.stderr or bad.returncode != 0


def _basic(response_der: bytes) -> ocsp.BasicOCSPResponse:
    response = ocsp.OCSPResponse.load(response_der)
    assert response["response_status"].native == "successful"
    basic: ocsp.BasicOCSPResponse = response["response_bytes"]["response"].parsed
    return basic


def test_sm2_ocsp_parsed_by_openssl_and_verified_with_pkeyutl(
    ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    good = _issue(ca_service, tmp_path, "sm2")
    revoked = _issue(ca_service, tmp_path, "sm2")
    ca_service.revoke(revoked.serial, "affiliationChanged")
    issuer = _write(tmp_path, "issuer.pem", pem(_ca_der(ca_service, "cn-370000-sm2")))
    for issued, expected in ((good, ": good"), (revoked, ": revoked")):
        resp = _write(tmp_path, f"{issued.serial}.der", b"")
        code, out = _openssl_ocsp(
            live_url, issuer, _write(tmp_path, f"{issued.serial}.pem", pem(issued.der)),
            "-no_signature_verify", "-noverify", "-respout", resp,
        )  # fmt: skip
        assert code == 0 and expected in out, out
        basic = _basic(Path(resp).read_bytes())
        signer = _ocsp_signer_der(ca_service, "cn-370000-sm2")
        # delegated signer: the response carries the OCSP-signer certificate, issued by the CA
        assert basic["certs"][0].dump() == signer
        signer_cert = x509.Certificate.load(signer)
        assert signer_cert.issuer == ca_service.ca_certificate("cn-370000-sm2").subject
        assert "ocsp_signing" in signer_cert.extended_key_usage_value.native
        assert basic["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
        tbs = basic["tbs_response_data"].dump()
        spki = signer_cert.public_key.dump()
        assert _pkeyutl_verify(tmp_path, spki, tbs, basic["signature"].native)
        assert not _pkeyutl_verify(tmp_path, spki, flip(tbs, -4), basic["signature"].native)
        # and the delegated certificate itself verifies under the CA (link check)
        link = openssl("verify", "-partial_chain", "-vfyopt", DISTID, "-CAfile", issuer,
                       _write(tmp_path, "signer.pem", pem(signer)), check=False)  # fmt: skip
        assert link.returncode == 0, link.stdout + link.stderr


def _request(issuer_der: bytes, serial: int, nonce: bytes | None) -> bytes:
    issuer = x509.Certificate.load(issuer_der)
    import hashlib

    cert_id = ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha1"},
            "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
            "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
            "serial_number": serial,
        }
    )
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id}]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def test_ocsp_get_with_slash_in_base64_and_nonce_echo(
    ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    issued = _issue(ca_service, tmp_path, "sm2")
    issuer_der = _ca_der(ca_service, "cn-370000-sm2")
    for _ in range(200):  # find a nonce whose request base64 holds '/'
        nonce = secrets.token_bytes(16)
        der = _request(issuer_der, issued.certificate.serial_number, nonce)
        encoded = base64.b64encode(der).decode()
        if "/" in encoded:
            break
    else:
        pytest.fail("no request with '/' in its base64 found")
    response = httpx.get(f"{live_url}/v1/ocsp/{encoded}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    basic = _basic(response.content)
    single = basic["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "good"
    assert single["cert_id"]["serial_number"].native == issued.certificate.serial_number
    echoed = [e["extn_value"].parsed.native for e in basic["tbs_response_data"]["response_extensions"]
              if e["extn_id"].native == "nonce"]  # fmt: skip
    assert echoed == [nonce]

    # POST gives the same verdict
    posted = httpx.post(f"{live_url}/v1/ocsp", content=der, headers={"Content-Type": "application/ocsp-request"})
    assert _basic(posted.content)["tbs_response_data"]["responses"][0]["cert_status"].name == "good"


def test_ocsp_for_unknown_issuer_is_unauthorized(ca_service: CertificateAuthorityService, live_url: str) -> None:
    stranger = _ca_der(ca_service, "cn-370000-sm2")
    fake = x509.Certificate.load(stranger)
    # same key, different name: no responder of ours matches its CertID
    tbs = fake["tbs_certificate"].copy()
    tbs["subject"] = x509.Name.build({"common_name": "Not one of ours"})
    other = x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": fake["signature_algorithm"],
                              "signature_value": fake["signature_value"]}).dump()  # fmt: skip
    response = httpx.post(f"{live_url}/v1/ocsp", content=_request(other, 12345, None))
    assert response.status_code == 200
    assert ocsp.OCSPResponse.load(response.content)["response_status"].native == "unauthorized"
