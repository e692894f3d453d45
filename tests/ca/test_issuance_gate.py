"""The CA signs only what policy approved (ca/issuance.py): an Approval made outside the policy step,
one altered after it, or one already signed is refused before custody signs anything."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from asn1crypto import x509

from ca import issuance
from ca.authority import CertificateAuthorityService
from ca.csr import parse_csr
from ca.errors import KeyAlgorithmNotAllowed
from ca.names import checked_values, pairs
from policies.names import ANY_ORGANISATION
from tests.fixtures import ORG_SUBJECT, make_csr


class CountingSigner:
    """Custody's signer for the CA, counting what it is asked to sign."""

    def __init__(self, service: CertificateAuthorityService, ca: str) -> None:
        self.inner = service.custody.signer(service.snapshots.entry(ca).key_ref)
        self.algorithm = self.inner.algorithm
        self.calls = 0

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        return self.inner.sign(data)


def _approval(service: CertificateAuthorityService, tmp_path: Path) -> issuance.Approval:
    ca = service.snapshots.entry("cn-370000-p256")
    request = parse_csr(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT))
    return issuance.approve_csr(
        service.subscriber_profile("org-seal"),
        request,
        ca,
        ca.certificate,
        parent=ca.parent,
        status=ca.status,
        namespaces=ca.namespaces,
        requester=ANY_ORGANISATION,
    )


def _sign(service: CertificateAuthorityService, approval: issuance.Approval, signer: CountingSigner) -> bytes:
    template = service._template(approval.ca, approval.ca_certificate, approval.profile)
    return issuance.sign(approval, template, signer).der  # type: ignore[arg-type]


def test_an_approved_request_is_signed_once(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    approval = _approval(ca_service, tmp_path)
    signer = CountingSigner(ca_service, "cn-370000-p256")
    der = _sign(ca_service, approval, signer)
    assert x509.Certificate.load(der).subject.dump() == approval.subject.der
    with pytest.raises(issuance.NotApproved):  # one approval, one serial
        _sign(ca_service, approval, signer)
    assert signer.calls == 1


def test_a_template_that_did_not_come_from_policy_is_refused(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    genuine = _approval(ca_service, tmp_path)
    profile = ca_service.profile("ocsp-signer")  # an infrastructure profile no CSR may ask for
    forged = issuance.Approval(
        genuine.ca,
        genuine.ca_certificate,
        profile,
        checked_values(pairs(x509.Name.build({"country_name": "CN", "common_name": "x"})), profile.subject),
        genuine.spki_der,
        None,
    )
    altered = dataclasses.replace(genuine, profile=profile)  # approved as org-seal, then changed
    signer = CountingSigner(ca_service, "cn-370000-p256")
    for approval in (forged, altered):
        with pytest.raises(issuance.NotApproved):
            _sign(ca_service, approval, signer)
    assert signer.calls == 0


def test_policy_refusals_happen_before_an_approval_exists(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    ca = ca_service.snapshots.entry("cn-370000-sm2")
    request = parse_csr(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT))  # a P-256 key for an SM2 CA
    before = len(issuance._APPROVED)
    with pytest.raises(KeyAlgorithmNotAllowed):
        issuance.approve_csr(
            ca_service.subscriber_profile("org-seal"),
            request,
            ca,
            ca.certificate,
            parent=ca.parent,
            status=ca.status,
            namespaces=ca.namespaces,
            requester=ANY_ORGANISATION,
        )
    assert len(issuance._APPROVED) == before
