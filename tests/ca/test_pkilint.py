"""pkilint (DigiCert's RFC 5280 linter, run as its CLI) finds no errors in any profile's certificates,
and does find the errors of a deliberately broken profile, so the check is known to bite."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import x509

from ca.authority import CertificateAuthorityService
from policies.profiles import ProfileSet
from store.models import CertificateAuthority
from tests.fixtures import ORG_SUBJECT, make_csr

SUBJECTS = {
    "org-seal": (ORG_SUBJECT, []),
    "seal-maker": ("/C=CN/O=Shandong Seal Making Centre/CN=Shandong Seal Maker", []),
    "person": ("/C=CN/CN=Zhang San", ["-addext", "subjectAltName=email:zhang.san@example.cn"]),
    "ocsp-signer": ("/CN=Delegated OCSP responder", []),
    "tsa": ("/C=CN/O=Shandong Timestamp Authority/CN=Shandong TSA 1", []),
    "tls-server": ("/CN=verify.example.gov.cn", ["-addext", "subjectAltName=DNS:verify.example.gov.cn"]),
}


def _lint_binary() -> str:
    beside = Path(sys.executable).parent / "lint_pkix_cert"
    found = str(beside) if beside.exists() else shutil.which("lint_pkix_cert")
    if found is None:
        pytest.fail("pkilint is a dev dependency: lint_pkix_cert must be installed")
    return found


def lint(der: bytes, directory: Path, name: str) -> list[dict[str, object]]:
    """ERROR and FATAL findings pkilint reports for one certificate."""
    path = directory / f"{name}.der"
    path.write_bytes(der)
    result = subprocess.run(
        [_lint_binary(), "lint", "-s", "ERROR", "-f", "JSON", "--document-format", "DER", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, object]] = []
    for validation in json.loads(result.stdout or "{}").get("results", []):
        for finding in validation.get("finding_descriptions", []):
            findings.append({"validator": validation.get("validator"), **finding})
    return findings


@pytest.mark.parametrize("family", ["sm2", "p256"])
@pytest.mark.parametrize("profile", sorted(SUBJECTS))
def test_every_profile_lints_clean(
    ca_service: CertificateAuthorityService, tmp_path: Path, profile: str, family: str
) -> None:
    subject, extra = SUBJECTS[profile]
    csr = make_csr(tmp_path, algorithm=family, subject=subject, extra=extra)
    issued = ca_service.issue(csr, profile, f"cn-370000-{family}")
    assert lint(issued.der, tmp_path, f"{profile}-{family}") == []


def test_ca_and_ocsp_signer_certificates_lint_clean(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    with ca_service.db.session() as session:
        rows = [(ca.name, ca.certificate_der, ca.ocsp_certificate_der) for ca in session.query(CertificateAuthority)]
    assert len(rows) >= 6
    for name, der, ocsp_der in rows:
        assert lint(der, tmp_path, name) == [], name
        assert ocsp_der is not None and lint(ocsp_der, tmp_path, f"{name}.ocsp") == [], name


def test_a_broken_profile_is_caught(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    """A profile that leaves key usage empty and marks nothing critical: RFC 5280 §4.2.1.3 says a key usage
    extension must have at least one bit set. Issue with it through the real service and lint."""
    profiles = ca_service.profiles
    broken = profiles.profiles["org-seal"].model_copy(update={"key_usage": ()})
    service = CertificateAuthorityService(
        ca_service.db,
        ca_service.custody,
        ProfileSet(
            policy_oids=profiles.policy_oids,
            profiles={**profiles.profiles, "broken": broken.model_copy(update={"name": "broken"})},
            ca_profiles=profiles.ca_profiles,
        ),
        ca_service.public_url,
    )
    issued = service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "broken", "cn-370000-p256")
    assert x509.Certificate.load(issued.der).key_usage_value is not None
    findings = lint(issued.der, tmp_path, "broken")
    assert findings, "pkilint accepted a certificate with an empty key usage"
    assert {f["code"] for f in findings} == {"pkix.no_ku_bits_set"}, findings
