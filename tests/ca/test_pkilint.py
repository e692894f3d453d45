"""pkilint (DigiCert's RFC 5280 linter, through its Python API) finds no errors in any profile's certificates,
nor in the CA and OCSP-signer certificates, nor between each certificate and its issuer; and it does find the
errors of deliberately broken certificates, so the check is known to bite.

The validators are the ones pkilint's own `lint_pkix_cert` and `lint_pkix_signer_signee_cert_chain` commands
run (plain RFC 5280, no CA/Browser Forum or ETSI rules).

SM2: pkilint knows neither the SM2 curve (1.2.156.10197.1.301) nor SM2-with-SM3 (1.2.156.10197.1.501), but
neither costs an ERROR. The single-certificate lint decodes both as opaque values; the chain lint skips the
signature check with a NOTICE (pkix.unsupported_algorithm). So no finding is filtered out for either family:
SM2 and P-256 certificates alike must have zero ERROR/FATAL findings, and P-256 chains must lint with no
finding of any severity (their signatures really are verified).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from asn1crypto import x509
from pkilint import loader, validation
from pkilint.bin import lint_pkix_signer_signee_cert_chain as chain_lint
from pkilint.pkix import certificate, extension, name

from ca.authority import CertificateAuthorityService
from ca.hierarchy import demo_ca_names
from keys.custody import KeyAlgorithm
from policies.profiles import ProfileSet, default_profiles
from store.models import CertificateAuthority
from tests.fixtures import ORG_SUBJECT, flip, make_csr

Severity = validation.ValidationFindingSeverity

# A subject (and CSR extensions) each subscriber profile accepts: policies/profiles.yaml, ca/names.py.
SUBJECTS: dict[str, tuple[str, list[str]]] = {
    "org-seal": (ORG_SUBJECT, []),
    "person": ("/C=CN/CN=Zhang San", ["-addext", "subjectAltName=email:zhang.san@example.cn"]),
    "tls-server": ("/CN=verify.example.gov.cn", ["-addext", "subjectAltName=DNS:verify.example.gov.cn"]),
    "tls-client": ("/C=CN/O=Bank/CN=bank-gateway", ["-addext", "subjectAltName=DNS:gw.bank.example.cn"]),
}
# Infrastructure profiles: issued only for a key custody holds (issue_for_key), by the CA that makes them.
IN_CUSTODY: dict[str, tuple[str, dict[str, str]]] = {
    "seal-maker": ("cn-370000", {"country_name": "CN", "organization_name": "trustseal", "common_name": "Seal maker"}),
    "ocsp-signer": ("cn-370000", {"common_name": "Delegated OCSP responder"}),
    "tsa": ("cn-100000", {"country_name": "CN", "organization_name": "trustseal", "common_name": "trustseal TSA"}),
    "ledger": (
        "cn-100000",
        {"country_name": "CN", "organization_name": "trustseal", "common_name": "trustseal ledger"},
    ),
    "trust-list-signer": (
        "cn-root",
        {"country_name": "CN", "organization_name": "trustseal demo", "common_name": "National trust list signer"},
    ),
}
# Every profile × every key family it allows, read from the policy itself so a new profile is linted too.
CASES = [(p.name, family) for p in default_profiles().profiles.values() for family in p.key_algorithms]


class Finding(NamedTuple):
    severity: str
    code: str
    message: str | None
    node: str

    def __str__(self) -> str:
        return f"{self.severity} {self.code} at {self.node}" + (f": {self.message}" if self.message else "")


def _findings(results: Any, threshold: Any) -> list[Finding]:
    """Findings at `threshold` or worse (pkilint severities count down: FATAL 0, ERROR 1, ... INFO)."""
    return [
        Finding(fd.finding.severity.name, fd.finding.code, fd.message, str(result.node.path))
        for result in results
        for fd in result.finding_descriptions
        if fd.finding.severity <= threshold
    ]


def _certificate_validator() -> Any:
    """Exactly what `lint_pkix_cert lint` runs."""
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


_VALIDATOR = _certificate_validator()


def lint(der: bytes, threshold: Any = Severity.ERROR) -> list[Finding]:
    """RFC 5280 findings for one DER certificate, ERROR and FATAL by default."""
    document = loader.RFC5280CertificateDocumentLoader().load_der_document(der, "certificate")
    return _findings(_VALIDATOR.validate(document.root), threshold)


def lint_chain(issuer_der: bytes, subject_der: bytes, threshold: Any = Severity.ERROR) -> list[Finding]:
    """What `lint_pkix_signer_signee_cert_chain lint ISSUER SUBJECT` runs: issuer DN and key identifier
    chaining, policy chaining and the subject's signature, checked with the issuer's key."""
    documents: dict[str, Any] = {}
    load = loader.RFC5280CertificateDocumentLoader().load_der_document
    documents["issuer"] = issuer = load(issuer_der, "issuer", "issuer", documents)
    documents["subject"] = subject = load(subject_der, "subject", "subject", documents)
    decoding = chain_lint.create_decoder_validation_container()
    results = decoding.validate(issuer.root) + decoding.validate(subject.root)
    results += chain_lint.create_issuer_validation_container().validate(issuer.root)
    results += chain_lint.create_subject_validation_container().validate(subject.root)
    return _findings(results, threshold)


def report(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


@pytest.mark.parametrize(("profile", "family"), CASES)
def test_every_profile_lints_clean(
    ca_service: CertificateAuthorityService, tmp_path: Path, profile: str, family: str
) -> None:
    if profile in IN_CUSTODY:
        ca, subject_values = IN_CUSTODY[profile]
        key = ca_service.custody.create(f"pkilint-{profile}-{family}-{secrets.token_hex(4)}", KeyAlgorithm(family))
        issued = ca_service.issue_for_key(key.public_key_der, subject_values, profile, f"{ca}-{family}")
    else:
        assert profile in SUBJECTS, f"tests/ca/test_pkilint.py needs a subject for the new profile {profile}"
        assert default_profiles().profiles[profile].csr
        subject, extra = SUBJECTS[profile]
        csr = make_csr(tmp_path, algorithm=family, subject=subject, extra=extra)
        issued = ca_service.issue(csr, profile, f"cn-370000-{family}")
    findings = lint(issued.der)
    assert not findings, f"{profile}/{family}:\n{report(findings)}"
    findings = lint_chain(issued.chain[0], issued.der)
    assert not findings, f"{profile}/{family} against its issuer:\n{report(findings)}"


def test_ca_and_ocsp_signer_certificates_lint_clean(ca_service: CertificateAuthorityService) -> None:
    with ca_service.db.session() as session:
        rows = {
            ca.name: (ca.parent, ca.certificate_der, ca.ocsp_certificate_der)
            for ca in session.query(CertificateAuthority)
        }
    assert set(demo_ca_names()) <= set(rows)
    failures: list[str] = []
    for ca_name, (parent, der, ocsp_der) in sorted(rows.items()):
        assert ocsp_der is not None, ca_name
        checks = [
            (ca_name, lint(der)),
            (f"{ca_name} OCSP signer", lint(ocsp_der)),
            (f"{ca_name} OCSP signer against {ca_name}", lint_chain(der, ocsp_der)),
        ]
        # Roots are not chain-linted against themselves: the signer/signee linter demands an authority key
        # identifier, which RFC 5280 §4.2.1.1 lets a self-signed certificate omit (ours do; lint() accepts it).
        if parent is not None:
            checks.append((f"{ca_name} against {parent}", lint_chain(rows[parent][1], der)))
        for label, findings in checks:
            failures += [f"{label}: {f}" for f in findings]
    assert not failures, "\n".join(failures)


def test_p256_chains_are_verified_with_no_finding_at_all(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """No filtering, no threshold: pkilint verifies the P-256 signatures and has nothing to say. For SM2 it
    can only say that it did not verify (a NOTICE): SM2 chains are verified by `openssl verify` instead
    (tests/ca/test_interop.py)."""
    issued = ca_service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", "cn-370000-p256")
    assert lint_chain(issued.chain[0], issued.der, Severity.DEBUG) == []
    assert lint_chain(issued.chain[1], issued.chain[0], Severity.DEBUG) == []
    sm2 = ca_service.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", "cn-370000-sm2")
    assert {f.code for f in lint_chain(sm2.chain[0], sm2.der, Severity.DEBUG)} == {"pkix.unsupported_algorithm"}


def test_a_broken_profile_is_caught(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    """A profile that leaves key usage empty: RFC 5280 §4.2.1.3 says a key usage extension must have at least
    one bit set. Issue with it through the real service and lint."""
    profiles = ca_service.profiles
    broken = profiles.profiles["org-seal"].model_copy(update={"name": "broken", "key_usage": ()})
    service = CertificateAuthorityService(
        ca_service.db,
        ca_service.custody,
        ProfileSet(
            policy_oids=profiles.policy_oids,
            profiles={**profiles.profiles, "broken": broken},
            ca_profiles=profiles.ca_profiles,
        ),
        ca_service.public_url,
    )
    issued = service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "broken", "cn-370000-p256")
    assert x509.Certificate.load(issued.der).key_usage_value is not None  # the extension is there, empty
    findings = lint(issued.der)
    assert {f.code for f in findings} == {"pkix.no_ku_bits_set"}, report(findings)
    assert all(f.severity == "ERROR" for f in findings)


def test_a_tampered_signature_is_caught(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    issued = ca_service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", "cn-370000-p256")
    tampered = flip(issued.der, -1)  # last byte of the ECDSA signature's s
    assert lint(tampered) == []  # the certificate alone is still well formed
    findings = lint_chain(issued.chain[0], tampered)
    assert {f.code for f in findings} == {"pkix.signature_verification_failed"}, report(findings)
