"""Name constraints on an issuing CA whose region's DNS namespace is known (issue 12): the CA certificate
carries a critical nameConstraints extension OpenSSL understands and enforces, and the CA refuses to sign
any name outside it (`name_outside_namespace`) before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.authority import CertificateAuthorityService
from ca.errors import NameNotAllowed
from store.models import Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr, openssl, pem

CA = "cn-379900-p256"


@pytest.fixture(scope="module")
def constrained(ca_service: CertificateAuthorityService) -> str:
    ca_service.create_ca(
        CA,
        algorithm="p256",  # type: ignore[arg-type]
        subject={"country_name": "CN", "organization_name": "Test", "common_name": "Namespaced Region CA P256"},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="379900",
        permitted_dns=("sd.gov.cn",),
        actor="test",
    )
    return CA


def _counts(service: CertificateAuthorityService) -> tuple[int, int]:
    with service.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Certificate)) or 0,
            session.scalar(select(func.count()).select_from(Event)) or 0,
        )


def test_the_constraint_is_in_the_ca_certificate(ca_service: CertificateAuthorityService, constrained: str) -> None:
    certificate = ca_service.ca_certificate(constrained)
    extension = next(
        e for e in certificate["tbs_certificate"]["extensions"] if e["extn_id"].native == "name_constraints"
    )
    assert extension["critical"].native is True
    value = extension["extn_value"].parsed
    assert [s["base"].native for s in value["permitted_subtrees"]] == ["sd.gov.cn", "sd.gov.cn", ".sd.gov.cn"]
    assert [s["base"].native for s in value["excluded_subtrees"]] == ["0.0.0.0/0", "::/0"]


def test_names_inside_are_issued_and_openssl_verifies_the_chain(
    ca_service: CertificateAuthorityService, constrained: str, tmp_path: Path
) -> None:
    csr = make_csr(
        tmp_path, algorithm="p256", subject="/C=CN/CN=www.sd.gov.cn",
        extra=["-addext", "subjectAltName=DNS:www.sd.gov.cn,DNS:*.jinan.sd.gov.cn"],
    )  # fmt: skip
    issued = ca_service.issue(csr, "tls-server", constrained)
    seal = ca_service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", constrained)
    (tmp_path / "root.pem").write_bytes(pem(ca_service.ca_certificate("cn-root-p256").dump()))
    (tmp_path / "sub.pem").write_bytes(pem(ca_service.ca_certificate(constrained).dump()))
    for n, der in enumerate((issued.der, seal.der)):
        (tmp_path / f"leaf{n}.pem").write_bytes(pem(der))
        result = openssl("verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "sub.pem"),
                         str(tmp_path / f"leaf{n}.pem"))  # fmt: skip
        assert b"OK" in result.stdout


@pytest.mark.parametrize(
    ("profile", "san"),
    [
        ("tls-server", "DNS:www.example.cn"),
        ("tls-server", "DNS:evilsd.gov.cn"),  # a suffix match, not a subdomain
        ("tls-server", "DNS:www.sd.gov.cn,IP:202.96.134.133"),
        ("tls-client", "URI:https://gw.example.cn/"),
    ],
)
def test_names_outside_are_refused_before_signing(
    ca_service: CertificateAuthorityService, constrained: str, tmp_path: Path, profile: str, san: str
) -> None:
    subject = "/C=CN/O=Platform" if profile == "tls-server" else "/C=CN/CN=gw"
    csr = make_csr(tmp_path, algorithm="p256", subject=subject, extra=["-addext", f"subjectAltName={san}"])
    before = _counts(ca_service)
    with pytest.raises(NameNotAllowed) as refused:
        ca_service.issue(csr, profile, constrained)
    assert refused.value.code == "name_outside_namespace"
    assert _counts(ca_service) == before


def test_openssl_itself_refuses_a_name_outside(
    ca_service: CertificateAuthorityService, constrained: str, tmp_path: Path
) -> None:
    """What the extension is for: a certificate outside the namespace fails chain validation. Ours will not
    sign one, so a throw-away OpenSSL CA carries our extension's exact DER and signs it."""
    certificate = ca_service.ca_certificate(constrained)
    ours = next(e for e in certificate["tbs_certificate"]["extensions"] if e["extn_id"].native == "name_constraints")
    conf = tmp_path / "ext.cnf"
    conf.write_text(
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n"
        f"2.5.29.30=critical,DER:{ours['extn_value'].parsed.dump().hex()}\n"
        "[leaf]\nsubjectAltName=DNS:www.example.cn\n[inside]\nsubjectAltName=DNS:www.sd.gov.cn\n"
    )
    run = lambda *a: openssl(*a, cwd=tmp_path)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
        "-subj", "/CN=t", "-out", "ca.pem", "-extensions", "ca", "-config", str(conf), "-days", "1")  # fmt: skip
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "l.key",
        "-subj", "/CN=x", "-out", "l.csr")  # fmt: skip
    run("x509", "-req", "-in", "l.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out", "l.pem", "-days", "1",
        "-extfile", str(conf), "-extensions", "leaf")  # fmt: skip
    result = openssl("verify", "-CAfile", "ca.pem", "l.pem", cwd=tmp_path, check=False)
    assert result.returncode != 0 and b"subtree violation" in result.stderr
    run("x509", "-req", "-in", "l.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-out", "in.pem", "-days", "1",
        "-extfile", str(conf), "-extensions", "inside")  # fmt: skip
    assert b"OK" in openssl("verify", "-CAfile", "ca.pem", "in.pem", cwd=tmp_path).stdout
