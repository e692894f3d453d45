"""A person's certificate is not public (issue 12): GET /v1/certificates/{serial} shows it only to officers
and admins (not auditors: they read the log), and to anyone else answers exactly what an unknown serial
answers. What is public about it — the CRL, OCSP, the ledger — carries its serial and status, never the
name, ID number or mailbox."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.auth import create_token
from api.context import Context
from store.models import Event
from tests.fixtures import ORG_SUBJECT, make_csr

CA = "cn-370000-sm2"
NAME = "张三丰"
ID_NUMBER = "370102199001011234"
EMAIL = "zhang.sanfeng@example.cn"
UNKNOWN = "cd" * 16


@pytest.fixture(scope="module")
def tokens(context: Context) -> dict[str, dict[str, str]]:
    roles = ("officer", "auditor", "admin", "verifier", "issuer")
    return {r: {"Authorization": f"Bearer {create_token(context.db, r, f'privacy-{r}')}"} for r in roles}


@pytest.fixture(scope="module")
def person_serial(
    client: TestClient, tokens: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> str:
    csr = make_csr(
        tmp_path_factory.mktemp("person"),
        algorithm="sm2",
        subject=f"/C=CN/serialNumber={ID_NUMBER}/CN={NAME}",
        extra=["-utf8", "-addext", f"subjectAltName=email:{EMAIL}"],
    )
    response = client.post(
        "/v1/certificates", json={"csr_pem": csr.decode(), "profile": "person", "ca": CA}, headers=tokens["officer"]
    )
    assert response.status_code == 201, response.text
    serial: str = response.json()["serial"]
    return serial


def _without_serial(response: object, serial: str) -> tuple[int, dict[str, object]]:
    from httpx import Response

    assert isinstance(response, Response)
    body = response.json()
    body["detail"] = body["detail"].replace(serial, "<serial>")
    return response.status_code, body


def test_a_person_certificate_exists_only_for_officers_and_admins(
    client: TestClient, tokens: dict[str, dict[str, str]], person_serial: str
) -> None:
    unknown = _without_serial(client.get(f"/v1/certificates/{UNKNOWN}"), UNKNOWN)
    assert unknown[0] == 404 and unknown[1]["code"] == "certificate_not_found"
    assert _without_serial(client.get(f"/v1/certificates/{person_serial}"), person_serial) == unknown
    for role in ("verifier", "issuer", "auditor"):
        answer = client.get(f"/v1/certificates/{person_serial}", headers=tokens[role])
        assert _without_serial(answer, person_serial) == unknown, role
        assert ID_NUMBER not in answer.text and NAME not in answer.text
    for role in ("officer", "admin"):
        shown = client.get(f"/v1/certificates/{person_serial}", headers=tokens[role])
        assert shown.status_code == 200, shown.text
        assert ID_NUMBER in shown.json()["subject"] and shown.json()["profile"] == "person"


def test_a_bad_token_is_401_whatever_the_serial(client: TestClient, person_serial: str) -> None:
    bad = {"Authorization": "Bearer ts_not-a-token"}
    for serial in (person_serial, UNKNOWN):
        answer = client.get(f"/v1/certificates/{serial}", headers=bad)
        assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"


def test_organisation_certificates_stay_public(
    client: TestClient, tokens: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    issued = client.post(
        "/v1/certificates", json={"csr_pem": csr.decode(), "profile": "org-seal", "ca": CA}, headers=tokens["officer"]
    )
    shown = client.get(f"/v1/certificates/{issued.json()['serial']}")
    assert shown.status_code == 200 and "91350100M000100Y43" in shown.json()["subject"]


def _ocsp_request(ca: x509.Certificate, serial: int) -> bytes:
    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(ca.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(ca.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    return ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()


def test_crl_ocsp_and_ledger_carry_no_personal_data(
    client: TestClient, context: Context, tokens: dict[str, dict[str, str]], person_serial: str
) -> None:
    revoked = client.post(
        f"/v1/certificates/{person_serial}/revoke", json={"reason": "keyCompromise"}, headers=tokens["officer"]
    )
    assert revoked.status_code == 200, revoked.text
    personal = [v.encode("utf-8") for v in (NAME, ID_NUMBER, EMAIL, "zhang.sanfeng")]

    crl_der = client.get(f"/v1/cas/{CA}/crl").content
    assert not [p for p in personal if p in crl_der]
    entries = crl.CertificateList.load(crl_der)["tbs_cert_list"]["revoked_certificates"]
    ours = [e for e in entries if e["user_certificate"].native == int(person_serial, 16)]
    assert len(ours) == 1
    assert {ext["extn_id"].native for ext in ours[0]["crl_entry_extensions"]} <= {"crl_reason"}

    ca = x509.Certificate.load(client.get(f"/v1/cas/{CA}/certificate").content)
    answer = client.post("/v1/ocsp", content=_ocsp_request(ca, int(person_serial, 16)))
    assert answer.status_code == 200
    single = ocsp.OCSPResponse.load(answer.content)["response_bytes"]["response"].parsed["tbs_response_data"]
    assert single["responses"][0]["cert_status"].name == "revoked"
    assert not [p for p in personal if p in answer.content]

    with context.db.session() as session:
        events = session.scalar(select(func.count()).select_from(Event)) or 0
    deadline = time.monotonic() + 5  # the integrator's checkpoint covers every committed event within ~1 s
    while (size := client.get("/v1/ledger/checkpoint").json()["size"]) < events:
        assert time.monotonic() < deadline, (size, events)
        time.sleep(0.05)
    entries_json = [
        entry
        for s in range(0, size, 1000)
        for entry in client.get("/v1/ledger/entries", params={"start": s, "end": min(size, s + 1000)}).json()["entries"]
    ]
    ledger = json.dumps(entries_json, ensure_ascii=False) + "".join(
        base64.b64decode(e["leaf_input"]).decode("utf-8") for e in entries_json
    )
    assert person_serial in ledger  # the issuance and the revocation are there, by serial
    assert not [p for p in personal if p.decode() in ledger]
