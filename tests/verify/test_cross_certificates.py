"""Cross-certification: a hierarchy we do not run (here a "Guangdong" root in its own database and
keystore) becomes verifiable once our national root cross-certifies its root and the trust list says so."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp, x509

from api.context import Context
from ca.authority import CertificateAuthorityService
from ca.errors import SubjectNotAllowed
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from signing.cms import CMSTemplate
from store.db import Database
from verify.report import INDETERMINATE, PASSED
from verify.service import Verifier
from verify.sources import Sources
from verify.trust import TrustStore


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthorityService:
    home = tmp_path_factory.mktemp("guangdong")
    db = Database(f"sqlite:///{home / 'gd.db'}")
    db.migrate()
    keystore = LocalKeystore(home / "keys", passphrase="guangdong", scrypt_n=2**10)
    service = CertificateAuthorityService(db, keystore, default_profiles(), "http://gd.example")
    org = {"country_name": "CN", "organization_name": "Guangdong"}
    service.create_ca(
        "gd-root-sm2", algorithm=KeyAlgorithm.SM2, ca_profile="root-ca", subject={**org, "common_name": "GD Root"}
    )
    service.create_ca(
        "gd-440000-sm2",
        algorithm=KeyAlgorithm.SM2,
        ca_profile="regional-ca",
        parent="gd-root-sm2",
        region_code="440000",
        region_name="Guangdong",
        subject={**org, "common_name": "GD CA"},
    )
    return service


def _signed_by_foreign(foreign: CertificateAuthorityService, content: bytes) -> bytes:
    version = foreign.custody.create(f"leaf-{datetime.now(UTC).timestamp()}", KeyAlgorithm.SM2)
    issued = foreign.issue_for_key(
        version.public_key_der,
        {
            "country_name": "CN",
            "organization_name": "广东省某局",
            "organization_identifier": "11370000MB00000015",
            "common_name": "广东省某局电子印章",
        },
        "org-seal",
        "gd-440000-sm2",
    )
    template = CMSTemplate.for_seal(issued.der, issued.chain, "sm2", None)
    return template.build(sm3(content), datetime.now(UTC), foreign.custody.signer(version.ref).sign)


def _store(context: Context) -> TrustStore:
    store = TrustStore()
    store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
    return store


def test_cross_certified_hierarchy_verifies(context: Context, foreign: CertificateAuthorityService) -> None:
    content = b"a licence sealed in Guangdong"
    signed = _signed_by_foreign(foreign, content)
    service = context.verification.sources()

    def revocation(certs: list[x509.Certificate]) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
        ours, _ = service.revocation(certs)
        theirs = [crl.CertificateList.load(foreign.current_crl(n)) for n in ("gd-root-sm2", "gd-440000-sm2")]
        return ours + theirs, []

    sources = Sources(revocation_lookup=revocation)
    before = Verifier(_store(context), sources).verify(signed, content=content).as_json()
    assert before["result"] == INDETERMINATE
    chain = next(c for c in before["signatures"][0]["checks"] if c["name"] == "chain")
    assert chain["code"] == "NO_CERTIFICATE_CHAIN_FOUND"

    cross = context.ca.cross_certify("cn-root-sm2", foreign.ca_certificate("gd-root-sm2").dump(), actor="test")
    listed: list[dict[str, str]] = context.verification.trust_list()["cross_certificates"]  # type: ignore[assignment]
    assert [c["serial"] for c in listed] == [cross.serial]
    cert = x509.Certificate.load(cross.der)
    assert cert.subject == foreign.ca_certificate("gd-root-sm2").subject
    assert cert.key_identifier == foreign.ca_certificate("gd-root-sm2").key_identifier

    after = Verifier(_store(context), sources).verify(signed, content=content).as_json()
    assert after["result"] == PASSED, after
    # revoking the cross-certificate cuts the path again
    context.ca.revoke(cross.serial, "cessationOfOperation", actor="test")
    revoked = Verifier(_store(context), sources).verify(signed, content=content).as_json()
    assert revoked["result"] != PASSED


def test_cross_certification_refusals(context: Context, tmp_path: Path) -> None:
    with pytest.raises(SubjectNotAllowed, match="itself"):
        context.ca.cross_certify("cn-root-sm2", context.ca.ca_certificate("cn-root-sm2").dump())
    leaf = context.seals.ca.issue_for_key(
        context.custody.create(
            f"not-a-ca-{datetime.now(UTC).timestamp():.0f}-{id(tmp_path)}", KeyAlgorithm.SM2
        ).public_key_der,
        {"country_name": "CN", "common_name": "not a CA"},
        "ocsp-signer",
        "cn-370000-sm2",
    )
    with pytest.raises(SubjectNotAllowed, match="only CA"):
        context.ca.cross_certify("cn-root-sm2", leaf.der)
