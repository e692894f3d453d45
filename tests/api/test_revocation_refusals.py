"""Revocation meets seals and CAs (issue 10): `POST /v1/certificates/{serial}/revoke` refuses a CA's own
certificate (withdraw the CA instead, which also takes it off the trust list) and a seal's certificate
(revoke the seal, so the seal's status follows); revoking a seal still revokes its certificate. Nothing is
written on a refusal. The CLI says the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from asn1crypto import crl
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.context import Context
from api.problems import PROBLEM_JSON
from ca.authority import CertificateAuthorityService
from ca.errors import CACertificateNotRevocable, CertificateNotFound, UseSealRevoke
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from store.db import Database
from store.models import CRL, Certificate, Event

USCC = "91350100M000100Y43"


def _counts(context: Context) -> tuple[int, ...]:
    with context.db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (Certificate, Event, CRL))


def _refused(response: object, code: str) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


@pytest.mark.parametrize("ca", ["cn-370000-sm2", "cn-100000-p256", "cn-root-sm2"])
def test_a_ca_certificate_is_not_revoked_through_certificates(
    client: TestClient, context: Context, officer: dict[str, str], ca: str
) -> None:
    serial = context.ca.ca_certificate(ca).serial_number
    before = _counts(context)
    _refused(client.post(f"/v1/certificates/{serial:x}/revoke", json={"reason": "keyCompromise"}, headers=officer),
             "ca_certificate_not_revocable")  # fmt: skip
    assert _counts(context) == before
    assert context.ca.get_certificate(f"{serial:x}").status == "good"
    with pytest.raises(CACertificateNotRevocable):
        context.ca.revoke(f"{serial:x}", "keyCompromise")


def test_a_seals_certificate_is_revoked_by_revoking_the_seal(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    made = client.post(
        "/v1/seals",
        json={"id": "revoke-through-seal", "name": "测试局", "organisation_name": "测试局",
              "organisation_uscc": USCC, "ca": "cn-370000-p256"},
        headers=officer,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    serial = made.json()["certificate_serial"]
    before = _counts(context)
    _refused(client.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}, headers=officer),
             "use_seal_revoke")  # fmt: skip
    assert _counts(context) == before
    assert client.get("/v1/seals/revoke-through-seal/status").json()["certificate_status"] == "good"
    with pytest.raises(UseSealRevoke, match="revoke-through-seal"):
        context.ca.revoke(serial, None)
    with pytest.raises(CertificateNotFound):  # the seal path revokes that seal's certificate only
        context.ca.revoke_seal_certificate(serial, "demo-370000-p256", None)

    assert client.post("/v1/seals/revoke-through-seal/revoke", json={"reason": "dissolved"}, headers=officer).is_success
    status = client.get("/v1/seals/revoke-through-seal/status").json()
    assert status["status"] == "revoked" and status["certificate_status"] == "revoked"
    listed = crl.CertificateList.load(client.get("/v1/cas/cn-370000-p256/crl").content)
    assert int(serial, 16) in {e["user_certificate"].native for e in listed["tbs_cert_list"]["revoked_certificates"]}


def test_a_cross_certificate_stays_revocable(context: Context, tmp_path: Path) -> None:
    """A cross-certificate we issued to another hierarchy's root is no CA of ours to withdraw: revoking it
    here is the only way to undo the cross-certification."""
    db = Database(f"sqlite:///{tmp_path / 'foreign.db'}")
    db.migrate()
    foreign = CertificateAuthorityService(
        db, LocalKeystore(tmp_path / "keys", passphrase="x", scrypt_n=2**10), default_profiles(), "http://x.example"
    )
    subject = {"country_name": "CN", "organization_name": "Elsewhere", "common_name": "Elsewhere Root"}
    foreign.create_ca("x-root-sm2", algorithm=KeyAlgorithm.SM2, ca_profile="root-ca", subject=subject)
    crossed = context.ca.cross_certify("cn-root-sm2", foreign.ca_certificate("x-root-sm2").dump())
    assert context.ca.revoke(crossed.serial, "superseded").status == "revoked"
    db.dispose()
