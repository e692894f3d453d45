"""OCSP-signer renewal for every live CA key (ca/rollover.py `renew_ocsp_signer`, review finding 1): an
earlier key's signer (365 days) would expire years before the certificates it answers for (up to 1825
days); the scheduler renews it, certified by that earlier key, and the responder switches to it."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import ocsp, x509
from sqlalchemy import select

from ca.authority import CertificateAuthorityService
from ca.errors import UnknownCAKey
from ca.rollover import due_ocsp_signers, renew_due_ocsp_signers, renew_ocsp_signer, roll_over
from gm.signatures import verify_signature
from keys.custody import KeyAlgorithm
from store.models import Event
from tests.fixtures import ORG_SUBJECT, make_csr, openssl, pem, table_snapshot

pytestmark = pytest.mark.openssl

ROOT = "cn-root-p256"


def _new_regional(service: CertificateAuthorityService) -> str:
    name = f"tmp-{secrets.token_hex(3)}-p256"
    service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} CA"},
        ca_profile="regional-ca",
        parent=ROOT,
        region_code="440000",
        actor="test",
    )
    return name


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def _request(tmp_path: Path, issuer_der: bytes, cert_der: bytes) -> bytes:
    out = tmp_path / f"req-{secrets.token_hex(3)}.der"
    openssl("ocsp", "-issuer", _write(tmp_path, "i.pem", pem(issuer_der)), "-cert",
            _write(tmp_path, "c.pem", pem(cert_der)), "-reqout", str(out), "-no_nonce")  # fmt: skip
    return out.read_bytes()


def _signer(response: bytes) -> x509.Certificate:
    basic: ocsp.BasicOCSPResponse = ocsp.OCSPResponse.load(response)["response_bytes"]["response"].parsed
    cert: x509.Certificate = basic["certs"][0]
    return cert


def test_an_earlier_keys_ocsp_signer_is_renewed_under_that_key(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    name = _new_regional(ca_service)
    old = ca_service.snapshot().get(name)
    leaf = ca_service.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", name)
    request = _request(tmp_path, old.certificate_der, leaf.der)
    before = ca_service.ocsp_answer(request)
    assert before.this_update is not None  # a stored pre-signed answer, signed by the old key's signer
    assert _signer(before.der).dump() == old.ocsp_certificate_der
    roll_over(ca_service, name, actor="test")
    new = ca_service.snapshot().get(name)
    now = datetime.now(UTC)
    assert not [due for due in due_ocsp_signers(ca_service, now) if due[0] == name]
    later = now + timedelta(days=340)  # both signers within 30 days of their 365-day end; the leaf lives on
    assert {(name, old.key_ref), (name, new.key_ref)} <= set(due_ocsp_signers(ca_service, later))

    renewed = renew_ocsp_signer(ca_service, name, old.key_ref, actor="officer-test")
    signer = x509.Certificate.load(renewed.certificate_der)
    old_ca = x509.Certificate.load(old.certificate_der)
    assert signer.authority_key_identifier == old_ca.key_identifier  # certified by the earlier key
    assert verify_signature(old_ca.public_key.dump(), signer["signature_algorithm"],
                            signer["signature_value"].native, signer["tbs_certificate"].dump())  # fmt: skip
    assert signer.not_valid_after >= x509.Certificate.load(old.ocsp_certificate_der).not_valid_after
    assert renewed.previous_key_ref == old.ocsp_key_ref and renewed.key_ref != old.ocsp_key_ref
    generations = {g.key_ref: g for g in ca_service.snapshot().get(name).generations}
    assert generations[old.key_ref].ocsp_certificate_der == renewed.certificate_der
    assert generations[new.key_ref].ocsp_certificate_der == new.ocsp_certificate_der  # the other key untouched
    enabled = {v.ref: v.enabled for v in ca_service.custody.versions(name)}
    assert enabled[old.key_ref] is True

    # the responder answers with the renewed signer; the old signer's stored answer is not served any more
    after = ca_service.ocsp_answer(request)
    assert after.der != before.der and _signer(after.der).dump() == renewed.certificate_der
    trust = _write(tmp_path, "trust.pem", pem(ca_service.ca_certificate(ROOT).dump()) + pem(old.certificate_der))
    result = openssl("ocsp", "-respin", _write(tmp_path, "resp.der", after.der),
                     "-issuer", _write(tmp_path, "i.pem", pem(old.certificate_der)),
                     "-cert", _write(tmp_path, "c.pem", pem(leaf.der)), "-CAfile", trust, check=False)  # fmt: skip
    out = (result.stdout + result.stderr).decode()
    assert "Response verify OK" in out and ": good" in out, out
    with ca_service.db.session() as session:
        event = session.scalars(
            select(Event).where(Event.type == "ocsp_signer.renewed", Event.subject == f"{name}.ocsp")
        ).one()
    assert event.payload["issuer_key"] == old.key_ref and event.payload["key"] == renewed.key_ref

    # the scheduler's round at that later time renews both keys' signers (the renewal above signs with the
    # real clock, so its 365 days end within 30 days of `later` as well)
    made = [r.key_ref for r in renew_due_ocsp_signers(ca_service, later) if r.ca == name]
    assert len(made) == 2
    entry = ca_service.snapshot().get(name)
    assert {g.ocsp_key_ref for g in entry.generations} == set(made) and entry.ocsp_key_ref in made
    assert not [due for due in due_ocsp_signers(ca_service, now) if due[0] == name]


def test_renewing_a_key_the_ca_never_had_changes_nothing(ca_service: CertificateAuthorityService) -> None:
    name = _new_regional(ca_service)
    roll_over(ca_service, name, actor="test")
    snapshot = table_snapshot(ca_service.db)
    versions = len(ca_service.custody.versions(f"{name}.ocsp"))
    with pytest.raises(UnknownCAKey) as refused:
        renew_ocsp_signer(ca_service, name, f"{name}@99")
    assert refused.value.status == 404 and refused.value.code == "unknown_ca_key"
    assert table_snapshot(ca_service.db) == snapshot
    assert len(ca_service.custody.versions(f"{name}.ocsp")) == versions
