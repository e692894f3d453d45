"""A regional CA's rollover under the offline SM2 root, over HTTP (issue 12): `POST /v1/keys/cn-370000-sm2/rotate`
answers 202 `{"ceremony": …}`; while the request is pending the CA keeps issuing and sealing under its old key
and a second rotation is 409 `ceremony_pending`; an import signed by another key, or a certificate for another
key, is refused and changes nothing; the ceremony's genuine output completes the rollover (new certificate in
use, trust list republished). Documents sealed before, during and after verify PASSED online and offline.
Through approvals (`key.rotate`), the executed approval's result is the ceremony request.

caIssuers after the rollover: a certificate issued before it carries the plain `/v1/cas/{ca}/certificate`,
which keeps serving the old key's certificate; one issued after carries `/certificate/k<n>`. Each chases its
AIA through the app and `openssl verify` checks it against what it fetched.

Every scenario step is a module fixture (tests hold in any order, on any xdist worker)."""

from __future__ import annotations

import base64
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient

from api.app import create_app
from api.approvals import Approvals
from api.auth import create_token
from api.context import Context
from ca.ceremony_home import CeremonyHome, move_offline
from gm import der
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from policies.approvals import parse_policy
from seal.service import SealService
from signing.pdf import Placement
from store.models import Event
from tests.api.test_ca_rollover import CALLER, SEAL, _der, _entry, _problem, _signer_certificate, _still_verify
from tests.fixtures import ORG_SUBJECT, make_csr, make_pdf, openssl, table_snapshot

pytestmark = pytest.mark.openssl

REGIONAL = "cn-370000-sm2"
NATIONAL = "cn-100000-sm2"
ROOT = "cn-root-sm2"
DISTID = "distid:1234567812345678"


def _headers(context: Context, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, role, f'{role}-{secrets.token_hex(4)}')}"}


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    """No background integrator or CRL scheduler: nothing writes while a snapshot is compared."""
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    app = create_app(Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return _headers(context, "officer")


def _seal(context: Context, level: str = "B-LT") -> bytes:
    return context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level=level).pdf


def _leaf(context: Context, directory: Path) -> bytes:
    return context.ca.issue(make_csr(directory, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", REGIONAL).der


@pytest.fixture(scope="module")
def before(context: Context, seal_service: SealService, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Made before the root went offline and before any rollover: documents, a leaf, the root a relying
    party holds, the regional CA's certificate."""
    del seal_service  # the demo seals exist
    return {
        "documents": {level: _seal(context, level) for level in ("B-T", "B-LT")},
        "leaf": _leaf(context, tmp_path_factory.mktemp("leaf-before")),
        "root": context.ca.ca_certificate(ROOT).dump(),
        "regional": context.ca.ca_certificate(REGIONAL).dump(),
    }


@pytest.fixture(scope="module")
def home(context: Context, before: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> CeremonyHome:
    """The SM2 root moved to a ceremony home: the online custody holds no root key from here on."""
    del before
    vault = CeremonyHome.open(
        tmp_path_factory.mktemp("ceremony") / "home", "ceremony-" + secrets.token_hex(6), create=True
    )
    raw = getattr(context.custody, "inner", context.custody)
    move_offline(context.ca, raw, ROOT, vault, "test", context.verification.publisher)
    return vault


@pytest.fixture(scope="module")
def pending(
    client: TestClient,
    context: Context,
    home: CeremonyHome,
    officer: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The rotation asked for, and everything observed while its ceremony request is pending."""
    del home
    steps: dict[str, Any] = {"versions": [v.version for v in context.custody.versions(REGIONAL)]}
    steps["response"] = client.post(f"/v1/keys/{REGIONAL}/rotate", headers=officer)
    steps["versions_pending"] = context.custody.versions(REGIONAL)
    steps["second"] = client.post(f"/v1/keys/{REGIONAL}/rotate", headers=officer)
    steps["versions_second"] = len(context.custody.versions(REGIONAL))
    steps["documents"] = {f"{level} pending": _seal(context, level) for level in ("B-T", "B-LT")}
    steps["leaf"] = _leaf(context, tmp_path_factory.mktemp("leaf-pending"))
    steps["served"] = client.get(f"/v1/cas/{REGIONAL}").json()
    steps["trust_list_entry"] = _entry(client, REGIONAL)
    steps["inventory"] = {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    return steps


def _request(client: TestClient, officer: dict[str, str], pending: dict[str, Any]) -> dict[str, Any]:
    request_id = pending["response"].json()["ceremony"]["id"]
    document: dict[str, Any] = client.get(f"/v1/ceremonies/{request_id}", headers=officer).json()
    return document


@pytest.fixture(scope="module")
def refused_imports(
    client: TestClient,
    context: Context,
    home: CeremonyHome,
    officer: dict[str, str],
    pending: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Before the genuine import: the TBS signed by an intruder's key, and the root's signature over a
    certificate for another key. Tables before and after each."""
    document = _request(client, officer, pending)
    tbs = base64.b64decode(document["tbs"])
    other = LocalKeystore(tmp_path_factory.mktemp("other") / "ks", passphrase="other", scrypt_n=2**10)
    intruder = other.signer(other.create("intruder", KeyAlgorithm.SM2).ref)
    algorithm = x509.TbsCertificate.load(tbs)["signature"].dump()
    forged = {**home.sign(document), "signed": base64.b64encode(der.sequence(tbs, algorithm, der.bit_string(
        intruder.sign(tbs)))).decode()}  # fmt: skip
    altered = x509.TbsCertificate.load(tbs)
    altered["subject_public_key_info"] = x509.Certificate.load(_another_key_certificate(context)).public_key
    # the root's own key over the altered TBS, around `sign` (whose log refuses a second TBS for one request)
    root_signed = der.sequence(altered.dump(), algorithm, der.bit_string(home.keystore.signer(document["key"]).sign(
        altered.dump())))  # fmt: skip
    another_key = {**home.sign(document), "signed": base64.b64encode(root_signed).decode()}
    path = f"/v1/ceremonies/{document['id']}/import"
    tables = table_snapshot(context.db)
    versions = [(v.version, v.enabled) for v in context.custody.versions(REGIONAL)]
    return {
        "forged": client.post(path, json=forged, headers=officer),
        "another_key": client.post(path, json=another_key, headers=officer),
        "unchanged": table_snapshot(context.db) == tables,
        "versions_unchanged": [(v.version, v.enabled) for v in context.custody.versions(REGIONAL)] == versions,
        "still_pending": client.get(f"/v1/ceremonies/{document['id']}", headers=officer).json()["status"],
    }


def _another_key_certificate(context: Context) -> bytes:
    """A certificate of some other SM2 key (the national CA's): its key stands in for 'another key'."""
    return context.ca.ca_certificate(NATIONAL).dump()


@pytest.fixture(scope="module")
def completed(
    client: TestClient,
    context: Context,
    home: CeremonyHome,
    officer: dict[str, str],
    pending: dict[str, Any],
    refused_imports: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The ceremony signs the request, an officer imports it; then the seal is re-keyed under the new CA key
    and documents and a leaf are made after."""
    del refused_imports  # refused first
    document = _request(client, officer, pending)
    steps: dict[str, Any] = {"request": document}
    steps["import"] = client.post(f"/v1/ceremonies/{document['id']}/import", json=home.sign(document), headers=officer)
    steps["again"] = client.post(f"/v1/ceremonies/{document['id']}/import", json=home.sign(document), headers=officer)
    steps["rekey"] = client.post(f"/v1/keys/seal.{SEAL}/rotate", headers=officer)
    steps["documents"] = {f"{level} after": _seal(context, level) for level in ("B-T", "B-LT")}
    steps["leaf"] = _leaf(context, tmp_path_factory.mktemp("leaf-after"))
    return steps


# -- while pending -----------------------------------------------------------------------------------


def test_the_rotation_answers_202_with_a_ceremony_request(
    context: Context, before: dict[str, Any], pending: dict[str, Any]
) -> None:
    response = pending["response"]
    assert response.status_code == 202, response.text
    request = response.json()["ceremony"]
    assert (request["operation"], request["status"], request["subject"], request["ca"]) == (
        "ca.rollover",
        "pending",
        REGIONAL,
        ROOT,
    )
    assert response.headers["location"] == f"/v1/ceremonies/{request['id']}"
    # custody made the new version and keeps it enabled; the CA still names the old one
    made = pending["versions_pending"]
    assert [v.version for v in made] == [*pending["versions"], max(pending["versions"]) + 1] and made[-1].enabled
    assert pending["served"]["serial"] == f"{x509.Certificate.load(before['regional']).serial_number:x}"
    assert _der(pending["trust_list_entry"]["certificate"]) == before["regional"]
    # the officer's inventory says which version signs and which one waits for the ceremony
    row = pending["inventory"][REGIONAL]
    assert row["in_use"] == f"{REGIONAL}@{max(pending['versions'])}"
    assert row["pending_version"] == max(pending["versions"]) + 1


def test_a_second_rotation_while_pending_is_refused(pending: dict[str, Any]) -> None:
    _problem(pending["second"], 409, "ceremony_pending")
    assert pending["versions_second"] == len(pending["versions_pending"])  # no key made for it


def test_issuance_and_sealing_keep_working_under_the_old_key(
    client: TestClient, before: dict[str, Any], pending: dict[str, Any], tmp_path: Path
) -> None:
    old = x509.Certificate.load(before["regional"])
    assert x509.Certificate.load(pending["leaf"]).authority_key_identifier == old.key_identifier
    for pdf in pending["documents"].values():
        assert _signer_certificate(pdf).authority_key_identifier == old.key_identifier
    _still_verify(client, {**before["documents"], **pending["documents"]}, [before["root"]], tmp_path)


def test_imports_signed_by_another_key_or_for_another_key_change_nothing(refused_imports: dict[str, Any]) -> None:
    _problem(refused_imports["forged"], 422, "ceremony_signature_invalid")
    _problem(refused_imports["another_key"], 422, "ceremony_output_mismatch")
    assert refused_imports["unchanged"] and refused_imports["versions_unchanged"]
    assert refused_imports["still_pending"] == "pending"


# -- after the import --------------------------------------------------------------------------------


def test_the_import_completes_the_rollover(
    client: TestClient, context: Context, officer: dict[str, str], before: dict[str, Any], completed: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    response = completed["import"]
    assert response.status_code == 200, response.text
    done = response.json()["ceremony"]
    assert done["status"] == "completed" and done["result"]["rolled_over"] == REGIONAL
    _problem(completed["again"], 409, "ceremony_not_pending")
    old = x509.Certificate.load(before["regional"])
    new = context.ca.ca_certificate(REGIONAL)
    assert new.subject == old.subject and new.key_identifier != old.key_identifier
    assert done["result"]["serial"] == f"{new.serial_number:x}"
    # the root's signature over the new certificate, checked by OpenSSL
    (tmp_path / "root.pem").write_bytes(pem.armor("CERTIFICATE", before["root"]))
    (tmp_path / "new.pem").write_bytes(pem.armor("CERTIFICATE", new.dump()))
    checked = openssl("verify", "-partial_chain", "-vfyopt", DISTID, "-CAfile", "root.pem", "new.pem", cwd=tmp_path)
    assert b"new.pem: OK" in checked.stdout
    # the CA row, GET /v1/cas/{ca}, the trust list and the inventory show the new certificate
    assert client.get(f"/v1/cas/{REGIONAL}").json()["serial"] == f"{new.serial_number:x}"
    entry = _entry(client, REGIONAL)
    assert _der(entry["certificate"]) == new.dump()
    assert [_der(c) for c in entry["certificates"]] == [new.dump(), old.dump()]
    keys = {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    assert keys[REGIONAL]["certificate"]["serial"] == f"{new.serial_number:x}"
    assert keys[REGIONAL]["in_use"] == done["result"]["key"]
    # the new key's OCSP signer, certified online by the new CA key; its first CRL at its own URL
    snapshot = context.ca.snapshot().get(REGIONAL)
    assert snapshot.ocsp_key_ref == done["result"]["ocsp_key"] and snapshot.ocsp_certificate_der is not None
    ocsp_cert = x509.Certificate.load(snapshot.ocsp_certificate_der)
    assert ocsp_cert.authority_key_identifier == new.key_identifier
    scoped = client.get(f"/v1/cas/{REGIONAL}/crl/{done['result']['crl_scope']}")
    assert scoped.status_code == 200
    with context.db.session() as session:
        from sqlalchemy import select

        event = session.scalars(select(Event).where(Event.type == "ca.rolled_over", Event.subject == REGIONAL)).one()
        assert event.payload["ceremony"] == done["id"] and event.payload["serial"] == done["result"]["serial"]


def test_documents_sealed_before_during_and_after_verify(
    client: TestClient, context: Context, before: dict[str, Any], pending: dict[str, Any], completed: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    assert completed["rekey"].status_code == 200, completed["rekey"].text
    new = context.ca.ca_certificate(REGIONAL)
    for pdf in completed["documents"].values():
        assert _signer_certificate(pdf).authority_key_identifier == new.key_identifier
    documents = {**before["documents"], **pending["documents"], **completed["documents"]}
    _still_verify(client, documents, [before["root"]], tmp_path)


def _aia_issuer(client: TestClient, certificate: x509.Certificate) -> tuple[str, bytes]:
    """Follow the certificate's caIssuers URL through the app (its path: the public URL is not served)."""
    urls = [
        d["access_location"].native
        for d in certificate.authority_information_access_value or []
        if d["access_method"].native == "ca_issuers"
    ]
    assert len(urls) == 1, urls
    fetched = client.get(urlsplit(urls[0]).path)
    assert fetched.status_code == 200, fetched.text
    return urls[0], fetched.content


def _openssl_verifies(directory: Path, issuer: bytes, child: bytes) -> bool:
    name = secrets.token_hex(3)
    (directory / f"i-{name}.pem").write_bytes(pem.armor("CERTIFICATE", issuer))
    (directory / f"c-{name}.pem").write_bytes(pem.armor("CERTIFICATE", child))
    result = openssl(
        "verify", "-partial_chain", "-vfyopt", DISTID, "-CAfile", f"i-{name}.pem", f"c-{name}.pem",
        cwd=directory, check=False,
    )  # fmt: skip
    return result.returncode == 0 and f"c-{name}.pem: OK".encode() in result.stdout


def test_aia_chasing_finds_the_issuer_before_and_after_the_rollover(
    client: TestClient, context: Context, before: dict[str, Any], pending: dict[str, Any], completed: dict[str, Any],
    tmp_path: Path,
) -> None:  # fmt: skip
    assert completed["import"].status_code == 200
    new = context.ca.ca_certificate(REGIONAL).dump()
    for made, issuer in ((before["leaf"], before["regional"]), (pending["leaf"], before["regional"])):
        url, fetched = _aia_issuer(client, x509.Certificate.load(made))
        assert url.endswith(f"/v1/cas/{REGIONAL}/certificate")  # the plain URL
        assert fetched == issuer != new  # the old key's certificate, not the current one
        assert _openssl_verifies(tmp_path, fetched, made)
        assert not _openssl_verifies(tmp_path, new, made)  # what the plain URL served before this fix
    url, fetched = _aia_issuer(client, x509.Certificate.load(completed["leaf"]))
    assert url.endswith(
        f"/v1/cas/{REGIONAL}/certificate/{completed['import'].json()['ceremony']['result']['crl_scope']}"
    )
    assert fetched == new and _openssl_verifies(tmp_path, fetched, completed["leaf"])
    # the new CA certificate itself chases to the (offline) root
    url, fetched = _aia_issuer(client, x509.Certificate.load(new))
    assert fetched == before["root"] and _openssl_verifies(tmp_path, fetched, new)
    # GET /v1/cas/{ca} keeps showing the current certificate
    assert _der(client.get(f"/v1/cas/{REGIONAL}").json()["certificate_pem"]) == new


# -- the offline root itself; approvals --------------------------------------------------------------


def test_the_offline_root_does_not_roll_over(
    client: TestClient, context: Context, home: CeremonyHome, officer: dict[str, str]
) -> None:
    del home
    tables = table_snapshot(context.db)
    _problem(client.post(f"/v1/keys/{ROOT}/rotate", headers=officer), 409, "ca_offline_rollover")
    assert table_snapshot(context.db) == tables


@pytest.fixture(scope="module")
def approved(context: Context, client: TestClient, home: CeremonyHome) -> dict[str, Any]:
    """The national issuing CA's rollover under a policy where `key.rotate` needs two officers (the served
    app's policy, restored at once), then its ceremony signed and imported."""
    served: Context = client.app.state.context  # type: ignore[attr-defined]
    saved = served.approvals
    served.approvals = Approvals(context.db, parse_policy("version: 1\noperations:\n  key.rotate: 2\n", "test"))
    try:
        first, second = _headers(context, "officer"), _headers(context, "officer")
        steps: dict[str, Any] = {"asked": client.post(f"/v1/keys/{NATIONAL}/rotate", headers=first)}
        approval_id = steps["asked"].json()["approval"]["id"]
        steps["approved"] = client.post(f"/v1/approvals/{approval_id}/approve", headers=second)
    finally:
        served.approvals = saved
    request = steps["approved"].json().get("result", {}).get("ceremony", {})
    if request:
        document = client.get(f"/v1/ceremonies/{request['id']}", headers=first).json()
        steps["import"] = client.post(f"/v1/ceremonies/{request['id']}/import", json=home.sign(document), headers=first)
    return steps


def test_an_approved_rotation_results_in_the_ceremony_request(
    client: TestClient, context: Context, approved: dict[str, Any], before: dict[str, Any], tmp_path: Path
) -> None:
    assert approved["asked"].status_code == 202, approved["asked"].text
    response = approved["approved"]
    assert response.status_code == 200, response.text  # the approval executed; its result waits
    body = response.json()
    assert body["approval"]["status"] == "executed"
    assert (
        body["result"]["ceremony"]["operation"] == "ca.rollover" and body["result"]["ceremony"]["subject"] == NATIONAL
    )
    assert approved["import"].status_code == 200, approved["import"].text
    # the TSA unit certified by the national CA's old key keeps timestamping verifiable documents
    _still_verify(client, {"B-LT after national": _seal(context)}, [before["root"]], tmp_path)


@pytest.fixture(scope="module")
def swept(context: Context, home: CeremonyHome) -> dict[str, Any]:
    """An approved `key.rotate` of cn-530000-sm2 whose run opened the ceremony request and then lost its end
    (a crash): the approvals sweep finds the request as the rotation's result."""
    from api.keys import rotate
    from api.operations import sweep
    from ca.ceremony import CeremonyRequired
    from tests.api.test_approvals_sweep import NOW, _row, _stuck

    del home
    name = "cn-530000-sm2"
    approval_id = _stuck(context, "key.rotate", {"key": name}, NOW)
    try:
        rotate(context, {"key": name}, "token:officer-a")
    except CeremonyRequired as waiting:
        request = waiting.request
    resolved = sweep(context, NOW)[approval_id]
    made = context.custody.versions(name)[-1]
    return {"resolved": resolved, "row": _row(context, approval_id), "request": request, "made": made}


def test_the_sweep_takes_an_interrupted_rotations_ceremony_request_as_its_result(swept: dict[str, Any]) -> None:
    assert swept["resolved"] == "executed"
    assert swept["row"].result == {"ceremony": swept["request"]}
    assert swept["made"].enabled  # the version the request certifies is not disabled as uncertified
