"""Name constraints through the API and CLI (issue 12): `POST /v1/cas {…, "permitted_dns": [...]}` and
`trustseal ca create … --permit-dns NAME` make a CA whose certificate carries a critical nameConstraints
extension; each name is checked with the name policy's DNS rules (policies/dns.py) first, a bad one a 4xx
with its code and nothing written. The CA then refuses a tls-server certificate outside its namespace, and
OpenSSL enforces the constraint on the chain: a certificate inside verifies, one outside (forged with the
CA's key, bypassing the policy) does not."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import keys, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.auth import create_token
from api.cli import app
from api.context import Context
from api.problems import PROBLEM_JSON
from ca import certificates as certs
from store.models import Certificate, CertificateAuthority, Event
from tests.fixtures import make_csr, openssl, pem

pytestmark = pytest.mark.openssl


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', f'officer-{secrets.token_hex(4)}')}"}


def _body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "parent": "cn-root-p256", "region": "450000", "algorithm": "p256", **extra}


def _counts(context: Context) -> tuple[int, ...]:
    with context.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t)) or 0 for t in (CertificateAuthority, Certificate, Event)
        )


@pytest.mark.parametrize(
    ("domains", "code"),
    [
        (["*.gx.gov.cn"], "wildcard_not_allowed"),
        (["gov.cn"], "dns_name_invalid"),  # a public suffix alone constrains nothing
        (["GX.gov.cn"], "dns_name_invalid"),
        (["bad_label.gx.cn"], "dns_name_invalid"),
        (["gx.gov.cn."], "dns_name_invalid"),
        (["printer.local"], "dns_name_invalid"),  # not a top-level domain
        ([""], "dns_name_invalid"),
        (["gx.gov.cn", "gx.gov.cn"], "dns_name_invalid"),
    ],
)
def test_a_bad_namespace_is_refused_with_its_code_and_nothing_written(
    client: TestClient, context: Context, officer: dict[str, str], domains: list[str], code: str
) -> None:
    before = _counts(context)
    name = f"nc-{secrets.token_hex(3)}-p256"
    answer = client.post("/v1/cas", json=_body(name, permitted_dns=domains), headers=officer)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON) and answer.json()["code"] == code
    assert _counts(context) == before
    assert name not in context.custody.names()  # refused before custody made a key


def _forged_outside(context: Context, ca: str, host: str) -> bytes:
    """A tls-server-like certificate for `host` signed with the CA's key directly: what the CA's policy never
    signs, to show relying parties enforce the constraint on their own."""
    with context.db.session() as session:
        row = session.get(CertificateAuthority, ca)
        assert row is not None
        key_ref, ca_der = row.key_ref, row.certificate_der
    ca_cert = x509.Certificate.load(ca_der)
    private = ec.generate_private_key(ec.SECP256R1())
    spki = keys.PublicKeyInfo.load(
        private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    now = datetime.now(UTC).replace(microsecond=0)
    san = x509.GeneralNames([x509.GeneralName(name="dns_name", value=host)])
    cert = certs.sign_certificate(
        issuer=ca_cert.subject,
        subject=x509.Name.build({"common_name": host}),
        spki=spki,
        serial=int.from_bytes(secrets.token_bytes(16), "big") >> 1,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=30),
        extensions=[
            certs.extension("key_usage", x509.KeyUsage({"digital_signature"}), critical=True),
            certs.extension("extended_key_usage", x509.ExtKeyUsageSyntax(["server_auth"])),
            certs.extension(
                "authority_key_identifier", x509.AuthorityKeyIdentifier({"key_identifier": ca_cert.key_identifier})
            ),
            certs.extension("subject_alt_name", san),
        ],
        signer=getattr(context.custody, "inner", context.custody).signer(key_ref),
    )
    return bytes(cert.dump())


def pem_der(text: str) -> bytes:
    from asn1crypto import pem as asn1_pem

    return bytes(asn1_pem.unarmor(text.encode("ascii"))[2])


def _openssl_verify(context: Context, tmp_path: Path, ca: str, leaf_der: bytes) -> tuple[int, str]:
    (tmp_path / "root.pem").write_bytes(pem(context.ca.ca_certificate("cn-root-p256").dump()))
    (tmp_path / "sub.pem").write_bytes(pem(context.ca.ca_certificate(ca).dump()))
    (tmp_path / "leaf.pem").write_bytes(pem(leaf_der))
    done = openssl("verify", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "sub.pem"),
                   str(tmp_path / "leaf.pem"), check=False)  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).decode()


def test_a_constrained_ca_over_the_api_issues_inside_refuses_outside_and_openssl_agrees(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    name = f"nc-{secrets.token_hex(3)}-p256"
    made = client.post("/v1/cas", json=_body(name, permitted_dns=["gx.gov.cn"]), headers=officer)
    assert made.status_code == 201, made.text
    assert made.json()["permitted_dns"] == ["gx.gov.cn"]
    extension = next(
        e for e in context.ca.ca_certificate(name)["tbs_certificate"]["extensions"]
        if e["extn_id"].native == "name_constraints"
    )  # fmt: skip
    assert extension["critical"].native is True

    def request(host: str) -> Any:
        csr = make_csr(tmp_path, algorithm="p256", subject=f"/C=CN/CN={host}",
                       extra=["-addext", f"subjectAltName=DNS:{host}"])  # fmt: skip
        body = {"csr_pem": csr.decode(), "profile": "tls-server", "ca": name}
        return client.post("/v1/certificates", json=body, headers=officer)

    before = _counts(context)
    outside = request("www.example.cn")
    assert outside.status_code == 400, outside.text
    assert outside.json()["code"] == "name_outside_namespace"
    assert _counts(context) == before

    inside = request("www.gx.gov.cn")
    assert inside.status_code == 201, inside.text
    inside_der = x509.Certificate.load(pem_der(inside.json()["certificate_pem"])).dump()
    code, out = _openssl_verify(context, tmp_path, name, inside_der)
    assert code == 0 and "OK" in out, out

    code, out = _openssl_verify(context, tmp_path, name, _forged_outside(context, name, "www.example.cn"))
    assert code != 0 and "permitted subtree violation" in out, out


def test_the_cli_passes_permit_dns(context: Context, live_url: str, officer: dict[str, str]) -> None:
    token = officer["Authorization"].removeprefix("Bearer ")
    name = f"nc-{secrets.token_hex(3)}-p256"
    args = ["ca", "create", name, "--parent", "cn-root-p256", "--region", "450000", "--algorithm", "p256",
            "--permit-dns", "gx.gov.cn", "--permit-dns", "nanning.cn", "--url", live_url, "--token", token]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "permitted_dns=gx.gov.cn,nanning.cn" in result.output
    other = f"nc-{secrets.token_hex(3)}-p256"
    wild = [other, *args[3:-8], "--permit-dns", "*.gx.gov.cn", "--url", live_url, "--token", token]
    refused = CliRunner().invoke(app, ["ca", "create", *wild])
    assert refused.exit_code == 1 and "wildcard_not_allowed" in refused.output


def test_a_punycode_namespace_issues_inside_it(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    """`xn--fiqs8s.cn` (中国.cn): the constraint is read as the IA5 bytes written, not asn1crypto's Unicode
    decoding of them — else nothing inside the namespace could be issued (a review found 400
    name_outside_namespace for www.xn--fiqs8s.cn)."""
    name = f"nc-{secrets.token_hex(3)}-p256"
    made = client.post("/v1/cas", json=_body(name, permitted_dns=["xn--fiqs8s.cn"]), headers=officer)
    assert made.status_code == 201, made.text
    assert made.json()["permitted_dns"] == ["xn--fiqs8s.cn"]
    csr = make_csr(tmp_path, algorithm="p256", subject="/C=CN/CN=www.xn--fiqs8s.cn",
                   extra=["-addext", "subjectAltName=DNS:www.xn--fiqs8s.cn"])  # fmt: skip
    inside = client.post(
        "/v1/certificates", json={"csr_pem": csr.decode(), "profile": "tls-server", "ca": name}, headers=officer
    )
    assert inside.status_code == 201, inside.text
    code, out = _openssl_verify(
        context, tmp_path, name, x509.Certificate.load(pem_der(inside.json()["certificate_pem"])).dump()
    )
    assert code == 0 and "OK" in out, out
