"""Our EKUs (gm/oids.py): seal makers carry EKU_SEAL_MAKER, the trust-list signer EKU_TRUST_LIST_SIGNER
(not document signing), as OpenSSL reads them. A maker or signer certified before these EKUs existed is
noticed and re-certified for the same custody key."""

from __future__ import annotations

from pathlib import Path

from asn1crypto import pem as asn1_pem
from asn1crypto import x509

from ca.authority import CertificateAuthorityService
from ca.trust_list import SIGNER_KEY, TrustListPublisher
from gm import oids
from policies.profiles import ProfileSet, default_profiles
from seal.service import SealRequest, SealService
from store.models import Seal, SealMaker
from tests.fixtures import openssl, pem

DOCUMENT_SIGNING = "1.3.6.1.5.5.7.3.36"


def _openssl_ekus(der: bytes, tmp_path: Path) -> str:
    path = tmp_path / "cert.pem"
    path.write_bytes(pem(der))
    text = openssl("x509", "-in", str(path), "-noout", "-text").stdout.decode()
    start = text.index("X509v3 Extended Key Usage")
    return text[start : text.index("X509v3", start + 10)]


def _old_policy_service(ca_service: CertificateAuthorityService, profile: str) -> CertificateAuthorityService:
    """The CA as it was before our EKUs: `profile` without them (the trust-list signer had document signing)."""
    shipped = default_profiles()
    old_eku: tuple[str, ...] = ("document_signing",) if profile == "trust-list-signer" else ()
    old = shipped.profiles[profile].model_copy(update={"extended_key_usage": old_eku})
    profiles = ProfileSet(
        policy_oids=shipped.policy_oids, profiles={**shipped.profiles, profile: old}, ca_profiles=shipped.ca_profiles
    )
    return CertificateAuthorityService(ca_service.db, ca_service.custody, profiles, ca_service.public_url)


def test_seal_maker_certificate_carries_the_seal_maker_eku(seal_service: SealService, tmp_path: Path) -> None:
    for ca in ("cn-370000-sm2", "cn-530000-p256"):
        maker = seal_service.maker(ca)
        ekus = _openssl_ekus(maker.certificate_der, tmp_path)
        assert oids.EKU_SEAL_MAKER in ekus and oids.EKU_TRUST_LIST_SIGNER not in ekus, ekus
        assert x509.Certificate.load(maker.certificate_der).extended_key_usage_value.native == [oids.EKU_SEAL_MAKER]


def test_trust_list_signer_carries_its_eku_not_document_signing(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    document = TrustListPublisher(ca_service).current()
    der = asn1_pem.unarmor(document["signer_certificate"].encode())[2]
    ekus = _openssl_ekus(der, tmp_path)
    assert oids.EKU_TRUST_LIST_SIGNER in ekus and "Document Signing" not in ekus and DOCUMENT_SIGNING not in ekus
    assert x509.Certificate.load(der).issuer == ca_service.ca_certificate("cn-root-sm2").subject


def test_a_maker_without_the_eku_is_recertified_for_the_same_key(seal_service: SealService) -> None:
    ca_name = "cn-530000-sm2"
    current = seal_service.maker(ca_name)
    old = _old_policy_service(seal_service.ca, "seal-maker").issue_for_key(
        seal_service.custody.get(current.key_ref).public_key_der,
        {"country_name": "CN", "organization_name": "trustseal", "common_name": f"{ca_name} seal maker"},
        "seal-maker",
        ca_name,
    )
    assert x509.Certificate.load(old.der).extended_key_usage_value is None
    with seal_service.db.session() as session:  # a home from before the EKU existed
        row = session.get(SealMaker, ca_name)
        assert row is not None
        row.certificate_serial, row.certificate_der = old.serial, old.der

    fresh = seal_service.maker(ca_name)
    cert = x509.Certificate.load(fresh.certificate_der)
    assert fresh.certificate_serial != old.serial and fresh.key_ref == current.key_ref
    assert cert.public_key.dump() == x509.Certificate.load(old.der).public_key.dump()
    assert cert.extended_key_usage_value.native == [oids.EKU_SEAL_MAKER]
    made = seal_service.create(
        SealRequest(name="测试局", organisation_name="测试局", organisation_uscc="91350100M000100Y43", ca=ca_name)
    )
    with seal_service.db.session() as session:
        seal = session.get(Seal, made.id)
        assert seal is not None and seal.maker_certificate_serial == fresh.certificate_serial


def test_a_trust_list_signer_without_the_eku_is_recertified(ca_service: CertificateAuthorityService) -> None:
    publisher = TrustListPublisher(ca_service)
    key = ca_service.custody.get(SIGNER_KEY) if SIGNER_KEY in ca_service.custody.names() else None
    if key is None:
        publisher.current()
        key = ca_service.custody.get(SIGNER_KEY)
    old = _old_policy_service(ca_service, "trust-list-signer").issue_for_key(
        key.public_key_der,
        {"country_name": "CN", "organization_name": "trustseal", "common_name": "National trust list signer"},
        "trust-list-signer",
        "cn-root-sm2",
    )
    assert x509.Certificate.load(old.der).extended_key_usage_value.native == ["1.3.6.1.5.5.7.3.36"]
    publisher._signer_der = old.der  # what the newest published list of an older home carries
    _, der = publisher._signer()
    cert = x509.Certificate.load(der)
    assert der != old.der and cert.public_key.dump() == key.public_key_der
    assert cert.extended_key_usage_value.native == [oids.EKU_TRUST_LIST_SIGNER]


def test_profiles_policy_oid_comes_from_the_configured_arc() -> None:
    assert default_profiles().policy_oid("trustseal-demo") == oids.POLICY_DEMO
