"""Key rotation without downtime (issue 12): `GET /v1/keys`, `POST /v1/keys/{key}/rotate` and the CLI.

For each kind (seal holder, seal maker, TSA unit, trust-list signer, ledger key), documents sealed before
the rotation (B-T and B-LT) verify PASSED after it, online (POST /v1/verify) and offline (`trustseal
verify` with the trust list file and the root); new documents use the new key. Bad input is a 4xx with a
code and changes nothing. The module shares one database: tests run in file order and build on each other.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.approvals import Approvals
from api.auth import create_token
from api.cli import app as cli
from api.context import Context
from api.keys import Use as KeyUse
from api.keys import key_entry
from api.problems import PROBLEM_JSON
from gm import ses
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm
from policies.approvals import parse_policy
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from store.models import Certificate, Event, TrustListRecord
from tests.fixtures import make_pdf
from verify.report import PASSED

SEAL = "demo-370000-sm2"
CALLER = Caller(role="issuer", name="t", seal_ids=("*",))
runner = CliRunner()


@pytest.fixture(scope="module")
def sealed_before(context: Context, seal_service: SealService) -> dict[str, bytes]:
    """Documents sealed before any rotation, at both levels that carry a timestamp."""
    del seal_service  # the demo seals exist
    return {
        level: context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level=level).pdf
        for level in ("B-T", "B-LT")
    }


@pytest.fixture(scope="module")
def auditor(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'auditor', 'keys-auditor')}"}


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


def _state(context: Context) -> tuple[object, ...]:
    """What a refused rotation must leave as it was: rows, events and every custody key's versions."""
    with context.db.session() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(t)) for t in (Certificate, Event, TrustListRecord)
        )
    versions = {name: len(context.custody.versions(name)) for name in context.custody.names()}
    return counts, versions


def _online(client: TestClient, pdf: bytes) -> dict[str, Any]:
    response = client.post("/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _offline(client: TestClient, context: Context, pdf: bytes, tmp_path: Path) -> dict[str, Any]:
    """`trustseal verify` with the service's current trust list as a file and the SM2 root: no server,
    no home (TRUSTSEAL_HOME points at nothing)."""
    listing = tmp_path / "trust-list.json"
    listing.write_text(json.dumps(client.get("/v1/trust-list").json()))
    root = tmp_path / "root.pem"
    root.write_bytes(pem.armor("CERTIFICATE", context.ca.ca_certificate("cn-root-sm2").dump()))
    document = tmp_path / "doc.pdf"
    document.write_bytes(pdf)
    args = ["verify", str(document), "--json", "--trust-list", str(listing), "--root", str(root)]
    result = runner.invoke(cli, args, env={"TRUSTSEAL_HOME": str(tmp_path / "no-home")})
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _still_verify(client: TestClient, context: Context, documents: dict[str, bytes], tmp_path: Path) -> None:
    """Online every document PASSED; offline (no server, no fetching) a B-LT document PASSED on the LTV
    material it carries, and a B-T one, which carries none, as it did before any rotation: INDETERMINATE
    for want of revocation information (TRY_LATER), never FAILED."""
    for level, pdf in documents.items():
        online = _online(client, pdf)
        assert online["result"] == PASSED, (level, online)
        offline = _offline(client, context, pdf, tmp_path)
        if "B-LT" in level:
            assert offline["result"] == PASSED, (level, offline)
        else:
            assert (offline["result"], offline["subindication"]) == ("INDETERMINATE", "TRY_LATER"), (level, offline)
            checks = {c["name"]: c["status"] for c in offline["signatures"][0]["checks"]}
            assert {k: v for k, v in checks.items() if v != PASSED} == {"revocation": "INDETERMINATE"}, checks


def _rotate(client: TestClient, headers: dict[str, str], key: str) -> dict[str, Any]:
    response = client.post(f"/v1/keys/{key}/rotate", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"key", "version", "certificate_pem", "previous_version"}
    assert body["key"] == key and body["version"] > body["previous_version"]
    return body


def _spki(certificate_pem: str) -> bytes:
    der = pem.unarmor(certificate_pem.encode("ascii"))[2]
    spki: bytes = x509.Certificate.load(der).public_key.dump()
    return spki


def _signer_certificate(pdf: bytes) -> x509.Certificate:
    """The signer certificate of the document's (one) signature."""
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    signer: x509.Certificate = PdfFileReader(BytesIO(pdf)).embedded_signatures[-1].signer_cert
    return signer


def test_documents_verify_before_any_rotation(
    client: TestClient, context: Context, sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    """The baseline the rotations below must keep."""
    _still_verify(client, context, sealed_before, tmp_path)


# -- the inventory --------------------------------------------------------------------------------


def test_inventory_names_every_key_and_what_uses_it(
    client: TestClient, context: Context, officer: dict[str, str], auditor: dict[str, str], sealed_before: Any
) -> None:
    del sealed_before  # the TSA unit and ledger key exist once a B-T document was sealed
    context.ledger_key.provision()
    rows = {row["key"]: row for row in client.get("/v1/keys", headers=auditor).json()}
    assert rows == {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    expected = {
        "cn-root-sm2": "ca",
        "cn-370000-sm2": "ca",
        "cn-370000-sm2.ocsp": "ocsp",
        "cn-370000-sm2.seal-maker": "seal-maker",
        f"seal.{SEAL}": "seal",
        "tsa.sm2": "tsa",
        "ledger.sm2": "ledger",
    }
    for name, kind in expected.items():
        row = rows[name]
        assert row["kind"] == kind, row
        assert row["certificate"] is not None and row["certificate"]["version"] == row["current_version"], row
        assert row["expiring"] is False and row["versions"][0]["age_days"] >= 0
    assert rows["cn-370000-sm2"]["used_by"] == "CA cn-370000-sm2"
    assert rows[f"seal.{SEAL}"]["used_by"].startswith(f"holder of seal {SEAL}")
    assert rows["cn-370000-sm2"]["rotatable"] is True and rows["tsa.sm2"]["rotatable"] is True
    assert rows["cn-370000-sm2"]["needs_approval"] is True and rows["cn-370000-sm2.ocsp"]["needs_approval"] is False
    assert rows["ledger.sm2"]["needs_approval"] is True and rows["tsa.sm2"]["needs_approval"] is False
    issuer = {"Authorization": f"Bearer {create_token(context.db, 'issuer', 'keys-issuer')}"}
    _problem(client.get("/v1/keys", headers=issuer), 403, "forbidden_role")
    _problem(client.get("/v1/keys"), 401, "unauthenticated")


def test_a_certificate_within_30_days_of_expiry_is_flagged(context: Context) -> None:
    der = context.ca.ca_certificate("cn-370000-sm2").dump()
    not_after = x509.Certificate.load(der).not_valid_after
    versions = context.custody.versions("cn-370000-sm2")
    use = KeyUse("ca", "CA cn-370000-sm2", None, der)
    assert key_entry("cn-370000-sm2", versions, use, not_after - timedelta(days=29))["expiring"] is True
    assert key_entry("cn-370000-sm2", versions, use, not_after - timedelta(days=31))["expiring"] is False


def test_cli_keys_list(
    context: Context, client: TestClient, live_url: str, officer: dict[str, str], sealed_before: Any
) -> None:
    del sealed_before  # the TSA unit exists
    token = officer["Authorization"].removeprefix("Bearer ")
    result = runner.invoke(cli, ["keys", "list", "--json", "--url", live_url, "--token", token])
    assert result.exit_code == 0, result.output
    assert {row["key"] for row in json.loads(result.stdout)} == set(context.custody.names())
    text = runner.invoke(cli, ["keys", "list", "--url", live_url, "--token", token])
    line = next(line for line in text.stdout.splitlines() if line.startswith("tsa.sm2 "))
    assert "TSA unit sm2" in line and "until" in line


# -- refusals -------------------------------------------------------------------------------------


def test_refusals_change_nothing(client: TestClient, context: Context, officer: dict[str, str]) -> None:
    spare = f"spare-{secrets.token_hex(4)}.sm2"  # (the keystore is shared by the module's database runs)
    context.custody.create(spare, KeyAlgorithm.SM2)
    context.custody.disable(spare, 1)
    auditor = {"Authorization": f"Bearer {create_token(context.db, 'auditor', 'keys-auditor-2')}"}  # an event
    before = _state(context)
    _problem(client.post("/v1/keys/no-such-key/rotate", headers=officer), 404, "key_not_found")
    _problem(client.post("/v1/keys/Bad%20Name/rotate", headers=officer), 404, "key_not_found")
    _problem(client.post("/v1/keys/tsa.sm2@1/rotate", headers=officer), 404, "key_not_found")
    _problem(client.post(f"/v1/keys/{spare}/rotate", headers=officer), 409, "key_disabled")
    _problem(client.post("/v1/keys/ledger.pii-hmac/rotate", headers=officer), 409, "key_not_rotatable")
    _problem(client.post("/v1/keys/tsa.sm2/rotate", headers=auditor), 403, "forbidden_role")
    assert _state(context) == before


# -- each kind ------------------------------------------------------------------------------------


def test_rotating_the_seal_holder_key(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    old = context.seals.get(SEAL)
    body = _rotate(client, officer, f"seal.{SEAL}")
    new = context.seals.get(SEAL)
    assert new.es_id == old.es_id and new.certificate_serial != old.certificate_serial
    assert new.key_ref == f"seal.{SEAL}@{body['version']}"
    # the seal is re-made: its certificate list holds the new certificate, its maker signature verifies
    parsed = ses.parse_seal(new.esl_der)
    assert [x509.Certificate.load(c).public_key.dump() for c in parsed.certs] == [_spki(body["certificate_pem"])]
    assert new.previous_versions and new.previous_versions[-1]["certificate_serial"] == old.certificate_serial
    status = client.get(f"/v1/seals/{SEAL}/status").json()
    assert status["sm3"] == sm3(new.esl_der).hex() and status["previous_sm3"][-1] == sm3(old.esl_der).hex()
    with context.db.session() as session:
        event = session.scalars(
            select(Event).where(Event.type == "seal.rekeyed", Event.subject == SEAL).order_by(Event.id.desc())
        ).first()
        rotated = session.scalars(
            select(Event).where(Event.type == "key.rotated", Event.subject == f"seal.{SEAL}").order_by(Event.id.desc())
        ).first()
    assert event is not None and rotated is not None and rotated.payload["version"] == body["version"]
    assert event.payload["previous_certificate_serial"] == old.certificate_serial
    assert rotated.actor is not None and rotated.actor.startswith("officer:")
    _still_verify(client, context, sealed_before, tmp_path)
    fresh = context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level="B-T").pdf
    assert _signer_certificate(fresh).public_key.dump() == _spki(body["certificate_pem"])
    assert _online(client, fresh)["result"] == PASSED
    sealed_before["B-T after holder"] = fresh


def test_rotating_the_seal_maker(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    key = "cn-370000-sm2.seal-maker"
    old = context.seals.maker("cn-370000-sm2")
    body = _rotate(client, officer, key)
    listed = [
        maker["certificate"]
        for region in client.get("/v1/trust-list").json()["regions"]
        for maker in region["seal_makers"]
    ]
    old_pem = pem.armor("CERTIFICATE", old.certificate_der).decode("ascii")
    assert old_pem in listed and body["certificate_pem"] in listed  # both, while seals of the old one live
    _still_verify(client, context, sealed_before, tmp_path)
    # a seal made now is signed by the new maker
    from seal.service import SealRequest

    made = context.seals.create(
        SealRequest(
            name="轮换测试", organisation_name="轮换测试", organisation_uscc="91350100M000100Y43", ca="cn-370000-sm2"
        )
    )
    assert ses.parse_seal(made.esl_der).maker_cert == pem.unarmor(body["certificate_pem"].encode())[2]
    pdf = context.signing.seal_pdf(make_pdf(), seal_id=made.id, caller=CALLER, placement=Placement(), level="B-T").pdf
    assert _online(client, pdf)["result"] == PASSED


def test_rotating_the_tsa(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    body = _rotate(client, officer, "tsa.sm2")
    assert context.signing.tsa.unit("sm2").handle.public_key_der == _spki(body["certificate_pem"])
    with context.db.session() as session:
        events = session.scalars(select(Event).where(Event.type == "tsa.rotated", Event.subject == "tsa.sm2")).all()
    serial = x509.Certificate.load(pem.unarmor(body["certificate_pem"].encode())[2]).serial_number
    assert int(events[-1].payload["certificate_serial"], 16) == serial
    _still_verify(client, context, sealed_before, tmp_path)
    fresh = context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level="B-LT").pdf
    assert _online(client, fresh)["result"] == PASSED


def test_rotating_the_trust_list_signer(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    before = client.get("/v1/trust-list").json()
    body = _rotate(client, officer, "trust-list.sm2")
    handover = client.get("/v1/trust-list").json()
    assert handover["sequence"] == before["sequence"] + 1
    assert handover["signer_certificate"] == body["certificate_pem"]
    assert handover["previous_signer_certificate"] == before["signer_certificate"]
    assert "handover_signature" in handover
    with context.db.session() as session:
        events = session.scalars(select(Event).where(Event.type == "trust_list.signer_rotated")).all()
    assert [e.payload["sequence"] for e in events if e.actor and e.actor.startswith("officer:")][-1] == handover[
        "sequence"
    ]
    _still_verify(client, context, sealed_before, tmp_path)


def test_rotating_the_ledger_key(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], tmp_path: Path
) -> None:
    old = context.ledger_key()
    body = _rotate(client, officer, "ledger.sm2")
    assert context.ledger_key().handle.public_key_der == _spki(body["certificate_pem"]) != old.handle.public_key_der
    _still_verify(client, context, sealed_before, tmp_path)


def test_the_inventory_after_a_rotation(
    client: TestClient, officer: dict[str, str], sealed_before: Any, context: Context
) -> None:
    del sealed_before
    context.ledger_key.provision()
    client.get("/v1/trust-list")
    rows = {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    for name in (f"seal.{SEAL}", "cn-370000-sm2.seal-maker", "tsa.sm2", "trust-list.sm2", "ledger.sm2"):
        if len(rows[name]["versions"]) < 2:  # not rotated yet by the tests above (another order, another worker)
            _rotate(client, officer, name)
    rows = {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    for name in (f"seal.{SEAL}", "cn-370000-sm2.seal-maker", "tsa.sm2", "trust-list.sm2", "ledger.sm2"):
        row = rows[name]
        assert [v["enabled"] for v in row["versions"]][-2:] == [True, True], row  # the old one still verifies
        assert row["certificate"]["version"] == row["current_version"] == row["versions"][-1]["version"], row


def test_cli_rotates_remotely(live_url: str, officer: dict[str, str], context: Context) -> None:
    token = officer["Authorization"].removeprefix("Bearer ")
    context.signing.tsa.unit("p256")  # provisioned (no P-256 document was sealed here)
    before = len(context.custody.versions("tsa.p256"))
    result = runner.invoke(cli, ["keys", "rotate", "tsa.p256", "--url", live_url, "--token", token])
    assert result.exit_code == 0, result.output
    assert "rotated tsa.p256" in result.stdout
    assert len(context.custody.versions("tsa.p256")) == before + 1
    refused = runner.invoke(cli, ["keys", "rotate", "ledger.pii-hmac", "--url", live_url, "--token", token])
    assert refused.exit_code == 1 and "key_not_rotatable" in refused.output


# -- approvals ------------------------------------------------------------------------------------


@pytest.fixture
def two_officers(context: Context) -> Iterator[list[dict[str, str]]]:
    """Two officers under a policy where `key.rotate` needs two; the policy is lifted afterwards."""
    text = "version: 1\nexpires_after_hours: 24\noperations:\n  key.rotate: 2\n"
    context.approvals = Approvals(context.db, parse_policy(text, "test"))
    run = secrets.token_hex(3)  # token names are unique; the fixture runs once per parameter
    yield [
        {"Authorization": f"Bearer {create_token(context.db, 'officer', f'rotating-officer-{run}-{i}')}"}
        for i in range(2)
    ]
    context.approvals = Approvals(context.db, parse_policy("version: 1\noperations: {}\n", "test"))


@pytest.mark.parametrize("key", ["ledger.sm2", "trust-list.sm2"])
def test_ledger_and_trust_list_rotations_wait_for_a_second_officer(
    client: TestClient, context: Context, two_officers: list[dict[str, str]], key: str, sealed_before: Any
) -> None:
    del sealed_before  # the TSA unit and the ledger key exist
    context.ledger_key.provision()
    first, second = two_officers
    versions = len(context.custody.versions(key))
    pending = client.post(f"/v1/keys/{key}/rotate", headers=first)
    assert pending.status_code == 202, pending.text
    approval = pending.json()["approval"]
    assert (approval["operation"], approval["status"], approval["required"]) == ("key.rotate", "pending", 2)
    assert len(context.custody.versions(key)) == versions  # nothing rotated yet
    _problem(client.post(f"/v1/approvals/{approval['id']}/approve", headers=first), 403, "approval_own_request")
    done = client.post(f"/v1/approvals/{approval['id']}/approve", headers=second)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["approval"]["status"] == "executed"
    result = body["result"]
    assert set(result) == {"key", "version", "certificate_pem", "previous_version"}
    assert result["key"] == key and result["version"] == result["previous_version"] + 1 == versions + 1
    assert len(context.custody.versions(key)) == versions + 1
    # seal, maker and TSA rotations are one officer's: no approval even under this policy
    assert client.post("/v1/keys/tsa.sm2/rotate", headers=first).status_code == 200
    # and a refusal is made at request time, before any approval is opened
    _problem(client.post("/v1/keys/ledger.pii-hmac/rotate", headers=first), 409, "key_not_rotatable")


# -- no downtime ----------------------------------------------------------------------------------


def test_sealing_keeps_succeeding_while_keys_rotate(
    client: TestClient, context: Context, officer: dict[str, str], seal_service: SealService
) -> None:
    """Two threads seal (B-T) and one makes seals in a loop while the seal holder key, the seal maker and
    the TSA rotate: zero failures, and documents and seals from before, during and after verify PASSED."""
    del seal_service
    seal_id = "demo-530000-sm2"
    stop = threading.Event()
    failures: list[BaseException] = []
    made: list[bytes] = []

    def seal_loop() -> None:
        while not stop.is_set():
            try:
                pdf = context.signing.seal_pdf(
                    make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level="B-T"
                ).pdf
                made.append(pdf)
            except BaseException as exc:
                failures.append(exc)

    issued: list[str] = []

    def issue_loop() -> None:  # seal issuance too: a new holder certificate and a seal from the maker
        from seal.service import SealRequest

        while not stop.is_set():
            try:
                request = SealRequest(
                    name="并发测试",
                    organisation_name="并发测试",
                    organisation_uscc="91350100M000100Y43",
                    ca="cn-530000-sm2",
                )
                issued.append(context.seals.create(request).id)
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=seal_loop) for _ in range(2)] + [threading.Thread(target=issue_loop)]
    for thread in threads:
        thread.start()
    try:
        for key in (f"seal.{seal_id}", "cn-530000-sm2.seal-maker", "tsa.sm2"):
            count = len(made)
            deadline = time.monotonic() + 10
            while len(made) < count + 2 and time.monotonic() < deadline:  # sealing under way
                time.sleep(0.01)
            _rotate(client, officer, key)
        count = len(made)
        deadline = time.monotonic() + 10
        while len(made) < count + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert len(made) >= 8 and len(issued) >= 2
    # seals issued during the maker's rotation verify (their maker certificate, old or new, is listed)
    for new_seal in (issued[0], issued[-1]):
        pdf = context.signing.seal_pdf(make_pdf(), seal_id=new_seal, caller=CALLER, placement=Placement()).pdf
        assert _online(client, pdf)["result"] == PASSED
    for pdf in (made[0], made[len(made) // 2], made[-1]):
        report = _online(client, pdf)
        assert report["result"] == PASSED, report
    holder = context.seals.get(seal_id)
    serials = {_signer_certificate(pdf).serial_number for pdf in made}
    assert len(serials) == 2  # sealing ran across the holder's rotation: documents under both certificates
    assert _signer_certificate(made[-1]).serial_number == int(holder.certificate_serial, 16)


def test_another_process_picks_up_a_rotated_tsa(
    client: TestClient, context: Context, officer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second TimestampAuthority (another worker's) re-reads its unit after REFRESH_SECONDS."""
    from signing import tsa as tsa_module

    monkeypatch.setattr(tsa_module, "REFRESH_SECONDS", 0.0)
    other = tsa_module.TimestampAuthority(context.db, context.custody, context.ca)
    before = other.unit("sm2").certificate_der
    body = _rotate(client, officer, "tsa.sm2")
    after = other.unit("sm2")
    assert after.certificate_der != before and after.handle.public_key_der == _spki(body["certificate_pem"])


def test_a_rekeyed_seal_keeps_its_old_maker_listed(
    client: TestClient, context: Context, officer: dict[str, str]
) -> None:
    """A seal made by a maker that rotated since, then re-keyed (now under the new maker): its earlier
    SESeal's maker certificate stays in `seal_makers` (seals.previous_versions names it)."""
    from seal.service import SealRequest

    ca = f"xx-46{secrets.randbelow(10**4):04d}-sm2"
    context.ca.create_ca(
        ca,
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": ca},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="460000",
        region_name="Hainan",
    )
    seal = context.seals.create(
        SealRequest(name="海南测试", organisation_name="海南测试", organisation_uscc="91350100M000100Y43", ca=ca)
    )
    first_maker = pem.armor("CERTIFICATE", context.seals.maker(ca).certificate_der).decode("ascii")
    _rotate(client, officer, f"{ca}.seal-maker")
    _rotate(client, officer, f"seal.{seal.id}")
    hainan = next(r for r in client.get("/v1/trust-list").json()["regions"] if r["code"] == "460000")
    listed = [maker["certificate"] for maker in hainan["seal_makers"]]
    assert first_maker in listed and len(listed) == 2
