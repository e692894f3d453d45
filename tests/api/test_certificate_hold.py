"""certificateHold is refused (issue 12): revocation here is final — no unhold, no removeFromCRL, no delta
CRLs — so a "hold" would be a revocation under a misleading name. The refusal is `422
certificate_hold_not_supported`, nothing is written, and CRL and OCSP go on saying the certificate is good.
A temporary stop is a seal's suspension, which is reversible."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.context import Context
from api.problems import PROBLEM_JSON
from ca.errors import CertificateHoldNotSupported
from ca.revocation import normalise_reason
from store.models import CRL, Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr

CA = "cn-370000-sm2"


def _counts(context: Context) -> tuple[int, ...]:
    with context.db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (Certificate, Event, CRL))


def _hold_refused(response: object) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "certificate_hold_not_supported"


@pytest.mark.parametrize("spelling", ["certificateHold", "certificate_hold"])
def test_certificate_hold_is_refused_and_nothing_changes(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path, spelling: str
) -> None:
    issued = context.ca.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", CA)
    crl_before = client.get(f"/v1/cas/{CA}/crl").content
    before = _counts(context)
    _hold_refused(client.post(f"/v1/certificates/{issued.serial}/revoke", json={"reason": spelling}, headers=officer))
    assert _counts(context) == before
    assert context.ca.get_certificate(issued.serial).status == "good"
    listed = crl.CertificateList.load(client.get(f"/v1/cas/{CA}/crl").content)
    assert client.get(f"/v1/cas/{CA}/crl").content == crl_before
    entries = listed["tbs_cert_list"]["revoked_certificates"].native or []
    assert issued.certificate.serial_number not in {entry["user_certificate"] for entry in entries}

    request = _ocsp_request(context, issued.certificate.serial_number)
    answer = ocsp.OCSPResponse.load(client.get(f"/v1/ocsp/{base64.b64encode(request).decode()}").content)
    single = answer["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "good"

    # a final reason still revokes
    done = client.post(f"/v1/certificates/{issued.serial}/revoke", json={"reason": "superseded"}, headers=officer)
    assert done.status_code == 200 and done.json()["revocation_reason"] == "superseded"


def test_withdrawing_a_ca_on_hold_is_refused_too(client: TestClient, context: Context, officer: dict[str, str]) -> None:
    before = _counts(context)
    _hold_refused(client.post("/v1/cas/cn-530000-sm2/withdraw", json={"reason": "certificateHold"}, headers=officer))
    assert _counts(context) == before
    assert context.ca.ca_status("cn-530000-sm2") == "active"


def test_the_service_layer_refuses_it_for_every_caller() -> None:
    for spelling in ("certificateHold", "certificate_hold"):
        with pytest.raises(CertificateHoldNotSupported):
            normalise_reason(spelling)
    assert normalise_reason("keyCompromise") == "key_compromise"


def _ocsp_request(context: Context, serial: int) -> bytes:
    import hashlib

    issuer = context.ca.ca_certificate(CA)
    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    return ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
