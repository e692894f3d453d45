"""A root's link certificates (ca/rollover.py, review finding 2) are revocable: through
`POST /v1/certificates/{serial}/revoke` (officer), listed on the CRL of the root key that signed each, and
withdrawing the root revokes the rest. A revoked link no longer bridges the verifier (verify/trust.py
`linked_roots`) and leaves the trust list."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from asn1crypto import crl, pem, x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.context import Context
from ca.authority import CertificateAuthorityService
from ca.rollover import LINK_PROFILE, roll_over
from ca.withdrawal import withdraw_ca
from gm.signatures import verify_signature
from keys.custody import KeyAlgorithm
from store.models import Certificate
from verify.trust import linked_roots


def _new_root(service: CertificateAuthorityService) -> str:
    name = f"tmp-root-{secrets.token_hex(3)}-p256"
    service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} Root"},
        ca_profile="root-ca",
        actor="test",
    )
    return name


def _listed(der: bytes) -> set[int]:
    parsed = crl.CertificateList.load(der)
    return {e["user_certificate"].native for e in parsed["tbs_cert_list"]["revoked_certificates"] or []}


def _crl_signed_by(der: bytes, issuer: x509.Certificate) -> bool:
    parsed = crl.CertificateList.load(der)
    return verify_signature(issuer.public_key.dump(), parsed["signature_algorithm"], parsed["signature"].native,
                            parsed["tbs_cert_list"].dump())  # fmt: skip


def _doc(links: list[x509.Certificate]) -> dict[str, object]:
    texts = [pem.armor("CERTIFICATE", link.dump()).decode() for link in links]
    return {"regions": [{"code": "100000", "cas": [{"links": texts}]}]}


def test_a_revoked_link_is_on_its_signing_keys_crl_and_no_longer_bridges(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    service = context.ca
    root = _new_root(service)
    old_root = service.ca_certificate(root)
    old_scope = service.snapshot().get(root).crl_scope
    rolled = roll_over(service, root, actor="test")
    new_root = service.ca_certificate(root)
    with service.db.session() as session:
        rows = [session.get(Certificate, serial) for serial in rolled.links]
    new_with_old, old_with_new = (x509.Certificate.load(row.der) for row in rows if row is not None)
    now = datetime.now(UTC)
    old_crls = [crl.CertificateList.load(service.current_crl(root, old_scope))]
    # before: a relying party holding only the old root reaches the new key through NewWithOld
    bridged = linked_roots(_doc([new_with_old]), [old_root], old_crls, now)
    assert [link.dump() for link in bridged] == [new_with_old.dump()]

    response = client.post(f"/v1/certificates/{rolled.links[0]}/revoke", json={"reason": "keyCompromise"},
                           headers=officer)  # fmt: skip
    assert response.status_code == 200, response.text
    old_crl = service.current_crl(root, old_scope)
    assert _crl_signed_by(old_crl, old_root) and new_with_old.serial_number in _listed(old_crl)
    assert new_with_old.serial_number not in _listed(service.current_crl(root, rolled.crl_scope))
    later = datetime.now(UTC)  # the revocation counts from its own (second-truncated) time on
    assert linked_roots(_doc([new_with_old]), [old_root], [crl.CertificateList.load(old_crl)], later) == []
    links = [e for r in service_list(context)["regions"] for c in r["cas"] if c["name"] == root for e in c["links"]]
    assert links == [pem.armor("CERTIFICATE", old_with_new.dump()).decode()]
    # the root's own certificate is still not revoked this way (withdraw the root instead)
    own = client.post(f"/v1/certificates/{new_root.serial_number:x}/revoke", json={"reason": "keyCompromise"},
                      headers=officer)  # fmt: skip
    assert own.status_code == 409 and own.json()["code"] == "ca_certificate_not_revocable"

    # withdrawing the root revokes its other link, on the new key's CRL
    withdraw_ca(service, root, reason="cessationOfOperation", actor="test")
    new_crl = service.current_crl(root, rolled.crl_scope)
    assert _crl_signed_by(new_crl, new_root) and old_with_new.serial_number in _listed(new_crl)
    with service.db.session() as session:
        statuses = session.scalars(
            select(Certificate.status).where(Certificate.issuer_ca == root, Certificate.profile == LINK_PROFILE)
        ).all()
    assert statuses == ["revoked", "revoked"]
    later = datetime.now(UTC)
    assert linked_roots(_doc([old_with_new]), [new_root], [crl.CertificateList.load(new_crl)], later) == []


def service_list(context: Context) -> dict[str, Any]:
    """The trust list published now (the links it carries)."""
    return context.verification.publisher.current()
