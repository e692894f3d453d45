"""A seal holder's re-key that cuts off a compromised key (`POST /v1/keys/seal.<id>/rotate` with `reason` and
`invalidity_date`, `trustseal keys rotate seal.<id> --reason …`): the old holder certificate is revoked in the
re-key's own transaction (CRL entry with the invalidity date, OCSP from the same rows, events), documents
timestamped before the invalidity date still verify PASSED; without a reason the old certificate is left to
expire. Bad parameters are refused before custody makes anything."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import crl, ocsp
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.auth import create_token
from api.cli import app
from api.context import Context
from api.problems import PROBLEM_JSON
from seal.service import SealRequest
from signing.pdf import Placement
from signing.service import Caller
from store.models import Certificate, Event
from tests.fixtures import make_pdf
from verify.report import PASSED

CALLER = Caller(role="issuer", name="t", seal_ids=("*",))


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', f'officer-{secrets.token_hex(4)}')}"}


def _seal(context: Context) -> str:
    request = SealRequest("Jinan Test Bureau", "Jinan Test Bureau", "91350100M000100Y43", "cn-370000-sm2")
    return context.seals.create(request, actor="test").id


def _sealed(context: Context, seal_id: str) -> bytes:
    return context.signing.seal_pdf(make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level="B-T").pdf


def _verdict(context: Context, pdf: bytes) -> dict[str, Any]:
    report: dict[str, Any] = context.verification.verifier().verify(pdf).as_json()
    return report


def _certificate(context: Context, serial: str) -> Certificate:
    with context.db.session() as session:
        row = session.get(Certificate, serial)
        assert row is not None
        session.expunge(row)
        return row


@dataclass(frozen=True)
class Compromise:
    seal_id: str
    old_serial: str
    moment: datetime  # the invalidity date given
    before: bytes  # sealed (B-T) before it
    after: bytes  # sealed (B-T) after it, before the re-key
    result: dict[str, Any]  # the re-key's answer


@pytest.fixture(scope="module")
def compromise(client: TestClient, context: Context, officer: dict[str, str]) -> Compromise:
    """A seal used, its key found compromised as of a moment between two documents, re-keyed with keyCompromise."""
    seal_id = _seal(context)
    old_serial = context.seals.get(seal_id).certificate_serial
    before = _sealed(context, seal_id)
    time.sleep(2)
    moment = datetime.now(UTC).replace(microsecond=0)  # whole seconds, after the first timestamp
    time.sleep(1.2)
    after = _sealed(context, seal_id)
    time.sleep(1.2)  # revocation dates are whole seconds: one in the timestamp's second would count as before it
    body = {"reason": "keyCompromise", "invalidity_date": moment.isoformat()}
    answer = client.post(f"/v1/keys/seal.{seal_id}/rotate", json=body, headers=officer)
    assert answer.status_code == 200, answer.text
    return Compromise(seal_id, old_serial, moment, before, after, answer.json())


def test_a_key_compromise_rekey_revokes_the_old_certificate_and_earlier_documents_still_verify(
    client: TestClient, context: Context, compromise: Compromise
) -> None:
    seal_id, old_serial, result = compromise.seal_id, compromise.old_serial, compromise.result
    assert (result["key"], result["version"], result["previous_version"]) == (f"seal.{seal_id}", 2, 1)
    assert result["revoked_serial"] == old_serial

    old = _certificate(context, old_serial)
    assert (old.status, old.revocation_reason) == ("revoked", "key_compromise")
    assert old.invalidity_date == compromise.moment
    listed = crl.CertificateList.load(client.get("/v1/cas/cn-370000-sm2/crl").content)
    serial = int(old_serial, 16)
    entry = next(e for e in listed["tbs_cert_list"]["revoked_certificates"] if e["user_certificate"].native == serial)
    assert entry.crl_reason_value.native == "key_compromise"
    assert entry.invalidity_date_value.native == compromise.moment
    issuer = context.ca.ca_certificate("cn-370000-sm2")
    cert_id = {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": issuer.subject.sha1,
        "issuer_key_hash": issuer.public_key.sha1,
        "serial_number": serial,
    }
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
    answer = client.post("/v1/ocsp", content=request, headers={"content-type": "application/ocsp-request"})
    single = ocsp.OCSPResponse.load(answer.content).basic_ocsp_response["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "key_compromise"
    with context.db.session() as session:
        revoked = session.scalar(
            select(Event.id).where(Event.type == "certificate.revoked", Event.subject == old_serial)
        )
        rekeyed = session.execute(
            select(Event.id, Event.payload).where(Event.type == "seal.rekeyed", Event.subject == seal_id)
        ).one()
    assert revoked is not None and rekeyed.payload["previous_certificate_revoked"] is True
    assert rekeyed.payload["previous_certificate_serial"] == old_serial

    # timestamped before the invalidity date (and the revocation): the key was still trusted then
    assert _verdict(context, compromise.before)["result"] == PASSED
    # the new key seals, and its documents verify
    assert _verdict(context, _sealed(context, seal_id))["result"] == PASSED


def test_a_document_timestamped_after_the_invalidity_date_is_not_passed(
    context: Context, compromise: Compromise
) -> None:
    assert _verdict(context, compromise.after)["result"] != PASSED


def test_a_rekey_without_a_reason_leaves_the_old_certificate_to_expire(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    seal_id = _seal(context)
    old_serial = context.seals.get(seal_id).certificate_serial
    sealed = _sealed(context, seal_id)
    answer = client.post(f"/v1/keys/seal.{seal_id}/rotate", headers=officer)
    assert answer.status_code == 200, answer.text
    assert "revoked_serial" not in answer.json()
    assert _certificate(context, old_serial).status == "good"
    assert _verdict(context, sealed)["result"] == PASSED


def _state(context: Context, key: str) -> tuple[Any, ...]:
    with context.db.session() as session:
        events = session.scalar(select(func.count()).select_from(Event))
        revoked = session.scalar(select(func.count()).select_from(Certificate).where(Certificate.status == "revoked"))
    return events, revoked, [(v.version, v.enabled) for v in context.custody.versions(key)]


@pytest.mark.parametrize(
    ("target", "body", "status", "code"),
    [
        ("tsa.sm2", {"reason": "keyCompromise"}, 422, "rotation_reason_not_supported"),
        ("seal", {"invalidity_date": "2026-01-01T00:00:00+00:00"}, 422, "invalidity_date_needs_reason"),
        ("seal", {"reason": "boredom"}, 400, "invalid_revocation_reason"),
        ("seal", {"reason": "certificateHold"}, 422, "certificate_hold_not_supported"),
        ("seal", {"reason": "keyCompromise", "invalidity_date": "2999-01-01T00:00:00+00:00"}, 422,
         "invalid_invalidity_date"),
        ("seal", {"reason": "keyCompromise", "invalidity_date": "2026-01-01T00:00:00"}, 422,
         "invalid_invalidity_date"),
        ("seal", {"reason": "keyCompromise", "extra": 1}, 400, "invalid_request"),
    ],
)  # fmt: skip
def test_bad_rekey_parameters_are_refused_before_custody_makes_anything(
    client: TestClient, context: Context, officer: dict[str, str], target: str, body: dict[str, Any], status: int,
    code: str,
) -> None:  # fmt: skip
    if target == "seal":
        target = f"seal.{_seal(context)}"
    else:
        context.signing.tsa.unit("sm2")
    before = _state(context, target)
    answer = client.post(f"/v1/keys/{target}/rotate", json=body, headers=officer)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON) and answer.json()["code"] == code
    assert _state(context, target) == before


def test_the_cli_rekeys_with_a_reason(context: Context, live_url: str, officer: dict[str, str]) -> None:
    seal_id = _seal(context)
    old_serial = context.seals.get(seal_id).certificate_serial
    token = officer["Authorization"].removeprefix("Bearer ")
    moment = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).isoformat()
    args = ["keys", "rotate", f"seal.{seal_id}", "--reason", "keyCompromise", "--invalidity-date", moment,
            "--url", live_url, "--token", token]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"revoked the old holder certificate {old_serial}" in result.output
    assert _certificate(context, old_serial).revocation_reason == "key_compromise"


def test_a_rekey_that_revokes_needs_two_officers_and_a_plain_one_does_not(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    """Revoking the old holder certificate with a (backdatable) invalidity date ends every document the seal
    made after it: more than an approved seal revocation does, so it is the approved `key.rotate` (a review
    found one officer doing it alone). A plain re-key stays one officer's; an empty reason is no reason."""
    from api.approvals import Approvals
    from policies.approvals import parse_policy

    previous = context.approvals
    context.approvals = Approvals(context.db, parse_policy("version: 1\noperations:\n  key.rotate: 2\n", "test"))
    try:
        seal_id = _seal(context)
        serial = context.seals.get(seal_id).certificate_serial
        body = {"reason": "keyCompromise", "invalidity_date": (datetime.now(UTC) - timedelta(days=1)).isoformat()}
        pending = client.post(f"/v1/keys/seal.{seal_id}/rotate", json=body, headers=officer)
        assert pending.status_code == 202, pending.text
        assert pending.json()["approval"]["operation"] == "key.rotate"
        assert _certificate(context, serial).status == "good"  # nothing until a second officer approves
        second = {"Authorization": f"Bearer {create_token(context.db, 'officer', f'second-{secrets.token_hex(4)}')}"}
        done = client.post(f"/v1/approvals/{pending.json()['approval']['id']}/approve", headers=second)
        assert done.status_code == 200, done.text
        assert done.json()["result"]["revoked_serial"] == serial
        assert _certificate(context, serial).status == "revoked"
        plain = client.post(f"/v1/keys/seal.{seal_id}/rotate", json={"reason": ""}, headers=officer)
        assert plain.status_code == 200, plain.text
        assert "revoked_serial" not in plain.json()
    finally:
        context.approvals = previous


def test_outside_pdf_the_same_invalidity_rule_applies(context: Context, compromise: Compromise) -> None:
    """OFD and bare seal signatures judge a certificate through seal_checks.check_chain / diagnose_chain:
    asked as of a moment between the reported compromise and the revocation, the old holder certificate
    counts as revoked there too; as of a moment before the compromise it is not (one `listed_before`)."""
    from verify import seal_checks
    from verify.report import INDETERMINATE, SignatureReport
    from verify.sources import Sources
    from verify.trust import TrustStore

    old = _certificate(context, compromise.old_serial)
    assert old.revoked_at is not None
    store = TrustStore()
    store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
    lists = [
        crl.CertificateList.load(der) for ca in ("cn-root-sm2", "cn-370000-sm2") for der in context.ca.current_crls(ca)
    ]
    sources = Sources(revocation_lookup=lambda _certs: (lists, []))

    def revocation(moment: datetime) -> tuple[str, str | None, str]:
        out = SignatureReport()
        seal_checks.check_chain(out, old.der, [], moment, store, sources, proven=True)
        check = next(c for c in out.as_json()["checks"] if c["name"] == "revocation")
        return check["status"], check["code"], check["detail"]

    between = compromise.moment + (old.revoked_at - compromise.moment) / 2
    status, code, detail = revocation(between)
    assert (status, code) == (INDETERMINATE, "REVOKED_NO_POE") and "invalidityDate" in detail, detail
    assert revocation(compromise.moment - timedelta(seconds=1))[0] == PASSED
