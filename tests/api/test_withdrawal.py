"""Withdrawing a CA (`POST /v1/cas/{ca}/withdraw`, ca/withdrawal.py): withdrawn on the trust list at once
(a new list is published), its certificate revoked by its parent (the parent's CRL and OCSP say so), both
recorded as events in one transaction; refusals are problem+json and write nothing; a withdrawn CA issues
nothing more. Every test here has its own CA or withdraws a different one (the module shares a database).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from ca.errors import CAWithdrawn
from keys.custody import KeyAlgorithm
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from store.models import CRL, Certificate, CertificateAuthority, Event, TrustListRecord
from tests.fixtures import ORG_SUBJECT, make_csr, make_pdf
from verify.report import PASSED


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    """An officer whose name the events must carry (tests below look for it)."""
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', 'test-withdraw-officer')}"}


def _counts(context: Context) -> tuple[int, ...]:
    with context.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(t)) or 0 for t in (Certificate, Event, CRL, TrustListRecord)
        )


def _problem(response: object, status: int, code: str) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


def _new_ca(context: Context, name: str, parent: str | None, family: str = "p256") -> None:
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm(family),
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": name},
        ca_profile="regional-ca" if parent else "root-ca",
        parent=parent,
        region_code="440000" if parent else None,
        region_name="Guangdong" if parent else None,
    )


def _ocsp_status(client: TestClient, issuer: x509.Certificate, serial: int) -> ocsp.SingleResponse:
    request = ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha256"},
                            "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
                            "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
                            "serial_number": serial,
                        }
                    }
                ]
            }
        }
    ).dump()
    parsed = ocsp.OCSPResponse.load(client.post("/v1/ocsp", content=request).content)
    single: ocsp.SingleResponse = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]
    return single


def _listed(client: TestClient, name: str) -> tuple[int, dict[str, object]]:
    document = client.get("/v1/trust-list").json()
    entry = next(ca for region in document["regions"] for ca in region["cas"] if ca["name"] == name)
    return document["sequence"], entry


def test_withdraw_a_regional_ca(client: TestClient, context: Context, officer: dict[str, str]) -> None:
    _new_ca(context, "gd-440000-p256", "cn-root-p256")
    sequence, entry = _listed(client, "gd-440000-p256")
    assert entry["status"] == "granted"
    serial = context.ca.ca_certificate("gd-440000-p256").serial_number

    response = client.post("/v1/cas/gd-440000-p256/withdraw", json={"reason": "caCompromise"}, headers=officer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"ca", "status", "withdrawn_at", "revoked_serial", "trust_list_published"}
    assert body["trust_list_published"] is True
    assert (body["ca"], body["status"], body["revoked_serial"]) == ("gd-440000-p256", "withdrawn", f"{serial:x}")
    withdrawn_at = datetime.fromisoformat(body["withdrawn_at"])
    assert abs(withdrawn_at - datetime.now(UTC)) < timedelta(minutes=1)

    # the trust list at once: a new sequence with the history entry
    newer, entry = _listed(client, "gd-440000-p256")
    assert newer > sequence and entry["status"] == "withdrawn"
    assert entry["history"][-1] == {"status": "withdrawn", "from": body["withdrawn_at"]}  # type: ignore[index]
    assert (
        client.get("/v1/cas").json()[[c["name"] for c in client.get("/v1/cas").json()].index("gd-440000-p256")][
            "status"
        ]
        == "withdrawn"
    )

    # the parent's CRL and OCSP
    listed = crl.CertificateList.load(client.get("/v1/cas/cn-root-p256/crl").content)
    entries = {e["user_certificate"].native: e for e in listed["tbs_cert_list"]["revoked_certificates"]}
    assert entries[serial]["crl_entry_extensions"][0]["extn_value"].native == "ca_compromise"
    single = _ocsp_status(client, context.ca.ca_certificate("cn-root-p256"), serial)
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "ca_compromise"

    # both changes recorded, in the same transaction as the status (adjacent event ids, the parent's
    # new CRL between them)
    with context.db.session() as session:
        events = list(session.scalars(select(Event).where(Event.subject.in_(["gd-440000-p256", f"{serial:x}"]))))
        kinds = {e.type: e for e in events}
        between = list(
            session.scalars(
                select(Event).where(Event.id > kinds["certificate.revoked"].id, Event.id < kinds["ca.withdrawn"].id)
            )
        )
    assert kinds["ca.withdrawn"].payload["revoked_serial"] == f"{serial:x}"
    assert kinds["ca.withdrawn"].actor == kinds["certificate.revoked"].actor
    assert "test-withdraw-officer" in str(kinds["ca.withdrawn"].actor)
    assert [(e.type, e.subject) for e in between] == [("crl.published", "cn-root-p256")]

    # twice: 409, nothing written
    before = _counts(context)
    _problem(client.post("/v1/cas/gd-440000-p256/withdraw", json={"reason": "caCompromise"}, headers=officer),
             409, "ca_already_withdrawn")  # fmt: skip
    assert _counts(context) == before


def test_a_withdrawn_ca_issues_nothing(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    _new_ca(context, "gd-440000-sm2", "cn-root-sm2", "sm2")
    assert client.post("/v1/cas/gd-440000-sm2/withdraw", json={}, headers=officer).status_code == 200
    before = _counts(context)
    csr_pem = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT).decode()
    _problem(client.post("/v1/certificates", json={"csr_pem": csr_pem, "profile": "org-seal", "ca": "gd-440000-sm2"},
                         headers=officer), 409, "ca_withdrawn")  # fmt: skip
    seal = {"name": "测试局", "organisation_name": "测试局", "organisation_uscc": "91350100M000100Y43",
            "ca": "gd-440000-sm2"}  # fmt: skip
    _problem(client.post("/v1/seals", json=seal, headers=officer), 409, "ca_withdrawn")
    with pytest.raises(CAWithdrawn):
        _new_ca(context, "gd-440100-sm2", "gd-440000-sm2", "sm2")
    with pytest.raises(CAWithdrawn):
        context.ca.cross_certify("gd-440000-sm2", context.ca.ca_certificate("cn-root-p256").dump())
    assert _counts(context) == before
    # its CRL still answers for what it issued
    assert client.get("/v1/cas/gd-440000-sm2/crl").status_code == 200


def test_refusals_write_nothing(client: TestClient, context: Context, officer: dict[str, str]) -> None:
    verifier = {"Authorization": f"Bearer {create_token(context.db, 'verifier', 'test-withdraw-verifier')}"}
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    before = _counts(context)
    _problem(client.post("/v1/cas/cn-999999-sm2/withdraw", json={}, headers=officer), 404, "unknown_ca")
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={}), 401, "unauthenticated")
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={}, headers=verifier), 403, "forbidden_role")
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"reason": "boredom"}, headers=officer),
             400, "invalid_revocation_reason")  # fmt: skip
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"invalidity_date": future}, headers=officer),
             422, "invalid_invalidity_date")  # fmt: skip
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"invalidity_date": "2026-01-01T00:00:00"},
                         headers=officer), 422, "invalid_invalidity_date")  # fmt: skip
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"invalidity_date": "yesterday"}, headers=officer),
             400, "invalid_request")  # fmt: skip
    _problem(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"extra": 1}, headers=officer), 400, "invalid_request")
    assert _counts(context) == before
    assert context.ca.ca_status("cn-530000-sm2") == "active"


def test_a_root_is_withdrawn_on_the_trust_list_only(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    _new_ca(context, "xx-root-p256", None)
    past = datetime.now(UTC) - timedelta(days=2)
    response = client.post(
        "/v1/cas/xx-root-p256/withdraw",
        json={"reason": "cessationOfOperation", "invalidity_date": past.isoformat()},
        headers=officer,
    )
    assert response.status_code == 200, response.text
    assert response.json()["revoked_serial"] is None
    assert datetime.fromisoformat(response.json()["withdrawn_at"]) == past
    _, entry = _listed(client, "xx-root-p256")
    assert entry["status"] == "withdrawn" and entry["history"][-1]["from"] == past.isoformat()  # type: ignore[index]
    with context.db.session() as session:
        row = session.get(Certificate, f"{context.ca.ca_certificate('xx-root-p256').serial_number:x}")
        assert row is not None and row.status == "good"  # nobody above it to revoke it


def test_withdrawing_shandong_leaves_other_regions_timestamps_alone(
    client: TestClient, context: Context, officer: dict[str, str], seal_service: SealService
) -> None:
    """Tried before the national CAs: the TSA sat under cn-370000-sm2, and withdrawing it made every
    region's SM2 timestamps fail."""
    assert client.post("/v1/cas/cn-370000-sm2/withdraw", json={"reason": "caCompromise"}, headers=officer).is_success
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    sealed = context.signing.seal_pdf(
        make_pdf(), seal_id="demo-530000-sm2", caller=caller, placement=Placement(), level="B-T"
    )
    report = context.verification.verifier().verify(sealed.pdf).as_json()
    assert report["result"] == PASSED, report
    # and Shandong's own seal no longer seals (its documents would not verify)
    from seal.errors import SealNotActive

    with pytest.raises(SealNotActive, match="withdrawn"):
        context.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=caller, placement=Placement())
    with context.db.session() as session:
        assert session.get(CertificateAuthority, "cn-370000-sm2").status == "withdrawn"  # type: ignore[union-attr]
