"""invalidity_date end to end (issue 12): a revocation (POST /v1/certificates/{serial}/revoke) or a CA
withdrawal carrying the time a compromise began puts it in the CRL entry (RFC 5280 §5.3.2, read back
with `openssl crl -text`) and in OCSP's singleExtensions (RFC 6960 §4.4.5); a future or zone-less date
is refused with 422 and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl, ocsp, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.auth import create_token
from api.context import Context
from keys.custody import KeyAlgorithm
from store.models import CRL, Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr, openssl

pytestmark = pytest.mark.openssl
COMPROMISED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', 'test-invalidity-officer')}"}


def _counts(context: Context) -> tuple[int, ...]:
    with context.db.session() as session:
        return tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in (Certificate, Event, CRL))


def _crl_text(client: TestClient, ca: str, tmp_path: Path) -> str:
    path = tmp_path / f"{ca}.crl"
    path.write_bytes(client.get(f"/v1/cas/{ca}/crl").content)
    return openssl("crl", "-inform", "DER", "-in", str(path), "-noout", "-text").stdout.decode()


def _entry(client: TestClient, ca: str, serial: int) -> crl.RevokedCertificate:
    listed = crl.CertificateList.load(client.get(f"/v1/cas/{ca}/crl").content)
    return next(e for e in listed["tbs_cert_list"]["revoked_certificates"] if e["user_certificate"].native == serial)


def _ocsp(client: TestClient, issuer: x509.Certificate, serial: int) -> ocsp.SingleResponse:
    cert_id = {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": issuer.subject.sha1,
        "issuer_key_hash": issuer.public_key.sha1,
        "serial_number": serial,
    }
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}})
    answer = client.post("/v1/ocsp", content=request.dump(), headers={"content-type": "application/ocsp-request"})
    return ocsp.OCSPResponse.load(answer.content).basic_ocsp_response["tbs_response_data"]["responses"][0]


def test_a_late_found_compromise_reaches_the_crl_entry_and_ocsp(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    csr = make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT)
    issued = context.ca.issue(csr, "org-seal", "cn-530000-p256")
    serial = issued.certificate.serial_number
    body = {"reason": "keyCompromise", "invalidity_date": COMPROMISED.isoformat()}
    answer = client.post(f"/v1/certificates/{issued.serial}/revoke", json=body, headers=officer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["invalidity_date"] == COMPROMISED.isoformat()

    text = _crl_text(client, "cn-530000-p256", tmp_path)
    blocks = [b for b in text.split("Serial Number:")[1:] if int(b.split()[0], 16) == serial]
    assert len(blocks) == 1, text
    block = blocks[0]
    assert "Invalidity Date:" in block, text
    assert "Jan  2 03:04:05 2026 GMT" in block and "Key Compromise" in block
    entry = _entry(client, "cn-530000-p256", serial)
    assert entry.invalidity_date_value.native == COMPROMISED
    assert entry["revocation_date"].native > COMPROMISED  # revoked now, untrusted since the compromise

    single = _ocsp(client, context.ca.ca_certificate("cn-530000-p256"), serial)
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "key_compromise"
    extensions = {e["extn_id"].native: e["extn_value"].native for e in single["single_extensions"]}
    assert extensions == {"invalidity_date": COMPROMISED}


def test_a_revocation_without_one_has_no_invalidity_date(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    issued = context.ca.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", "cn-530000-p256")
    assert (
        client.post(f"/v1/certificates/{issued.serial}/revoke", json={}, headers=officer).json()["invalidity_date"]
        is None
    )
    entry = _entry(client, "cn-530000-p256", issued.certificate.serial_number)
    assert entry.invalidity_date_value is None


@pytest.mark.parametrize(
    "moment",
    [(datetime.now(UTC) + timedelta(days=1)).isoformat(), "2026-01-01T00:00:00", "0500-06-01T00:00:00+00:00"],
    ids=["future", "no-zone", "year-500"],
)
def test_a_future_or_zoneless_invalidity_date_is_refused_and_changes_nothing(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path, moment: str
) -> None:
    issued = context.ca.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", "cn-530000-p256")
    before = _counts(context)
    answer = client.post(f"/v1/certificates/{issued.serial}/revoke", json={"invalidity_date": moment}, headers=officer)
    assert answer.status_code == 422 and answer.json()["code"] == "invalid_invalidity_date", answer.text
    assert _counts(context) == before
    with context.db.session() as session:
        assert session.get(Certificate, issued.serial).status == "good"  # type: ignore[union-attr]


def test_a_withdrawal_puts_its_invalidity_date_in_the_parents_crl(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    context.ca.create_ca(
        "inv-440000-p256",
        algorithm=KeyAlgorithm("p256"),
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": "inv-440000-p256"},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        region_name="Guangdong",
    )
    body = {"reason": "caCompromise", "invalidity_date": COMPROMISED.isoformat()}
    assert client.post("/v1/cas/inv-440000-p256/withdraw", json=body, headers=officer).status_code == 200
    serial = context.ca.ca_certificate("inv-440000-p256").serial_number
    assert _entry(client, "cn-root-p256", serial).invalidity_date_value.native == COMPROMISED
    text = _crl_text(client, "cn-root-p256", tmp_path)
    assert "Invalidity Date:" in text and "Jan  2 03:04:05 2026 GMT" in text
