"""CA key rollover and OCSP-signer rotation (ca/rollover.py), checked by the OpenSSL 3 CLI where it can.

P-256 hierarchy (OpenSSL verifies P-256 CRLs and OCSP natively; SM2 ones only through pkeyutl, see
tests/ca/test_interop.py): certificates issued under a regional CA's old key stay on a CRL the old key
signs at the URL they carry, and OCSP answers for them signed by a responder the *old* CA certificate
authorises; certificates under the new key carry the new key's distribution point. A root rollover makes
a self-signed root with the same subject plus NewWithOld / OldWithNew links, and the regional CAs under it
keep working. The module shares one database, but no test depends on another having run (pytest -n
spreads a module's tests over workers): the regional rollover's scenario is a module fixture (`rolled`) on
a CA of its own, and the root rollover rolls a root of its own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp, x509
from sqlalchemy import select

from ca.authority import CertificateAuthorityService, IssuedCertificate
from ca.ceremony import CAOffline, CeremonyRequired
from ca.errors import CAWithdrawn, UnknownCA, UnknownCRLScope
from ca.rollover import LINK_PROFILE, OfflineCARollover, Rollover, roll_over, rotate_ocsp_signer
from ca.withdrawal import withdraw_ca
from gm.signatures import verify_signature
from keys.custody import KeyAlgorithm
from store.models import Certificate, CertificateAuthority, Event
from tests.fixtures import ORG_SUBJECT, make_csr, openssl, pem, table_snapshot

pytestmark = pytest.mark.openssl

REGIONAL = "cn-370000-p256"
ROOT = "cn-root-p256"


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def _issue(service: CertificateAuthorityService, directory: Path, ca: str = REGIONAL) -> IssuedCertificate:
    return service.issue(make_csr(directory, algorithm="p256", subject=ORG_SUBJECT), "org-seal", ca)


def _crl_dp(cert: x509.Certificate) -> str:
    url: str = cert.crl_distribution_points[0]["distribution_point"].chosen[0].native
    return url


def _listed(crl_der: bytes) -> set[int]:
    parsed = crl.CertificateList.load(crl_der)
    return {e["user_certificate"].native for e in parsed["tbs_cert_list"]["revoked_certificates"] or []}


def _ocsp(service: CertificateAuthorityService, tmp_path: Path, issuer_der: bytes, cert_der: bytes) -> bytes:
    """An OCSP request made by `openssl ocsp` for `cert` under `issuer`, answered in-process."""
    request = tmp_path / f"req-{secrets.token_hex(3)}.der"
    openssl("ocsp", "-issuer", _write(tmp_path, "i.pem", pem(issuer_der)), "-cert",
            _write(tmp_path, "c.pem", pem(cert_der)), "-reqout", str(request), "-no_nonce")  # fmt: skip
    return service.ocsp(request.read_bytes())


def _openssl_ocsp_status(tmp_path: Path, response: bytes, issuer_der: bytes, cert_der: bytes, trust: bytes) -> str:
    """`openssl ocsp -respin`: the response verified against `trust` (root + the issuing CA certificate)."""
    result = openssl(
        "ocsp", "-respin", _write(tmp_path, "resp.der", response),
        "-issuer", _write(tmp_path, "i.pem", pem(issuer_der)),
        "-cert", _write(tmp_path, "c.pem", pem(cert_der)), "-CAfile", _write(tmp_path, "trust.pem", trust),
        check=False,
    )  # fmt: skip
    out = (result.stdout + result.stderr).decode()
    assert "Response verify OK" in out, out
    return out


def _basic(response: bytes) -> ocsp.BasicOCSPResponse:
    parsed = ocsp.OCSPResponse.load(response)
    assert parsed["response_status"].native == "successful", parsed.native
    basic: ocsp.BasicOCSPResponse = parsed["response_bytes"]["response"].parsed
    return basic


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    return verify_signature(
        issuer.public_key.dump(), cert["signature_algorithm"], cert["signature_value"].native,
        cert["tbs_certificate"].dump(),
    )  # fmt: skip


@dataclass(frozen=True)
class Before:
    """Two certificates under the regional CA's first key, and that key's CA certificate and OCSP signer."""

    kept: IssuedCertificate
    to_revoke: IssuedCertificate
    ca_der: bytes
    key_ref: str
    ocsp_der: bytes | None
    scope: str


@dataclass(frozen=True)
class Rolled:
    """A regional CA of this module's own (under ROOT), rolled over once after `before` was issued."""

    name: str
    before: Before
    result: Rollover


@pytest.fixture(scope="module")
def rolled(ca_service: CertificateAuthorityService, tmp_path_factory: pytest.TempPathFactory) -> Rolled:
    directory = tmp_path_factory.mktemp("before")
    name = _new_regional(ca_service)
    entry = ca_service.snapshot().get(name)
    before = Before(
        _issue(ca_service, directory, name),
        _issue(ca_service, directory, name),
        entry.certificate_der,
        entry.key_ref,
        entry.ocsp_certificate_der,
        entry.crl_scope,
    )
    return Rolled(name, before, roll_over(ca_service, name, actor="officer-test"))


def test_regional_rollover_new_key_same_subject_signed_by_the_parent(
    ca_service: CertificateAuthorityService, rolled: Rolled, tmp_path: Path
) -> None:
    before, name = rolled.before, rolled.name
    old = x509.Certificate.load(before.ca_der)
    result = rolled.result
    entry = ca_service.snapshot().get(name)
    new = entry.certificate
    assert entry.key_ref == result.key_ref != before.key_ref and entry.crl_scope == result.crl_scope
    assert new.subject == old.subject and new.key_identifier != old.key_identifier
    assert new.public_key.dump() != old.public_key.dump() and new.ca
    root = ca_service.ca_certificate(ROOT)
    assert new.authority_key_identifier == root.key_identifier and _signed_by(new, root)
    assert result.links == ()  # a regional CA gets no links (ca/rollover.py says why)
    # OpenSSL builds and checks the new regional certificate's chain to the root
    ok = openssl("verify", "-CAfile", _write(tmp_path, "root.pem", pem(root.dump())),
                 _write(tmp_path, "new.pem", pem(new.dump())), check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # the custody keeps both versions enabled: the old one still signs its CRL and OCSP signer certificates
    versions = {v.ref: v.enabled for v in ca_service.custody.versions(name)}
    assert versions[str(before.key_ref)] is True and versions[result.key_ref] is True
    with ca_service.db.session() as session:
        event = session.scalars(
            select(Event).where(Event.type == "ca.rolled_over", Event.subject == name).order_by(Event.id.desc())
        ).first()
        assert event is not None
        assert event.payload["previous_serial"] == f"{old.serial_number:x}"
        assert event.payload["serial"] == f"{new.serial_number:x}" and event.payload["key"] == result.key_ref
        assert event.payload["previous_key"] == before.key_ref
        rotated = session.scalars(select(Event).where(Event.type == "key.rotated", Event.subject == name)).all()
        assert rotated, "custody records key.rotated"


def test_new_certificates_chain_to_the_new_key_with_the_new_distribution_point(
    ca_service: CertificateAuthorityService, rolled: Rolled, tmp_path: Path
) -> None:
    before, name = rolled.before, rolled.name
    issued = _issue(ca_service, tmp_path, name)
    entry = ca_service.snapshot().get(name)
    assert issued.certificate.authority_key_identifier == entry.certificate.key_identifier
    assert issued.chain[0] == entry.certificate_der
    assert _crl_dp(issued.certificate) == f"{ca_service.public_url}/v1/cas/{name}/crl/{entry.crl_scope}"
    ca_issuers = [d["access_location"].native for d in issued.certificate.authority_information_access_value
                  if d["access_method"].native == "ca_issuers"]  # fmt: skip
    assert ca_issuers == [f"{ca_service.public_url}/v1/cas/{name}/certificate/{entry.crl_scope}"]
    assert ca_service.key_certificate(name, entry.crl_scope) == entry.certificate_der
    kept: IssuedCertificate = before.kept
    assert _crl_dp(kept.certificate) == f"{ca_service.public_url}/v1/cas/{name}/crl" + (
        f"/{before.scope}" if before.scope else ""
    )
    # the chain of an old-key certificate goes through the old CA certificate
    assert ca_service.chain_for(name, kept.der)[0] == before.ca_der
    assert ca_service.chain_for(name, issued.der)[0] == entry.certificate_der
    trust = pem(ca_service.ca_certificate(ROOT).dump())
    for leaf, ca_der in ((issued.der, entry.certificate_der), (kept.der, before.ca_der)):
        result = openssl("verify", "-CAfile", _write(tmp_path, "t.pem", trust),
                         "-untrusted", _write(tmp_path, "ca.pem", pem(ca_der)),
                         _write(tmp_path, "leaf.pem", pem(leaf)), check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        with ca_service.db.session() as session:
            row = session.get(Certificate, f"{x509.Certificate.load(leaf).serial_number:x}")
            assert row is not None
            key = entry.key_ref if leaf == issued.der else before.key_ref
            assert row.issuer_key_ref == key


def test_an_old_key_certificate_revoked_shows_on_the_old_key_crl_and_in_ocsp(
    ca_service: CertificateAuthorityService, rolled: Rolled, tmp_path: Path
) -> None:
    before, name = rolled.before, rolled.name
    revoked: IssuedCertificate = before.to_revoke
    kept: IssuedCertificate = before.kept
    old_ca = before.ca_der
    entry = ca_service.snapshot().get(name)
    ca_service.revoke(revoked.serial, "keyCompromise")
    old_crl = ca_service.current_crl(name, str(before.scope))
    new_crl = ca_service.current_crl(name, entry.crl_scope)
    assert revoked.certificate.serial_number in _listed(old_crl)
    assert revoked.certificate.serial_number not in _listed(new_crl)
    root = pem(ca_service.ca_certificate(ROOT).dump())
    # OpenSSL: the old-key CRL verifies with the OLD CA certificate, not the new one; the revoked certificate
    # fails `verify -crl_check` on it and the kept one passes
    crl_pem = _write(tmp_path, "old.crl", pem(old_crl, "X509 CRL"))
    good = openssl("crl", "-in", crl_pem, "-noout", "-CAfile", _write(tmp_path, "old-ca.pem", pem(old_ca)), check=False)
    assert b"verify OK" in good.stdout + good.stderr, good.stdout + good.stderr
    wrong = openssl("crl", "-in", crl_pem, "-noout", "-CAfile",
                    _write(tmp_path, "new-ca.pem", pem(entry.certificate_der)), check=False)  # fmt: skip
    assert b"verify OK" not in wrong.stdout + wrong.stderr
    chain = _write(tmp_path, "chain.pem", root + pem(old_ca))
    for cert, expected in ((revoked.der, False), (kept.der, True)):
        result = openssl("verify", "-crl_check", "-CAfile", chain, "-CRLfile", crl_pem,
                         _write(tmp_path, "leaf.pem", pem(cert)), check=False)  # fmt: skip
        assert (result.returncode == 0) is expected, result.stdout + result.stderr
        if not expected:
            assert b"certificate revoked" in result.stdout + result.stderr
    # OCSP: the CertID names the old key; the answer is `revoked`, signed by the old key's OCSP signer
    response = _ocsp(ca_service, tmp_path, old_ca, revoked.der)
    out = _openssl_ocsp_status(tmp_path, response, old_ca, revoked.der, root + pem(old_ca))
    assert ": revoked" in out, out
    basic = _basic(response)
    signer = basic["certs"][0]
    assert signer.dump() == before.ocsp_der
    assert signer.authority_key_identifier == x509.Certificate.load(old_ca).key_identifier
    assert _signed_by(signer, x509.Certificate.load(old_ca))
    kept_out = _openssl_ocsp_status(
        tmp_path, _ocsp(ca_service, tmp_path, old_ca, kept.der), old_ca, kept.der, root + pem(old_ca)
    )
    assert ": good" in kept_out, kept_out


def test_ocsp_picks_the_responder_by_issuer_key(
    ca_service: CertificateAuthorityService, rolled: Rolled, tmp_path: Path
) -> None:
    before, name = rolled.before, rolled.name
    entry = ca_service.snapshot().get(name)
    fresh = _issue(ca_service, tmp_path, name)
    root = pem(ca_service.ca_certificate(ROOT).dump())
    response = _ocsp(ca_service, tmp_path, entry.certificate_der, fresh.der)
    out = _openssl_ocsp_status(tmp_path, response, entry.certificate_der, fresh.der, root + pem(entry.certificate_der))
    assert ": good" in out, out
    assert _basic(response)["certs"][0].dump() == entry.ocsp_certificate_der != before.ocsp_der
    # a CertID naming the other key of the same CA is not this certificate's: unknown, never good
    mixed = _basic(_ocsp(ca_service, tmp_path, bytes(before.ca_der), fresh.der))
    assert mixed["tbs_response_data"]["responses"][0]["cert_status"].name == "unknown"


def test_crl_scopes_refresh_and_unknown_scopes_are_refused(
    ca_service: CertificateAuthorityService, rolled: Rolled
) -> None:
    before, name = rolled.before, rolled.name
    entry = ca_service.snapshot().get(name)
    numbers = ca_service.refresh_crls()
    old_label = name + (f"/{before.scope}" if before.scope else "")
    assert old_label in numbers and f"{name}/{entry.crl_scope}" in numbers
    assert len(ca_service.current_crls(name)) == 2
    with ca_service.db.session() as session:
        published = session.scalars(
            select(Event).where(Event.type == "crl.published", Event.subject == name).order_by(Event.id.desc())
        ).all()[:2]
    assert {e.payload["scope"] for e in published} == {before.scope, entry.crl_scope}
    with pytest.raises(UnknownCRLScope):
        ca_service.current_crl(name, "k999")
    # an old key's scope stays live only while a certificate it issued is unexpired
    later = ca_service.crls.clock
    try:
        ca_service.crls.clock = lambda: datetime.now(UTC) + timedelta(days=365 * 30)
        assert set(ca_service.crls.refresh_due()) >= {f"{name}/{entry.crl_scope}"}
        assert old_label not in ca_service.crls.refresh_due()
    finally:
        ca_service.crls.clock = later


def test_ocsp_signer_rotation_switches_the_responder_at_once(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    entry = ca_service.snapshot().get(REGIONAL)
    result = rotate_ocsp_signer(ca_service, REGIONAL, actor="officer-test")
    assert result.previous_key_ref == entry.ocsp_key_ref and result.key_ref != entry.ocsp_key_ref
    new_signer = x509.Certificate.load(result.certificate_der)
    assert new_signer.authority_key_identifier == entry.certificate.key_identifier  # the CA's current key
    assert new_signer.public_key.dump() != x509.Certificate.load(entry.ocsp_certificate_der).public_key.dump()
    fresh = _issue(ca_service, tmp_path)
    response = _ocsp(ca_service, tmp_path, entry.certificate_der, fresh.der)
    root = pem(ca_service.ca_certificate(ROOT).dump())
    out = _openssl_ocsp_status(tmp_path, response, entry.certificate_der, fresh.der, root + pem(entry.certificate_der))
    assert ": good" in out and _basic(response)["certs"][0].dump() == result.certificate_der
    versions = {v.ref: v.enabled for v in ca_service.custody.versions(f"{REGIONAL}.ocsp")}
    assert versions[str(entry.ocsp_key_ref)] is True  # in-flight work with the old signer finishes
    with ca_service.db.session() as session:
        old_serial = f"{x509.Certificate.load(entry.ocsp_certificate_der).serial_number:x}"
        old_row = session.get(Certificate, old_serial)
        assert old_row is not None and old_row.status == "good"
        assert session.scalars(select(Event).where(Event.type == "ocsp_signer.rotated")).first() is not None


def test_root_rollover_makes_links_and_keeps_the_regional_cas_working(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    root = _new_root(ca_service)  # a root of its own: the module's other tests keep ROOT's key
    old_root = ca_service.ca_certificate(root)
    old_scope = ca_service.snapshot().get(root).crl_scope
    temporary = _new_regional(ca_service, root)
    regional_name = _new_regional(ca_service, root)
    temporary_cert = ca_service.ca_certificate(temporary)
    regional_before = ca_service.snapshot().get(regional_name)
    leaf_before = _issue(ca_service, tmp_path, regional_name)
    result = roll_over(ca_service, root, actor="officer-test")
    new_root = ca_service.ca_certificate(root)
    assert new_root.subject == old_root.subject and new_root.self_signed in ("yes", "maybe")
    assert new_root.key_identifier != old_root.key_identifier and _signed_by(new_root, new_root)
    assert len(result.links) == 2
    with ca_service.db.session() as session:
        links = [session.get(Certificate, serial) for serial in result.links]
    assert all(link is not None and link.profile == LINK_PROFILE for link in links)
    new_with_old, old_with_new = (x509.Certificate.load(link.der) for link in links if link is not None)
    assert new_with_old.public_key.dump() == new_root.public_key.dump() and _signed_by(new_with_old, old_root)
    assert old_with_new.public_key.dump() == old_root.public_key.dump() and _signed_by(old_with_new, new_root)
    assert new_with_old.authority_key_identifier == old_root.key_identifier
    assert old_with_new.authority_key_identifier == new_root.key_identifier
    # the regional CA under it is untouched: its certificate (from the old root key) still verifies and issues
    regional = ca_service.snapshot().get(regional_name)
    assert regional.certificate_der == regional_before.certificate_der
    assert regional.chain[1] == old_root.dump()  # its chain goes through the root key that signed it
    leaf_after = _issue(ca_service, tmp_path, regional_name)
    old_pem = _write(tmp_path, "old-root.pem", pem(old_root.dump()))
    for leaf in (leaf_before, leaf_after):
        untrusted = _write(tmp_path, "r.pem", pem(regional.certificate_der))
        ok = openssl("verify", "-CAfile", old_pem, "-untrusted", untrusted,
                     _write(tmp_path, "l.pem", pem(leaf.der)), check=False)  # fmt: skip
        assert ok.returncode == 0, ok.stdout + ok.stderr
    # a relying party holding only the OLD root reaches a certificate the NEW root key signed through NewWithOld
    new_ocsp = x509.Certificate.load(ca_service.snapshot().get(root).ocsp_certificate_der)
    assert new_ocsp.authority_key_identifier == new_root.key_identifier
    bridged = openssl("verify", "-CAfile", old_pem, "-untrusted", _write(tmp_path, "nwo.pem", pem(new_with_old.dump())),
                      _write(tmp_path, "ocsp.pem", pem(new_ocsp.dump())), check=False)  # fmt: skip
    assert bridged.returncode == 0, bridged.stdout + bridged.stderr
    alone = openssl("verify", "-CAfile", old_pem, _write(tmp_path, "ocsp2.pem", pem(new_ocsp.dump())), check=False)
    assert alone.returncode != 0  # without the link it does not chain: the link is what bridges
    # a regional CA certified by the old root key, withdrawn after the rollover: on the old root key's CRL
    root_scopes = ca_service.current_crls(root)
    assert len(root_scopes) == 2
    withdraw_ca(ca_service, temporary, reason="cessationOfOperation")
    old_crl, new_crl = ca_service.current_crl(root, old_scope), ca_service.current_crl(root, result.crl_scope)
    assert _crl_signed_by(old_crl, old_root) and not _crl_signed_by(old_crl, new_root)
    assert _crl_signed_by(new_crl, new_root)
    assert temporary_cert.serial_number in _listed(old_crl) and temporary_cert.serial_number not in _listed(new_crl)
    crl_pem = _write(tmp_path, "root.crl", pem(old_crl, "X509 CRL"))
    revoked = openssl("verify", "-crl_check", "-CAfile", old_pem, "-CRLfile", crl_pem,
                      _write(tmp_path, "tmp.pem", pem(temporary_cert.dump())), check=False)  # fmt: skip
    assert b"certificate revoked" in revoked.stdout + revoked.stderr


def _crl_signed_by(der: bytes, issuer: x509.Certificate) -> bool:
    parsed = crl.CertificateList.load(der)
    return verify_signature(
        issuer.public_key.dump(), parsed["signature_algorithm"], parsed["signature"].native,
        parsed["tbs_cert_list"].dump(),
    )  # fmt: skip


def _new_regional(ca_service: CertificateAuthorityService, parent: str = ROOT) -> str:
    name = f"tmp-{secrets.token_hex(3)}-p256"
    ca_service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} CA"},
        ca_profile="regional-ca",
        parent=parent,
        region_code="440000",
        actor="test",
    )
    return name


def _new_root(ca_service: CertificateAuthorityService) -> str:
    name = f"tmp-root-{secrets.token_hex(3)}-p256"
    ca_service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} Root"},
        ca_profile="root-ca",
        actor="test",
    )
    return name


def test_withdrawing_a_rolled_over_ca_revokes_each_of_its_certificates(ca_service: CertificateAuthorityService) -> None:
    name = _new_regional(ca_service)
    first = ca_service.ca_certificate(name)
    roll_over(ca_service, name, actor="test")
    second = ca_service.ca_certificate(name)
    withdrawal = withdraw_ca(ca_service, name, reason="cessationOfOperation")
    assert withdrawal.revoked_serial == f"{second.serial_number:x}"
    with ca_service.db.session() as session:
        rows = [session.get(Certificate, f"{c.serial_number:x}") for c in (first, second)]
        assert all(row is not None and row.status == "revoked" for row in rows)
    listed = set().union(*(_listed(der) for der in ca_service.current_crls(ROOT)))
    assert {first.serial_number, second.serial_number} <= listed


def _pkeyutl_verify(directory: Path, spki_der: bytes, signed: bytes, signature: bytes) -> bool:
    """OpenSSL's SM2 verification with the standard ID over signed bytes (DESIGN.md: `crl -verify` and
    `ocsp` cannot be told the ID, so SM2 CRLs and responses are checked this way)."""
    run = secrets.token_hex(3)
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", _write(directory, f"pub-{run}.pem", pem(spki_der, "PUBLIC KEY")),
        "-rawin", "-in", _write(directory, f"tbs-{run}.der", signed), "-sigfile",
        _write(directory, f"sig-{run}.bin", signature), "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
        check=False,
    )  # fmt: skip
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


def test_sm2_old_key_crl_and_ocsp_verify_with_pkeyutl(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    ca = "cn-530000-sm2"
    issued = ca_service.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", ca)
    before = ca_service.snapshot().get(ca)
    roll_over(ca_service, ca, actor="test")
    after = ca_service.snapshot().get(ca)
    ca_service.revoke(issued.serial, "keyCompromise")
    old_spki, new_spki = before.certificate.public_key.dump(), after.certificate.public_key.dump()
    parsed = crl.CertificateList.load(ca_service.current_crl(ca, before.crl_scope))
    assert issued.certificate.serial_number in _listed(parsed.dump())
    tbs, signature = parsed["tbs_cert_list"].dump(), parsed["signature"].native
    assert _pkeyutl_verify(tmp_path, old_spki, tbs, signature)
    assert not _pkeyutl_verify(tmp_path, new_spki, tbs, signature)
    basic = _basic(_ocsp(ca_service, tmp_path, before.certificate_der, issued.der))
    assert basic["tbs_response_data"]["responses"][0]["cert_status"].name == "revoked"
    signer = basic["certs"][0]
    assert signer.dump() == before.ocsp_certificate_der
    assert _pkeyutl_verify(
        tmp_path, signer.public_key.dump(), basic["tbs_response_data"].dump(), basic["signature"].native
    )
    assert _pkeyutl_verify(
        tmp_path, old_spki, signer["tbs_certificate"].dump(), signer["signature_value"].native
    )  # the old CA certificate authorises that signer


def test_an_offline_ca_does_not_roll_over_and_one_under_it_waits_for_the_ceremony(
    ca_service: CertificateAuthorityService,
) -> None:
    """The offline CA itself: 409 ca_offline_rollover (its new key is made at the ceremony), its OCSP signer
    409 ca_offline, nothing written, no key version made. A CA under it: 202 with a `ca.rollover` request,
    the new key version made and kept enabled, nothing else written (the full flow:
    tests/ca/test_ceremony_rollover.py)."""
    parent = _new_regional(ca_service)
    child = f"{parent}-issuing"
    ca_service.create_ca(
        child,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{child} CA"},
        ca_profile="issuing-ca",
        parent=parent,
        region_code="440000",
        actor="test",
    )
    with ca_service.db.session() as session:
        row = session.get(CertificateAuthority, parent)
        assert row is not None
        row.offline = True  # what `trustseal ca ceremony move-offline` sets (the key itself stays here: a test)
    ca_service.invalidate()
    before = table_snapshot(ca_service.db)
    versions = {n: len(ca_service.custody.versions(n)) for n in (parent, f"{parent}.ocsp", child, f"{child}.ocsp")}
    with pytest.raises(OfflineCARollover) as refused:
        roll_over(ca_service, parent)
    assert refused.value.code == "ca_offline_rollover" and refused.value.status == 409
    with pytest.raises(CAOffline) as offline:
        rotate_ocsp_signer(ca_service, parent)
    assert offline.value.code == "ca_offline"
    assert table_snapshot(ca_service.db) == before
    assert {n: len(ca_service.custody.versions(n)) for n in versions} == versions

    with pytest.raises(CeremonyRequired) as waiting:  # its new certificate needs the offline parent's signature
        roll_over(ca_service, child)
    request = waiting.value.request
    assert request["operation"] == "ca.rollover" and request["subject"] == child and request["ca"] == parent
    after = table_snapshot(ca_service.db)
    changed = {table for table in after if after[table] != before.get(table)}
    assert changed <= {"ceremony_requests", "events"}, changed
    made = ca_service.custody.versions(child)
    assert len(made) == versions[child] + 1 and made[-1].enabled  # provisional, enabled while pending
    assert {n: len(ca_service.custody.versions(n)) for n in versions if n != child} == {
        n: v for n, v in versions.items() if n != child
    }


def test_refusals_change_nothing(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    name = _new_regional(ca_service)
    withdraw_ca(ca_service, name, reason="cessationOfOperation")
    before = table_snapshot(ca_service.db)
    versions = {n: len(ca_service.custody.versions(n)) for n in (name, f"{name}.ocsp")}
    with pytest.raises(CAWithdrawn):
        roll_over(ca_service, name)
    with pytest.raises(CAWithdrawn):
        rotate_ocsp_signer(ca_service, name)
    with pytest.raises(UnknownCA):
        roll_over(ca_service, "no-such-ca")
    assert table_snapshot(ca_service.db) == before
    assert {n: len(ca_service.custody.versions(n)) for n in versions} == versions
    with ca_service.db.session() as session:
        row = session.get(CertificateAuthority, name)
        assert row is not None and row.previous_keys is None


def _validates(
    leaf: x509.Certificate, root: x509.Certificate, others: list[x509.Certificate], crls: list[bytes]
) -> str:
    """pyhanko-certvalidator's word on `leaf` in hard-fail mode with exactly these CRLs (no fetching)."""
    import asyncio

    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    context = ValidationContext(
        trust_roots=[root],
        other_certs=others,
        crls=[crl.CertificateList.load(der) for der in crls],
        revocation_mode="hard-fail",
        allow_fetching=False,
    )
    try:
        asyncio.run(CertificateValidator(leaf, validation_context=context).async_validate_usage(set()))
    except Exception as exc:
        return type(exc).__name__
    return "valid"


def test_one_keys_crl_never_passes_the_other_keys_certificates(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """After a rollover each key's CRL lists only that key's certificates: each carries a critical issuing
    distribution point naming the URL its certificates carry, so a relying party handed only the other key's
    (fresh, entry-free) list cannot take it as complete. Without it pyhanko-certvalidator said VALID for a
    revoked certificate (review of the rollover)."""
    name = _new_regional(ca_service)
    old = ca_service.snapshot().get(name)
    old_leaf = _issue(ca_service, tmp_path, name)
    roll_over(ca_service, name, actor="test")
    new = ca_service.snapshot().get(name)
    new_leaf = _issue(ca_service, tmp_path, name)
    ca_service.revoke(old_leaf.serial, "keyCompromise")
    ca_service.revoke(new_leaf.serial, "keyCompromise")
    root = ca_service.ca_certificate(ROOT)
    others = [old.certificate, new.certificate]
    root_crls = ca_service.current_crls(ROOT)
    old_crl = ca_service.current_crl(name, old.crl_scope)
    new_crl = ca_service.current_crl(name, new.crl_scope)
    for der, scope in ((old_crl, old.crl_scope), (new_crl, new.crl_scope)):
        extension = crl.CertificateList.load(der)["tbs_cert_list"]["crl_extensions"]
        idp = next(e for e in extension if e["extn_id"].native == "issuing_distribution_point")
        assert idp["critical"].native
        url = idp["extn_value"].native["distribution_point"][0]
        assert url == f"{ca_service.public_url}/v1/cas/{name}/crl" + (f"/{scope}" if scope else "")
    assert _crl_dp(old_leaf.certificate).endswith(f"/v1/cas/{name}/crl")
    # only the other key's list at hand: never valid
    assert _validates(old_leaf.certificate, root, others, [new_crl, *root_crls]) != "valid"
    assert _validates(new_leaf.certificate, root, others, [old_crl, *root_crls]) != "valid"
    # both at hand: each revoked certificate is found revoked
    assert _validates(old_leaf.certificate, root, others, [new_crl, old_crl, *root_crls]) == "RevokedError"
    assert _validates(new_leaf.certificate, root, others, [new_crl, old_crl, *root_crls]) == "RevokedError"
    # OpenSSL with extended CRL support: the other key's list is not this certificate's CRL
    leaf_file = _write(tmp_path, "old-leaf.pem", pem(old_leaf.der))
    chain = _write(tmp_path, "chain.pem", pem(old.certificate.dump()) + pem(root.dump()))
    wrong = _write(tmp_path, "new.crl", pem(new_crl, "X509 CRL"))
    arguments = ("-crl_check", "-extended_crl", "-CAfile", chain, "-CRLfile", wrong, leaf_file)
    result = openssl("verify", *arguments, check=False)
    assert result.returncode != 0 and b"unable to get certificate CRL" in result.stderr, result.stderr
