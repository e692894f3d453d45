"""The offline root over HTTP: what the SM2 root must sign answers 202 `{"ceremony": …}` (`POST /v1/cas`,
`POST /v1/cas/{ca}/withdraw`, `POST /v1/keys/trust-list.sm2/rotate`), `GET /v1/ceremonies[/{id}]` for
officers, auditors and admins, `POST /v1/ceremonies/{id}/import` for officers; refusals are problem+json and
change nothing. Sealing, issuance and verification (online and offline `trustseal verify`) keep working
after the root left online custody."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp, pem, x509
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.approvals import Approvals
from api.auth import create_token
from api.cli import app as cli
from api.context import Context
from api.problems import PROBLEM_JSON
from ca.ceremony_home import CeremonyHome, move_offline
from gm import der
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from policies.approvals import OPERATIONS, parse_policy
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import ORG_SUBJECT, make_csr, make_pdf, table_snapshot
from verify.report import PASSED

runner = CliRunner()
ISSUER = Caller(role="issuer", name="t", seal_ids=("*",))


def _headers(context: Context, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, role, f'{role}-{secrets.token_hex(4)}')}"}


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    """The app with no background integrator or CRL scheduler: nothing writes while a snapshot is compared."""
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    app = create_app(Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def sealed_before(context: Context, seal_service: SealService) -> bytes:
    return context.signing.seal_pdf(
        make_pdf(), seal_id="demo-370000-sm2", caller=ISSUER, placement=Placement(), level="B-LT"
    ).pdf


@pytest.fixture(scope="module")
def home(context: Context, sealed_before: bytes, tmp_path_factory: pytest.TempPathFactory) -> CeremonyHome:
    vault = CeremonyHome.open(tmp_path_factory.mktemp("ceremony") / "home", "ceremony-passphrase", create=True)
    raw = getattr(context.custody, "inner", context.custody)
    move_offline(context.ca, raw, "cn-root-sm2", vault, "test", context.verification.publisher)
    return vault


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return _headers(context, "officer")


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


def _pending(response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    request: dict[str, Any] = response.json()["ceremony"]
    assert request["status"] == "pending" and {"id", "operation", "created_at"} <= set(request)
    assert response.headers["location"] == f"/v1/ceremonies/{request['id']}"
    return request


def _import(client: TestClient, home: CeremonyHome, request_id: str, officer: dict[str, str]) -> Any:
    document = client.get(f"/v1/ceremonies/{request_id}", headers=officer).json()
    return client.post(f"/v1/ceremonies/{request_id}/import", json=home.sign(document), headers=officer)


def _new_ca(client: TestClient, officer: dict[str, str], name: str) -> dict[str, Any]:
    body = {"name": name, "parent": "cn-root-sm2", "region": "440000", "algorithm": "sm2"}
    return _pending(client.post("/v1/cas", json=body, headers=officer))


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


def _offline_verify(client: TestClient, context: Context, pdf: bytes, tmp_path: Path) -> dict[str, Any]:
    """`trustseal verify` with the service's trust list as a file and the SM2 root: no server, no home."""
    (tmp_path / "list.json").write_text(json.dumps(client.get("/v1/trust-list").json()))
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", context.ca.ca_certificate("cn-root-sm2").dump()))
    (tmp_path / "doc.pdf").write_bytes(pdf)
    args = ["verify", str(tmp_path / "doc.pdf"), "--json", "--trust-list", str(tmp_path / "list.json"),
            "--root", str(tmp_path / "root.pem")]  # fmt: skip
    result = runner.invoke(cli, args, env={"TRUSTSEAL_HOME": str(tmp_path / "no-home")})
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_sealing_issuance_and_verification_work_with_the_root_offline(
    client: TestClient, context: Context, home: CeremonyHome, sealed_before: bytes, tmp_path: Path
) -> None:
    assert "cn-root-sm2" not in context.custody.names()
    listed = {ca["name"]: ca["offline"] for ca in client.get("/v1/cas").json()}
    assert listed["cn-root-sm2"] is True and listed["cn-370000-sm2"] is False
    sealed_after = context.signing.seal_pdf(
        make_pdf(), seal_id="demo-370000-sm2", caller=ISSUER, placement=Placement(), level="B-LT"
    ).pdf
    for pdf in (sealed_before, sealed_after):
        online = client.post("/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")}).json()
        assert online["result"] == PASSED, online
        offline = _offline_verify(client, context, pdf, tmp_path)
        assert offline["result"] == PASSED, offline
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT).decode()
    issued = client.post("/v1/certificates", json={"csr_pem": csr, "profile": "org-seal", "ca": "cn-530000-sm2"},
                         headers=_headers(context, "officer"))  # fmt: skip
    assert issued.status_code in (200, 201), issued.text
    assert client.get("/v1/cas/cn-root-sm2/crl").status_code == 200  # the pre-signed root CRL
    keys = {row["key"]: row for row in client.get("/v1/keys", headers=_headers(context, "auditor")).json()}
    assert keys["cn-root-sm2"]["custody"] == "offline" and keys["cn-root-sm2"]["versions"] == []
    assert keys["cn-root-sm2"]["rotatable"] is False and keys["cn-370000-sm2"]["custody"] == "online"


def test_a_ca_under_the_offline_root_answers_202_and_completes_on_import(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    request = _new_ca(client, officer, "cn-440000-sm2")
    assert request["operation"] == "ca.create" and request["ca"] == "cn-root-sm2"
    assert "cn-440000-sm2" not in {ca["name"] for ca in client.get("/v1/cas").json()}
    for role in ("auditor", "admin", "officer"):
        listing = client.get("/v1/ceremonies", params={"status": "pending"}, headers=_headers(context, role))
        assert request["id"] in [r["id"] for r in listing.json()["ceremonies"]]
    _problem(client.get("/v1/ceremonies", headers=_headers(context, "issuer")), 403, "forbidden_role")
    _problem(client.get("/v1/ceremonies"), 401, "unauthenticated")
    document = client.get(f"/v1/ceremonies/{request['id']}", headers=officer).json()
    output = home.sign(document)
    auditor = _headers(context, "auditor")
    _problem(client.post(f"/v1/ceremonies/{request['id']}/import", json=output, headers=auditor), 403, "forbidden_role")

    done = client.post(f"/v1/ceremonies/{request['id']}/import", json=output, headers=officer)
    assert done.status_code == 200, done.text
    assert done.json()["ceremony"]["status"] == "completed"
    assert "cn-440000-sm2" in {ca["name"] for ca in client.get("/v1/cas").json()}
    listed = client.get("/v1/trust-list").json()
    assert any(ca["name"] == "cn-440000-sm2" for region in listed["regions"] for ca in region["cas"])
    again = client.post(f"/v1/ceremonies/{request['id']}/import", json=output, headers=officer)
    _problem(again, 409, "ceremony_not_pending")
    _problem(client.get(f"/v1/ceremonies/{'0' * 32}", headers=officer), 404, "ceremony_not_found")


def test_a_withdrawal_answers_202_changes_the_trust_list_at_once_and_the_root_crl_on_import(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    assert _import(client, home, _new_ca(client, officer, "cn-450000-sm2")["id"], officer).status_code == 200
    serial = context.ca.ca_certificate("cn-450000-sm2").serial_number
    response = client.post("/v1/cas/cn-450000-sm2/withdraw", json={"reason": "caCompromise"}, headers=officer)
    request = _pending(response)
    assert response.json()["result"]["status"] == "withdrawn" and request["operation"] == "crl"
    listed = client.get("/v1/trust-list").json()
    entry = next(ca for region in listed["regions"] for ca in region["cas"] if ca["name"] == "cn-450000-sm2")
    assert entry["status"] == "withdrawn"
    root = context.ca.ca_certificate("cn-root-sm2")  # the root's delegated OCSP signer stayed online
    assert _ocsp_status(client, root, serial)["cert_status"].name == "revoked"
    assert (
        _ocsp_status(client, root, context.ca.ca_certificate("cn-370000-sm2").serial_number)["cert_status"].name
        == "good"
    )

    def listed_on_crl() -> bool:
        crl = asn1_crl.CertificateList.load(client.get("/v1/cas/cn-root-sm2/crl").content)
        return serial in [r["user_certificate"].native for r in crl["tbs_cert_list"]["revoked_certificates"]]

    assert not listed_on_crl()
    assert _import(client, home, request["id"], officer).status_code == 200
    assert listed_on_crl()


def test_imports_of_the_wrong_thing_are_refused_and_change_nothing(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str], tmp_path: Path
) -> None:
    request = _new_ca(client, officer, f"cn-46{secrets.randbelow(9999):04d}-sm2")
    document = client.get(f"/v1/ceremonies/{request['id']}", headers=officer).json()
    tbs = base64.b64decode(document["tbs"])
    other = LocalKeystore(tmp_path / "other", passphrase="other", scrypt_n=2**10)
    intruder = other.signer(other.create("intruder", KeyAlgorithm.SM2).ref)
    algorithm = x509.TbsCertificate.load(tbs)["signature"].dump()
    forged = {**home.sign(document), "signed": base64.b64encode(der.sequence(tbs, algorithm, der.bit_string(
        intruder.sign(tbs)))).decode()}  # fmt: skip
    altered = x509.TbsCertificate.load(tbs)
    altered["serial_number"] = altered["serial_number"].native + 1
    root_key = home.keystore.signer(document["key"])  # around `sign`, which refuses a second TBS for a request
    tampered = {**forged, "signed": base64.b64encode(der.sequence(altered.dump(), algorithm, der.bit_string(
        root_key.sign(altered.dump())))).decode()}  # fmt: skip
    path = f"/v1/ceremonies/{request['id']}/import"
    before = table_snapshot(context.db)
    _problem(client.post(path, json=forged, headers=officer), 422, "ceremony_signature_invalid")
    _problem(client.post(path, json=tampered, headers=officer), 422, "ceremony_output_mismatch")
    _problem(client.post(path, json={"format": "x"}, headers=officer), 422, "ceremony_output_malformed")
    _problem(client.post(path, json=[1, 2], headers=officer), 400, "invalid_request")
    other_path = f"/v1/ceremonies/{'1' * 32}/import"
    _problem(client.post(other_path, json=home.sign(document), headers=officer), 422, "ceremony_output_mismatch")
    assert table_snapshot(context.db) == before
    assert _import(client, home, request["id"], officer).status_code == 200


def test_an_approved_operation_results_in_the_ceremony_request(
    client: TestClient, context: Context, home: CeremonyHome
) -> None:
    lines = "".join(f"  {name}: 2\n" for name in OPERATIONS)
    served: Context = client.app.state.context  # type: ignore[attr-defined]
    saved = served.approvals
    served.approvals = Approvals(context.db, parse_policy(f"version: 1\noperations:\n{lines}", "test"))
    try:
        first, second = _headers(context, "officer"), _headers(context, "officer")
        body = {"name": "cn-470000-sm2", "parent": "cn-root-sm2", "region": "470000", "algorithm": "sm2"}
        asked = client.post("/v1/cas", json=body, headers=first)
        assert asked.status_code == 202 and "approval" in asked.json(), asked.text
        approved = client.post(f"/v1/approvals/{asked.json()['approval']['id']}/approve", headers=second)
        assert approved.status_code == 200, approved.text
        answer = approved.json()
        assert answer["approval"]["status"] == "executed"
        request = answer["result"]["ceremony"]
        assert request["operation"] == "ca.create" and request["status"] == "pending"
        assert _import(client, home, request["id"], second).status_code == 200
        assert "cn-470000-sm2" in {ca["name"] for ca in client.get("/v1/cas").json()}
    finally:
        served.approvals = saved


def test_the_trust_list_signer_rotation_waits_for_the_ceremony(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    before = client.get("/v1/trust-list").json()
    request = _pending(client.post("/v1/keys/trust-list.sm2/rotate", headers=officer))
    assert request["operation"] == "trust_list.signer"
    _problem(client.post("/v1/keys/trust-list.sm2/rotate", headers=officer), 409, "ceremony_pending")
    assert _import(client, home, request["id"], officer).status_code == 200
    after = client.get("/v1/trust-list").json()
    assert after["signer_certificate"] != before["signer_certificate"]
    assert after["previous_signer_certificate"] == before["signer_certificate"] and after["handover_signature"]


def test_a_pending_request_is_cancelled_by_an_officer(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    from sqlalchemy import select

    from store.models import Event

    name = f"cn-48{secrets.randbelow(9999):04d}-sm2"
    request = _new_ca(client, officer, name)
    output = home.sign(client.get(f"/v1/ceremonies/{request['id']}", headers=officer).json())
    path = f"/v1/ceremonies/{request['id']}/cancel"
    auditor, admin = _headers(context, "auditor"), _headers(context, "admin")
    _problem(client.post(path, headers=auditor), 403, "forbidden_role")
    _problem(client.post(path, headers=admin), 403, "forbidden_role")
    _problem(client.post(path), 401, "unauthenticated")
    _problem(client.post(f"/v1/ceremonies/{'2' * 32}/cancel", headers=officer), 404, "ceremony_not_found")
    assert client.get(f"/v1/ceremonies/{request['id']}", headers=officer).json()["status"] == "pending"

    done = client.post(path, json={"reason": "wrong region"}, headers=officer)
    assert done.status_code == 200, done.text
    assert done.json()["ceremony"]["status"] == "cancelled"
    with context.db.session() as session:
        event = session.scalars(
            select(Event).where(Event.type == "ceremony.cancelled", Event.subject == request["id"])
        ).one()
        assert event.payload["reason"] == "wrong region" and event.payload["operation"] == "ca.create"
    listed = client.get("/v1/ceremonies", params={"status": "cancelled"}, headers=officer).json()["ceremonies"]
    assert request["id"] in [r["id"] for r in listed]
    _problem(client.post(path, headers=officer), 409, "ceremony_not_pending")
    imported = client.post(f"/v1/ceremonies/{request['id']}/import", json=output, headers=officer)
    _problem(imported, 409, "ceremony_not_pending")  # the output signed before the cancel is refused
    assert name not in {ca["name"] for ca in client.get("/v1/cas").json()}
    again = _new_ca(client, officer, name)  # the name is free again
    assert again["id"] != request["id"]
    assert _import(client, home, again["id"], officer).status_code == 200


def test_cancelling_a_signer_rotation_disables_its_provisional_key_version(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    from ca.trust_list import SIGNER_KEY

    before = client.get("/v1/trust-list").json()
    signing = context.custody.get(SIGNER_KEY)
    request = _pending(client.post("/v1/keys/trust-list.sm2/rotate", headers=officer))
    provisional = context.custody.get(SIGNER_KEY)
    assert provisional.version > signing.version and request["subject"] == provisional.ref
    done = client.post(f"/v1/ceremonies/{request['id']}/cancel", headers=officer)
    assert done.status_code == 200, done.text
    assert done.json()["ceremony"]["result"]["disabled_key"] == provisional.ref
    versions = {v.version: v.enabled for v in context.custody.versions(SIGNER_KEY)}
    assert versions[provisional.version] is False and versions[signing.version] is True
    assert context.custody.get(SIGNER_KEY).ref == signing.ref
    after = client.get("/v1/trust-list").json()
    assert after["signer_certificate"] == before["signer_certificate"]
    again = _pending(client.post("/v1/keys/trust-list.sm2/rotate", headers=officer))  # a new rotation may start
    assert client.post(f"/v1/ceremonies/{again['id']}/cancel", headers=officer).status_code == 200


def test_public_reads_never_open_a_ceremony_request(
    client: TestClient,
    context: Context,
    home: CeremonyHome,
    officer: dict[str, str],
    sealed_before: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reviewer's probe: with no valid signer certificate (the root offline), an anonymous GET of the trust
    list or POST /v1/verify opened a `trust_list.signer` request and answered 202. Reads serve the newest
    list as it is (its next_update tells verifiers how fresh it is), or 503 when there is none; only the
    scheduler asks the ceremony."""
    from ca.ceremony import CeremonyRequired
    from ca.trust_list import TrustListPublisher

    def pending_signer() -> list[str]:
        listing = client.get("/v1/ceremonies", params={"status": "pending"}, headers=officer).json()["ceremonies"]
        return [r["id"] for r in listing if r["operation"] == "trust_list.signer"]

    served = client.get("/v1/trust-list").json()
    assert pending_signer() == []
    monkeypatch.setattr(TrustListPublisher, "_previous_signer", lambda self: None)
    monkeypatch.setattr(TrustListPublisher, "_stamp", lambda self, cas, makers: secrets.token_hex(8))
    monkeypatch.setattr(TrustListPublisher, "_signer_matches", lambda self, spki: False)
    before = table_snapshot(context.db)
    answer = client.get("/v1/trust-list")
    assert answer.status_code == 200 and answer.json()["sequence"] >= served["sequence"], answer.text
    assert answer.json() == context.verification.publisher.newest_document()
    verified = client.post("/v1/verify", files={"file": ("doc.pdf", sealed_before, "application/pdf")})
    assert verified.status_code == 200, verified.text
    assert table_snapshot(context.db) == before and pending_signer() == []  # nothing written, nothing asked

    with monkeypatch.context() as nothing:
        nothing.setattr(TrustListPublisher, "newest_document", lambda self: None)
        _problem(client.get("/v1/trust-list"), 503, "trust_list_unavailable")

    with pytest.raises(CeremonyRequired) as asked:  # the scheduler's round asks, once
        context.verification.publisher.current(scheduled=True)
    assert pending_signer() == [asked.value.request["id"]]
    assert client.get("/v1/trust-list").status_code == 200
    done = client.post(f"/v1/ceremonies/{asked.value.request['id']}/cancel", headers=officer)
    assert done.status_code == 200 and done.json()["ceremony"]["result"]["disabled_key"] is None  # a renewal
