"""Seals and sealing over HTTP: roles, lifecycle, the sealed PDF and its event, and every refusal
(4xx problem+json with a stable code, no event row, no PDF)."""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import crl, x509
from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader
from sqlalchemy import func, select

from api.app import create_app
from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from gm import ses, sm2
from ledger.merkle import verify_inclusion
from seal.demo import create_demo_seals, demo_seal_ids
from store.models import Event, Seal
from tests.fixtures import make_pdf
from tests.ledger.test_checkpoint import openssl_verifies

USCC = "11370000MB00000015"


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    create_demo_seals(context.seals, actor="test")
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(context: Context) -> dict[str, str]:
    return {
        "officer": create_token(context.db, "officer", "seal-officer"),
        "issuer": create_token(context.db, "issuer", "licence-system", demo_seal_ids()),
        "narrow": create_token(context.db, "issuer", "housing-system", ["demo-530000-sm2"]),
        "verifier": create_token(context.db, "verifier", "bank"),
    }


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _events(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def _problem(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code
    assert not response.content.startswith(b"%PDF")


def _sign(client: TestClient, token: str, pdf: bytes, **form: object) -> Response:
    data = {"seal_id": "demo-370000-sm2", **{k: str(v) for k, v in form.items()}}
    return client.post("/v1/sign", headers=_auth(token), data=data, files={"file": ("doc.pdf", pdf, "application/pdf")})


def test_demo_seals_are_public_and_well_formed(client: TestClient) -> None:
    for seal_id in demo_seal_ids():
        status = client.get(f"/v1/seals/{seal_id}/status")
        assert status.status_code == 200 and status.json()["status"] == "active"
        esl = client.get(f"/v1/seals/{seal_id}/esl")
        seal = ses.parse_seal(esl.content)
        assert seal.version == 4 and seal.es_id.startswith(seal_id.split("-")[1])
        maker = x509.Certificate.load(seal.maker_cert)
        if seal_id.endswith("sm2"):
            assert sm2.SM2PublicKey.from_spki(maker.public_key.dump()).verify(seal.signature, seal.signed_bytes)
        image = Image.open(io.BytesIO(client.get(f"/v1/seals/{seal_id}/image").content))
        assert image.format == "PNG" and image.size == (496, 496)
        rgba = image.convert("RGBA")
        corner, centre = rgba.getpixel((0, 0)), rgba.getpixel((248, 248))
        assert isinstance(corner, tuple) and isinstance(centre, tuple)
        assert corner[3] == 0  # transparent corner
        red, green, blue, alpha = centre  # the star's centre is seal red
        assert red > 200 and green < 30 and blue < 40 and alpha > 240
    _problem(client.get("/v1/seals/nope/status"), 404, "seal_not_found")


def test_create_list_and_roles(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    body = {
        "id": "jinan-contract",
        "name": "济南市市场监督管理局",
        "organisation_name": "济南市市场监督管理局",
        "organisation_uscc": USCC,
        "ca": "cn-370000-sm2",
        "seal_type": "contract",
        "purpose": "合同专用章",
        "allowed_callers": ["licence-system"],
    }
    before = _events(context)
    _problem(client.post("/v1/seals", json=body, headers=_auth(tokens["issuer"])), 403, "forbidden_role")
    _problem(client.post("/v1/seals", json={**body, "organisation_uscc": "91350100M000100Y44"},
                         headers=_auth(tokens["officer"])), 400, "invalid_seal_request")  # fmt: skip
    _problem(client.post("/v1/seals", json={**body, "ca": "cn-root-sm2"}, headers=_auth(tokens["officer"])),
             400, "invalid_seal_request")  # fmt: skip
    _problem(client.post("/v1/seals", json={**body, "shape": "hexagon"}, headers=_auth(tokens["officer"])),
             400, "invalid_request")  # fmt: skip
    assert _events(context) == before
    made = client.post("/v1/seals", json=body, headers=_auth(tokens["officer"]))
    assert made.status_code == 201, made.text
    assert made.json()["seal_type"] == 4 and made.json()["status"] == "active"
    _problem(client.post("/v1/seals", json=body, headers=_auth(tokens["officer"])), 409, "seal_exists")
    listed = client.get("/v1/seals", headers=_auth(tokens["narrow"])).json()
    assert [s["id"] for s in listed] == ["demo-530000-sm2"]
    assert "jinan-contract" in {s["id"] for s in client.get("/v1/seals", headers=_auth(tokens["officer"])).json()}
    _problem(client.get("/v1/seals"), 401, "unauthenticated")


def _check_receipt(client: TestClient, index: int, receipt_b64: str, tmp_path: Path) -> None:
    """The receipt, checked from outside: by OpenSSL alone over the DESIGN.md message (the leaf hash
    recomputed from the entry the API serves), and the entry's inclusion under a signed checkpoint."""
    entry = client.get("/v1/ledger/entries", params={"start": index, "end": index + 1}).json()["entries"][0]
    assert entry["index"] == index and entry["entry"]["type"] == "document.sealed"
    leaf_hash = hashlib.new("sm3", b"\x00" + base64.b64decode(entry["leaf_input"])).digest()
    deadline = time.monotonic() + 2.0  # the integrator's checkpoint covers the entry within a period and a pass
    while (checkpoint := client.get("/v1/ledger/checkpoint").json())["size"] <= index:
        assert time.monotonic() < deadline, f"no checkpoint covers entry {index}: {checkpoint}"
        time.sleep(0.01)
    origin = checkpoint["origin"]
    message = f"trustseal-receipt/v1\n{origin}\n{index}\n{base64.b64encode(leaf_hash).decode()}\n".encode()
    cert_pem = client.get("/v1/ledger/key").content
    assert openssl_verifies(tmp_path, cert_pem, message, base64.b64decode(receipt_b64), certin=True)
    assert not openssl_verifies(tmp_path, cert_pem, message.replace(b"\n%d\n" % index, b"\n%d\n" % (index + 1)),
                                base64.b64decode(receipt_b64), certin=True)  # fmt: skip
    size = checkpoint["size"]
    path = client.get("/v1/ledger/proofs/inclusion", params={"index": index, "size": size}).json()["path"]
    assert verify_inclusion(
        leaf_hash, index, size, [bytes.fromhex(p) for p in path], bytes.fromhex(checkpoint["root_hash"])
    )


@pytest.mark.openssl
def test_sign_returns_a_sealed_pdf_and_records_the_event(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path
) -> None:
    pdf = make_pdf()
    response = _sign(client, tokens["issuer"], pdf, page=1, x_mm=120, y_mm=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    sealed = response.content
    assert sealed.startswith(pdf)
    assert len(PdfFileReader(io.BytesIO(sealed)).embedded_signatures) == 1
    index = int(response.headers["X-Trustseal-Event"])  # the ledger index of the document.sealed entry
    _check_receipt(client, index, response.headers["X-Trustseal-Receipt"], tmp_path)
    with context.db.session() as session:
        event = session.scalars(select(Event).where(Event.ledger_index == index)).one()
        assert event.type == "document.sealed"
        from gm.sm3 import sm3

        assert event.payload["document_sm3"] == sm3(pdf).hex()
        embedded = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
        ranges = [int(v) for v in embedded.sig_object["/ByteRange"]]
        signed = sealed[ranges[0] : ranges[0] + ranges[1]] + sealed[ranges[2] : ranges[2] + ranges[3]]
        assert event.payload["signed_digest"] == sm3(signed).hex()
        assert event.payload["seal_id"] == "demo-370000-sm2"
        assert event.payload["certificate_serial"] == response.headers["X-Trustseal-Certificate"]
        assert event.actor == "issuer:licence-system"


def test_keyword_placement(client: TestClient, tokens: dict[str, str]) -> None:
    response = _sign(client, tokens["issuer"], make_pdf(), keyword="Regulation", size_mm=30)
    assert response.status_code == 200, response.text
    rect = [float(v) for v in PdfFileReader(io.BytesIO(response.content)).embedded_signatures[0].sig_field["/Rect"]]
    centre = ((rect[0] + rect[2]) / 2, (rect[1] + rect[3]) / 2)
    assert centre == pytest.approx((268.0, 760.9), abs=3)


def _encrypted_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf())))
    writer.encrypt("user-password")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _no_pages_pdf() -> bytes:
    from pyhanko.pdf_utils.writer import PdfFileWriter

    out = io.BytesIO()
    PdfFileWriter().write(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("not_pdf", 400, "pdf_malformed"),
        ("truncated", 400, "pdf_malformed"),
        ("encrypted", 400, "pdf_encrypted"),
        ("no_pages", 400, "pdf_no_pages"),
        ("page_out_of_range", 400, "page_out_of_range"),
        ("keyword_missing", 400, "keyword_not_found"),
        ("off_page", 400, "placement_invalid"),
        ("unknown_seal", 404, "seal_not_found"),
        ("foreign_seal", 403, "seal_not_permitted"),
        ("wrong_role", 403, "forbidden_role"),
        ("wrong_type", 415, "unsupported_media_type"),
        ("half_coordinates", 400, "placement_invalid"),
        ("bad_level", 400, "invalid_level"),
        ("no_file", 400, "invalid_request"),
    ],
)
def test_sign_refusals_write_nothing(
    client: TestClient, context: Context, tokens: dict[str, str], case: str, status: int, code: str
) -> None:
    pdf = make_pdf()
    token, form, files = tokens["issuer"], {"seal_id": "demo-370000-sm2"}, {"file": ("d.pdf", pdf, "application/pdf")}
    if case == "not_pdf":
        files = {"file": ("d.pdf", b"GIF89a not a pdf", "application/pdf")}
    elif case == "truncated":
        files = {"file": ("d.pdf", pdf[: len(pdf) // 2], "application/pdf")}
    elif case == "encrypted":
        files = {"file": ("d.pdf", _encrypted_pdf(), "application/pdf")}
    elif case == "no_pages":
        files = {"file": ("d.pdf", _no_pages_pdf(), "application/pdf")}
    elif case == "page_out_of_range":
        form["page"] = "2"
    elif case == "keyword_missing":
        form["keyword"] = "Nowhere on the page"
    elif case == "off_page":
        form.update(x_mm="200", y_mm="290")
    elif case == "unknown_seal":
        form["seal_id"] = "no-such-seal"
    elif case == "foreign_seal":
        token = tokens["narrow"]
    elif case == "wrong_role":
        token = tokens["verifier"]
    elif case == "wrong_type":
        files = {"file": ("d.png", pdf, "image/png")}
    elif case == "half_coordinates":
        form["x_mm"] = "10"
    elif case == "bad_level":
        form["level"] = "B-LTA"
    elif case == "no_file":
        files = {}
    before = _events(context)
    response = client.post("/v1/sign", headers=_auth(token), data=form, files=files or None)
    _problem(response, status, code)
    assert _events(context) == before


def test_oversize_upload(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    before = _events(context)
    big = b"%PDF-1.7\n" + b"0" * context.settings.max_upload_bytes
    _problem(_sign(client, tokens["issuer"], big), 413, "payload_too_large")
    assert _events(context) == before


def test_lifecycle_suspend_resume_revoke(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    officer = _auth(tokens["officer"])
    made = client.post(
        "/v1/seals",
        json={
            "id": "lifecycle",
            "name": "测试局",
            "organisation_name": "测试局",
            "organisation_uscc": USCC,
            "ca": "cn-530000-sm2",
            "allowed_callers": ["licence-system"],
        },
        headers=officer,
    )
    assert made.status_code == 201, made.text
    serial = made.json()["certificate_serial"]
    pdf = make_pdf()
    assert _sign(client, tokens["issuer"], pdf, seal_id="lifecycle").status_code == 200

    assert client.post("/v1/seals/lifecycle/suspend", json={"reason": "audit"}, headers=officer).status_code == 200
    assert client.get("/v1/seals/lifecycle/status").json()["status"] == "suspended"
    _problem(_sign(client, tokens["issuer"], pdf, seal_id="lifecycle"), 409, "seal_not_active")
    _problem(client.post("/v1/seals/lifecycle/suspend", json={}, headers=officer), 409, "invalid_seal_transition")
    assert client.post("/v1/seals/lifecycle/resume", json={}, headers=officer).status_code == 200
    assert _sign(client, tokens["issuer"], pdf, seal_id="lifecycle").status_code == 200

    revoked = client.post("/v1/seals/lifecycle/revoke", json={"reason": "organisation dissolved"}, headers=officer)
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    status = client.get("/v1/seals/lifecycle/status").json()
    assert status["status"] == "revoked" and status["certificate_status"] == "revoked"
    listed = crl.CertificateList.load(client.get("/v1/cas/cn-530000-sm2/crl").content)
    assert int(serial, 16) in {e["user_certificate"].native for e in listed["tbs_cert_list"]["revoked_certificates"]}
    _problem(_sign(client, tokens["issuer"], pdf, seal_id="lifecycle"), 409, "seal_not_active")
    _problem(client.post("/v1/seals/lifecycle/resume", json={}, headers=officer), 409, "invalid_seal_transition")
    with context.db.session() as session:
        types = [e.type for e in session.scalars(select(Event).where(Event.subject == "lifecycle").order_by(Event.id))]
    assert types == ["seal.created", "document.sealed", "seal.suspended", "seal.resumed", "document.sealed",
                     "seal.revoked"]  # fmt: skip


def test_expired_seal_cannot_seal(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    with context.db.session() as session:
        row = session.get(Seal, "demo-530000-p256")
        assert row is not None
        saved = row.valid_end
        row.valid_end = datetime.now(UTC) - timedelta(days=1)
    try:
        assert client.get("/v1/seals/demo-530000-p256/status").json()["status"] == "expired"
        _problem(_sign(client, tokens["issuer"], make_pdf(), seal_id="demo-530000-p256"), 409, "seal_expired")
    finally:
        with context.db.session() as session:
            row = session.get(Seal, "demo-530000-p256")
            assert row is not None
            row.valid_end = saved


LICENCE = {
    "type_code": "11370000MB00000015001",
    "type_name": "营业执照 (business licence)",
    "number": "JN-2026-000123",
    "holder": {"name": "张三", "id": "370102199001011234", "id_type": "resident_id"},
    "issuer": {"name": "济南市市场监督管理局", "uscc": "11370000MB00000015"},
    "issue_date": "2026-11-22",
    "valid_to": "2031-11-21",
}


def test_sealing_with_a_licence(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    import json

    from policies import licence_id

    response = _sign(client, tokens["issuer"], make_pdf(), licence=json.dumps(LICENCE))
    assert response.status_code == 200, response.text
    identifier = response.headers["X-Trustseal-Licence-Id"]
    parsed = licence_id.parse(identifier)
    assert (parsed.type_code, parsed.issuer_uscc, parsed.serial) == (LICENCE["type_code"], "11370000MB00000015",
                                                                      "JN2026000123")  # fmt: skip
    # XMP in the sealed revision names the licence
    reader = PdfFileReader(io.BytesIO(response.content))
    xmp = reader.root["/Metadata"].get_object().data.decode()
    assert "张三" not in xmp
    from xml.etree import ElementTree

    rdf = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
    description = ElementTree.fromstring(xmp.split("?>", 1)[1].rsplit("<?xpacket", 1)[0]).find(
        f"{rdf}RDF/{rdf}Description"
    )
    assert description is not None
    values = {**description.attrib, **{child.tag: child.text or child.get(f"{rdf}resource") for child in description}}
    assert values["{http://purl.org/dc/elements/1.1/}identifier"] == identifier
    assert values["{urn:trustseal:licence:1.0#}number"] == LICENCE["number"]
    assert str(values["{urn:trustseal:licence:1.0#}statusUrl"]).endswith(f"/v1/licences/{identifier}/status")
    status = client.get(f"/v1/licences/{identifier}/status")
    assert status.status_code == 200 and status.json()["status"] == "01" and "holder" not in status.json()
    detail = client.get(f"/v1/licences/{identifier}", headers=_auth(tokens["issuer"])).json()
    assert detail["holder"]["name"] == "张三"
    _problem(client.get(f"/v1/licences/{identifier}", headers=_auth(tokens["narrow"])), 403, "licence_not_permitted")
    with context.db.session() as session:
        events = session.scalars(select(Event).where(Event.subject == identifier)).all()
        assert [e.type for e in events] == ["licence.issued"]
        assert "张三" not in json.dumps(events[0].payload, ensure_ascii=False)
        sealed = session.scalars(select(Event).where(Event.ledger_index == int(response.headers["X-Trustseal-Event"])))
        assert sealed.one().payload["licence_id"] == identifier

    # the same licence again: 409, nothing written
    before = _events(context)
    _problem(_sign(client, tokens["issuer"], make_pdf(), licence=json.dumps(LICENCE)), 409, "licence_exists")
    assert _events(context) == before

    # status changes: only the issuing system or an officer
    changed = client.post(f"/v1/licences/{identifier}/status", json={"status": "02", "reason": "under review"},
                          headers=_auth(tokens["narrow"]))  # fmt: skip
    _problem(changed, 403, "licence_not_permitted")
    changed = client.post(f"/v1/licences/{identifier}/status", json={"status": "02", "reason": "under review"},
                          headers=_auth(tokens["issuer"]))  # fmt: skip
    assert changed.status_code == 200 and changed.json()["status_name"] == "suspended"
    assert client.post(f"/v1/licences/{identifier}/status", json={"status": "03"},
                       headers=_auth(tokens["officer"])).status_code == 200  # fmt: skip
    _problem(client.post(f"/v1/licences/{identifier}/status", json={"status": "01"}, headers=_auth(tokens["issuer"])),
             400, "invalid_licence")  # fmt: skip
    assert client.get(f"/v1/licences/{identifier}/status").json()["status"] == "03"
    _problem(client.get("/v1/licences/1.2.156.3005.2.nothing/status"), 404, "licence_not_found")


@pytest.mark.parametrize(
    "mutation",
    [
        {"type_code": "123"},
        {"issuer": {"name": "x", "uscc": "11370000MB00000016"}},
        {"holder": {"name": "张三", "id": "1", "id_type": "fingerprint"}},
        {"issue_date": "22/11/2026"},
        {"valid_to": "2020-01-01"},
        {"number": ""},
        "not json",
        [1, 2],
    ],
)
def test_bad_licence_metadata_writes_nothing(
    client: TestClient, context: Context, tokens: dict[str, str], mutation: object
) -> None:
    import json

    if isinstance(mutation, dict):
        body = json.dumps({**LICENCE, **mutation})
    elif isinstance(mutation, str):
        body = mutation
    else:
        body = json.dumps(mutation)
    before = _events(context)
    _problem(_sign(client, tokens["issuer"], make_pdf(), licence=body), 400, "invalid_licence")
    assert _events(context) == before


def test_batch_job_seals_many_and_reports_each(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    import json
    import time

    documents = [("a.pdf", make_pdf(["Licence A"])), ("bad.pdf", b"%PDF-1.7 truncated"), ("c.pdf", make_pdf())]
    licences = [None, None, {**LICENCE, "number": "JN-2026-BATCH-3"}]
    response = client.post(
        "/v1/sign/jobs",
        headers=_auth(tokens["issuer"]),
        data={"seal_id": "demo-370000-p256", "level": "B-T", "licences": json.dumps(licences)},
        files=[("files", (name, data, "application/pdf")) for name, data in documents],
    )
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 60
    while job["state"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/v1/sign/jobs/{job['id']}", headers=_auth(tokens["issuer"])).json()
    assert job["state"] == "finished" and (job["done"], job["failed"]) == (2, 1)
    states = [item["state"] for item in job["items"]]
    assert states == ["sealed", "failed", "sealed"] and job["items"][1]["code"] == "pdf_malformed"
    assert job["items"][2]["licence_id"].startswith("1.2.156.3005.2.")
    sealed = client.get(f"/v1/sign/jobs/{job['id']}/files/0", headers=_auth(tokens["issuer"]))
    assert sealed.status_code == 200 and sealed.content.startswith(documents[0][1])
    signer = PdfFileReader(io.BytesIO(sealed.content)).embedded_signatures[0].signer_info
    assert any(a["type"].dotted == "1.2.840.113549.1.9.16.2.14" for a in signer["unsigned_attrs"])  # B-T
    _problem(client.get(f"/v1/sign/jobs/{job['id']}/files/1", headers=_auth(tokens["issuer"])), 404, "job_not_found")
    # another issuer cannot see the job
    _problem(client.get(f"/v1/sign/jobs/{job['id']}", headers=_auth(tokens["narrow"])), 404, "job_not_found")
    _problem(client.get("/v1/sign/jobs/../../etc", headers=_auth(tokens["issuer"])), 404, "not_found")
    _problem(client.get("/v1/sign/jobs/zz", headers=_auth(tokens["issuer"])), 404, "job_not_found")


def test_batch_refuses_up_front(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    before = _events(context)
    files = [("files", ("a.pdf", make_pdf(), "application/pdf"))]
    _problem(client.post("/v1/sign/jobs", headers=_auth(tokens["narrow"]), data={"seal_id": "demo-370000-sm2"},
                         files=files), 403, "seal_not_permitted")  # fmt: skip
    mismatched = {"seal_id": "demo-370000-sm2", "licences": "[]"}
    response = client.post("/v1/sign/jobs", headers=_auth(tokens["issuer"]), data=mismatched, files=files)
    _problem(response, 400, "invalid_licence")
    assert _events(context) == before


def test_jobs_left_running_by_a_stopped_process_are_marked_interrupted(context: Context, tmp_path: Path) -> None:
    import json

    from signing.batch import BatchJobs

    job = tmp_path / ("ab" * 12)
    job.mkdir()
    manifest = {"id": "ab" * 12, "owner": "issuer:x", "state": "running", "total": 2, "done": 1, "failed": 0,
                "items": [{"index": 0, "state": "sealed"}, {"index": 1, "state": "queued"}]}  # fmt: skip
    (job / "manifest.json").write_text(json.dumps(manifest))
    jobs = BatchJobs(tmp_path, context.signing)
    after = jobs.status("ab" * 12, "issuer:x")
    assert after["state"] == "interrupted" and after["items"][1]["code"] == "job_interrupted"
    assert (after["done"], after["failed"]) == (1, 1)
    jobs.shutdown()
