"""Independent acceptance by GmSSL 3.x, the Chinese reference toolkit (guanzhi/GmSSL; built from source,
see README "GmSSL interop"): it checks SM2 chains, CRLs, OCSP responses and signatures with the standard
ID 1234567812345678 and rejects what RFC 5280 / GM/T 0015 forbid, stricter than OpenSSL in places.

The binary comes from `$GMSSL`; without it the GmSSL tests skip with that reason (nothing is downloaded).
What GmSSL's CLI can judge: `certverify` checks whole chains, but only as TLS server or client chains (its
entity checks want serverAuth / clientAuth and know no organizationIdentifier), so org-seal and person
certificates are parsed by `certparse` and their every link checked by `sm2verify` over the TBS bytes.
Every positive check has a tampered twin that must fail.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
from asn1crypto import ocsp, x509

from ca.authority import CertificateAuthorityService
from keys.custody import KeyAlgorithm
from seal.service import SealService
from store.models import CertificateAuthority, Seal
from tests.fixtures import ORG_SUBJECT, flip, make_csr, pem

SUBSCRIBERS: dict[str, tuple[str, list[str]]] = {
    "org-seal": (ORG_SUBJECT, []),
    "person": ("/C=CN/CN=Zhang San", ["-addext", "subjectAltName=email:zhang.san@example.cn"]),
    "tls-server": ("/CN=verify.example.gov.cn", ["-addext", "subjectAltName=DNS:verify.example.gov.cn"]),
    "tls-client": ("/C=CN/O=Bank/CN=bank-gateway", ["-addext", "subjectAltName=DNS:gw.bank.example.cn"]),
}


@pytest.fixture(scope="module")
def gmssl() -> str:
    path = os.environ.get("GMSSL")
    if not path:
        pytest.skip("GmSSL interop needs $GMSSL (path to a GmSSL 3.x `gmssl` binary; README: GmSSL interop)")
    if not os.access(path, os.X_OK):
        pytest.skip(f"$GMSSL={path} is not an executable file")
    version = subprocess.run([path, "version"], capture_output=True, timeout=30)
    if version.returncode != 0 or not version.stdout.startswith(b"GmSSL 3."):
        pytest.skip(f"$GMSSL={path} is not GmSSL 3.x: {version.stdout[:60]!r}")
    return path


def _run(gmssl: str, *args: str, input: bytes | None = None) -> tuple[int, str]:
    done = subprocess.run([gmssl, *args], input=input, capture_output=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).decode(errors="replace")


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def _issue(service: CertificateAuthorityService, directory: Path, profile: str, ca: str = "cn-370000-sm2") -> bytes:
    subject, extra = SUBSCRIBERS[profile]
    return service.issue(make_csr(directory, algorithm="sm2", subject=subject, extra=extra), profile, ca).der


def _ca(service: CertificateAuthorityService, name: str) -> bytes:
    return service.ca_certificate(name).dump()


def _sm2verify_link(gmssl: str, directory: Path, child_der: bytes, issuer_der: bytes) -> bool:
    """GmSSL checks the certificate's SM2 signature over its TBS bytes with the issuer's key (default ID)."""
    child = x509.Certificate.load(child_der)
    tbs = _write(directory, "tbs.der", child["tbs_certificate"].dump())
    sig = _write(directory, "sig.der", child["signature_value"].native)
    issuer = _write(directory, "issuer.pem", pem(issuer_der))
    code, out = _run(gmssl, "sm2verify", "-cert", issuer, "-in", tbs, "-sig", sig)
    return code == 0 and "verify : success" in out


# -- the extension GmSSL refused -------------------------------------------------------------------


def test_end_entities_omit_basic_constraints_and_cas_keep_it_critical(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """RFC 5280 §4.2.1.9: an end entity may omit basicConstraints; GmSSL refuses the empty SEQUENCE that
    `{cA FALSE}` encodes to (DEFAULT FALSE is never written). CAs carry cA TRUE, critical."""
    for profile in SUBSCRIBERS:
        leaf = x509.Certificate.load(_issue(ca_service, tmp_path, profile))
        assert "basic_constraints" not in [e["extn_id"].native for e in leaf["tbs_certificate"]["extensions"]]
    for name in ("cn-root-sm2", "cn-370000-sm2", "cn-root-p256", "cn-370000-p256"):
        ca = ca_service.ca_certificate(name)
        found = [e for e in ca["tbs_certificate"]["extensions"] if e["extn_id"].native == "basic_constraints"]
        assert len(found) == 1 and found[0]["critical"].native is True
        assert found[0]["extn_value"].parsed["ca"].native is True


# -- chains ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "mode"), [("tls-server", "-server"), ("tls-client", "-client")])
def test_gmssl_certverify_accepts_root_regional_leaf(
    gmssl: str, ca_service: CertificateAuthorityService, tmp_path: Path, profile: str, mode: str
) -> None:
    """`gmssl certverify` runs its whole chain check: entity profile, both CA certificates (cA, key usage,
    path length, validity at most 3653 days), every SM2 signature up to the root we trust."""
    leaf = _issue(ca_service, tmp_path, profile)
    root = _write(tmp_path, "root.pem", pem(_ca(ca_service, "cn-root-sm2")))
    chain = _write(tmp_path, "chain.pem", pem(leaf) + pem(_ca(ca_service, "cn-370000-sm2")))
    extra = ["-hostname", "verify.example.gov.cn"] if profile == "tls-server" else []
    code, out = _run(gmssl, "certverify", mode, "-in", chain, "-cacert", root, *extra)
    assert code == 0 and "Verification success" in out, out

    tampered = _write(tmp_path, "tampered.pem", pem(flip(leaf, -5)) + pem(_ca(ca_service, "cn-370000-sm2")))
    code, out = _run(gmssl, "certverify", mode, "-in", tampered, "-cacert", root)
    assert code != 0 and "cert_chain" in out, out
    # the other region's CA did not issue this leaf
    wrong = _write(tmp_path, "wrong.pem", pem(leaf) + pem(_ca(ca_service, "cn-530000-sm2")))
    assert _run(gmssl, "certverify", mode, "-in", wrong, "-cacert", root)[0] != 0
    # and a P-256 root is no anchor for an SM2 chain
    other = _write(tmp_path, "p256.pem", pem(_ca(ca_service, "cn-root-p256")))
    assert _run(gmssl, "certverify", mode, "-in", chain, "-cacert", other)[0] != 0


@pytest.mark.parametrize("profile", sorted(SUBSCRIBERS))
def test_gmssl_parses_every_sm2_profile_and_checks_each_link(
    gmssl: str, ca_service: CertificateAuthorityService, tmp_path: Path, profile: str
) -> None:
    leaf = _issue(ca_service, tmp_path, profile)
    regional = _ca(ca_service, "cn-370000-sm2")
    root = _ca(ca_service, "cn-root-sm2")
    code, out = _run(gmssl, "certparse", "-in", _write(tmp_path, "all.pem", pem(leaf) + pem(regional) + pem(root)))
    assert code == 0, out
    assert out.splitlines().count("Certificate") == 3 and out.count("extnID: BasicConstraints") == 2  # the CAs only
    assert _sm2verify_link(gmssl, tmp_path, leaf, regional)
    assert _sm2verify_link(gmssl, tmp_path, regional, root)
    assert _sm2verify_link(gmssl, tmp_path, root, root)  # self-signed
    assert not _sm2verify_link(gmssl, tmp_path, flip(leaf, 40), regional)  # a TBS byte changed
    assert not _sm2verify_link(gmssl, tmp_path, leaf, _ca(ca_service, "cn-530000-sm2"))


def test_gmssl_checks_the_delegated_ocsp_signer_certificate(
    gmssl: str, ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    signer = _ocsp_signer(ca_service, "cn-370000-sm2")
    assert _sm2verify_link(gmssl, tmp_path, signer, _ca(ca_service, "cn-370000-sm2"))
    assert "basic_constraints" not in [
        e["extn_id"].native for e in x509.Certificate.load(signer)["tbs_certificate"]["extensions"]
    ]


# -- CRL and OCSP ----------------------------------------------------------------------------------


def _ocsp_signer(service: CertificateAuthorityService, name: str) -> bytes:
    with service.db.session() as session:
        row = session.get(CertificateAuthority, name)
        assert row is not None and row.ocsp_certificate_der is not None
        return row.ocsp_certificate_der


def test_gmssl_verifies_our_crl_and_sees_a_revocation(
    gmssl: str, ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    leaf = _issue(ca_service, tmp_path, "tls-client")
    serial = format(x509.Certificate.load(leaf).serial_number, "x")
    ca_service.revoke(serial, "keyCompromise")
    crl = ca_service.current_crl("cn-370000-sm2")
    regional = _write(tmp_path, "regional.pem", pem(_ca(ca_service, "cn-370000-sm2")))
    code, out = _run(gmssl, "crlverify", "-in", _write(tmp_path, "crl.der", crl), "-cacert", regional)
    assert code == 0 and "Verification success" in out, out
    code, out = _run(gmssl, "crlverify", "-in", _write(tmp_path, "bad.der", flip(crl, -5)), "-cacert", regional)
    assert code != 0, out

    root = _write(tmp_path, "root.pem", pem(_ca(ca_service, "cn-root-sm2")))
    chain = _write(tmp_path, "chain.pem", pem(leaf) + pem(_ca(ca_service, "cn-370000-sm2")))
    code, out = _run(gmssl, "certverify", "-client", "-in", chain, "-cacert", root, "-crl", str(tmp_path / "crl.der"))
    assert code != 0 and "crl" in out, out


def test_gmssl_ocsp_client_accepts_our_responses(
    gmssl: str, ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    """GmSSL builds the request (SM3 CertID), we answer over HTTP, GmSSL checks the delegated signer's SM2
    signature, the CertID and the times; `certverify -ocsp` then accepts a good leaf and refuses a revoked one."""
    regional_der = _ca(ca_service, "cn-370000-sm2")
    regional = _write(tmp_path, "regional.pem", pem(regional_der))
    signer = _write(tmp_path, "signer.pem", pem(_ocsp_signer(ca_service, "cn-370000-sm2")))
    root = _write(tmp_path, "root.pem", pem(_ca(ca_service, "cn-root-sm2")))

    def ask(leaf: bytes, name: str) -> tuple[str, str, str]:
        chain = _write(tmp_path, f"{name}-chain.pem", pem(leaf) + pem(regional_der))
        req = str(tmp_path / f"{name}-req.der")
        code, out = _run(gmssl, "ocspreq", "-in", chain, "-out", req)
        assert code == 0, out
        reply = httpx.post(f"{live_url}/v1/ocsp", content=Path(req).read_bytes(),
                           headers={"Content-Type": "application/ocsp-request"})  # fmt: skip
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/ocsp-response"
        return chain, req, _write(tmp_path, f"{name}-resp.der", reply.content)

    good = _issue(ca_service, tmp_path, "tls-client")
    chain, req, resp = ask(good, "good")
    code, out = _run(gmssl, "ocspverify", "-reqin", req, "-respin", resp, "-cacert", regional, "-signer", signer)
    assert code == 0 and "Verification success" in out, out
    code, out = _run(gmssl, "certverify", "-client", "-in", chain, "-cacert", root, "-ocsp", resp)
    assert code == 0 and "Verification success" in out, out
    single = ocsp.OCSPResponse.load(Path(resp).read_bytes())["response_bytes"]["response"].parsed
    assert single["tbs_response_data"]["responses"][0]["cert_id"]["hash_algorithm"]["algorithm"].native == "sm3"

    der = Path(resp).read_bytes()
    tampered = _write(tmp_path, "tampered.der", flip(der, der.index(single["signature"].native) + 10))
    code, out = _run(gmssl, "ocspverify", "-reqin", req, "-respin", tampered, "-cacert", regional, "-signer", signer)
    assert code != 0 and "revoked" not in out, out

    revoked = _issue(ca_service, tmp_path, "tls-client")
    ca_service.revoke(format(x509.Certificate.load(revoked).serial_number, "x"), "superseded")
    chain, req, resp = ask(revoked, "revoked")
    code, out = _run(gmssl, "ocspverify", "-reqin", req, "-respin", resp, "-cacert", regional, "-signer", signer)
    assert code == 1 and "Verification failure: revoked" in out, out  # well signed, and it says revoked
    code, out = _run(gmssl, "certverify", "-client", "-in", chain, "-cacert", root, "-ocsp", resp)
    assert code != 0 and "ocsp" in out, out


# -- signatures ------------------------------------------------------------------------------------


def test_gmssl_verifies_a_custody_sm2_signature(
    gmssl: str, ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    custody = ca_service.custody
    version = custody.create(f"gmssl-interop-probe-{secrets.token_hex(4)}", KeyAlgorithm("sm2"))  # one per db run
    message = "trustseal → GmSSL: 电子印章".encode()
    signature = custody.signer(version.ref).sign(message)
    pub = _write(tmp_path, "pub.pem", pem(version.public_key_der, "PUBLIC KEY"))
    sig = _write(tmp_path, "msg.sig", signature)
    code, out = _run(gmssl, "sm2verify", "-pubkey", pub, "-sig", sig, input=message)
    assert code == 0 and "verify : success" in out, out
    assert _run(gmssl, "sm2verify", "-pubkey", pub, "-sig", sig, input=message + b".")[0] != 0
    # another signer ID is another Z value: GmSSL agrees we sign with the standard one
    assert _run(gmssl, "sm2verify", "-pubkey", pub, "-sig", sig, "-id", "trustseal", input=message)[0] != 0


def test_gmssl_verifies_a_seal_makers_signature(gmssl: str, seal_service: SealService, tmp_path: Path) -> None:
    """GB/T 38540: SESeal.signedValue is SM2 over DER(SES_SealInfo) by the maker certificate it carries."""
    from gm.ses import parse_seal

    with seal_service.db.session() as session:
        row = session.get(Seal, "demo-370000-sm2")
        assert row is not None
        seal = parse_seal(row.esl_der)
    maker = _write(tmp_path, "maker.pem", pem(seal.maker_cert))
    sig = _write(tmp_path, "seal.sig", seal.signature)
    code, out = _run(gmssl, "sm2verify", "-cert", maker, "-sig", sig, input=seal.signed_bytes)
    assert code == 0 and "verify : success" in out, out
    assert _run(gmssl, "sm2verify", "-cert", maker, "-sig", sig, input=flip(seal.signed_bytes, -1))[0] != 0
    # the maker certificate itself chains to its regional CA, in GmSSL's eyes too
    assert _sm2verify_link(gmssl, tmp_path, seal.maker_cert, seal_service.ca.ca_certificate("cn-370000-sm2").dump())
