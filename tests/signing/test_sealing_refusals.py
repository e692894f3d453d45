"""What sealing refuses (issue 10): active content unless asked for, and what a certification
signature's DocMDP permissions forbid. Each refusal is a 4xx with its code, and leaves nothing behind:
no sealed document, no event."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.auth import create_token
from api.context import Context
from seal.demo import create_demo_seals, demo_seal_ids
from signing.batch import BatchItem
from signing.errors import PdfActiveContent, PdfCertifiedNoChanges, PdfCertifyNotFirst, SigningError
from signing.licences import LicenceRequest
from signing.pdf import Placement
from signing.service import Caller
from store.models import Event
from tests.fixtures import make_pdf
from tests.pdf_builders import ACTIVE, BENIGN, certified
from verify.report import INDETERMINATE, PASSED

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))


@pytest.fixture(scope="module")
def seals(context: Context) -> Context:
    create_demo_seals(context.seals, actor="test")
    return context


@pytest.fixture(scope="module")
def client(seals: Context) -> Iterator[TestClient]:
    with TestClient(create_app(seals), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def issuer(seals: Context) -> dict[str, str]:
    return {"Authorization": "Bearer " + create_token(seals.db, "issuer", "refusals", demo_seal_ids())}


def _events(context: Context) -> int:
    with context.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def _seal(context: Context, pdf: bytes, **kwargs: Any) -> bytes:
    return context.signing.seal_pdf(pdf, seal_id="demo-370000-sm2", caller=CALLER, placement=Placement(), **kwargs).pdf


def _refused(context: Context, error: type[SigningError], pdf: bytes, **kwargs: Any) -> SigningError:
    before = _events(context)
    with pytest.raises(error) as caught:
        _seal(context, pdf, **kwargs)
    assert _events(context) == before  # nothing recorded
    assert 400 <= caught.value.status < 500
    return caught.value


@pytest.mark.parametrize("kind", sorted(ACTIVE))
def test_active_content_is_refused_unless_asked_for(seals: Context, kind: str) -> None:
    build, what = ACTIVE[kind]
    document = build()
    refusal = _refused(seals, PdfActiveContent, document)
    assert refusal.code == "pdf_active_content"
    assert what in refusal.extra["active_content"]  # type: ignore[operator]
    assert what in refusal.detail
    sealed = _seal(seals, document, allow_active_content=True)
    assert sealed.startswith(document[:8]) and len(sealed) > len(document)


@pytest.mark.parametrize("kind", sorted(BENIGN))
def test_navigation_and_links_are_not_active_content(seals: Context, kind: str) -> None:
    _seal(seals, BENIGN[kind]())


def test_api_refuses_active_content_with_the_list(client: TestClient, issuer: dict[str, str], seals: Context) -> None:
    document = ACTIVE["open-action-javascript"][0]()
    files = {"file": ("doc.pdf", document, "application/pdf")}
    before = _events(seals)
    response = client.post("/v1/sign", headers=issuer, data={"seal_id": "demo-370000-sm2"}, files=files)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "pdf_active_content"
    assert body["active_content"] == ["/OpenAction (JavaScript)"]
    assert _events(seals) == before
    allowed = client.post(
        "/v1/sign", headers=issuer, data={"seal_id": "demo-370000-sm2", "allow_active_content": "true"}, files=files
    )
    assert allowed.status_code == 200 and allowed.content.startswith(b"%PDF")
    # document.sealed, and on first use the national TSA unit's and the ledger key's certificates
    assert _events(seals) in (before + 1, before + 2, before + 3)


def test_a_document_certified_with_no_changes_is_not_sealed(seals: Context, client: TestClient,
                                                            issuer: dict[str, str]) -> None:  # fmt: skip
    document = certified(make_pdf(), 1)
    refusal = _refused(seals, PdfCertifiedNoChanges, document)
    assert refusal.code == "pdf_certified_no_changes" and "P=1" in refusal.detail
    files = {"file": ("doc.pdf", document, "application/pdf")}
    response = client.post("/v1/sign", headers=issuer, data={"seal_id": "demo-370000-sm2"}, files=files)
    assert (response.status_code, response.json()["code"]) == (422, "pdf_certified_no_changes")


@pytest.mark.parametrize("level", [2, 3])
def test_a_certification_that_permits_signing_gets_a_seal_it_accepts(seals: Context, level: int) -> None:
    """P=2 / P=3 permit signing the empty signature fields the certified document has: the seal goes
    there, and the certification signature's own modifications check (pyHanko's DocMDP analysis)
    accepts it."""
    sealed = seals.signing.seal_pdf(
        certified(make_pdf(), level, empty_field="ForTheSeal"), seal_id="demo-370000-sm2", caller=CALLER,
        placement=Placement(),
    )  # fmt: skip
    assert (sealed.field_name, sealed.page) == ("ForTheSeal", 1)
    report = seals.verification.verifier().verify(sealed.pdf).as_json()
    by_field = {s["field"]: s for s in report["signatures"]}
    author, seal = by_field["Author"], by_field["ForTheSeal"]
    assert seal["result"] == PASSED, report
    checks = {c["name"]: (c["status"], c["code"]) for c in author["checks"]}
    assert checks["modifications"] == (PASSED, "LATER_SIGNATURES_ONLY")
    assert checks["chain"][0] == INDETERMINATE  # (the outside author is not on our trust list)


@pytest.mark.parametrize("level", [2, 3])
def test_a_new_visible_field_would_break_a_certification(seals: Context, level: int) -> None:
    """Without an empty field to fill, a seal would be a new visible field, which our own verifier
    (pyHanko's difference analysis) holds against the certification signature: refused."""
    refusal = _refused(seals, PdfCertifiedNoChanges, certified(make_pdf(), level))
    assert f"P={level}" in refusal.detail and "empty signature field" in refusal.detail


LICENCE = {
    "type_code": "11370000MB00000015001",
    "type_name": "营业执照",
    "number": "CERTIFIED-1",
    "holder": {"name": "张三", "id": "1", "id_type": "resident_id"},
    "issuer": {"name": "济南市市场监督管理局", "uscc": "11370000MB00000015"},
    "issue_date": "2026-11-22",
}


@pytest.mark.parametrize("level", [2, 3])
def test_a_certified_document_gets_no_licence_metadata(seals: Context, level: int) -> None:
    licence = LicenceRequest.from_json({**LICENCE, "number": f"CERTIFIED-{level}"})
    refusal = _refused(seals, PdfCertifiedNoChanges, certified(make_pdf(), level), licence=licence)
    assert f"P={level}" in refusal.detail and "metadata" in refusal.detail
    with seals.db.session() as session:  # the licence was not registered either
        from store.models import Licence

        assert session.get(Licence, licence.identifier) is None


def test_certify_only_as_the_first_signature(seals: Context, client: TestClient, issuer: dict[str, str]) -> None:
    signed = _seal(seals, make_pdf())
    refusal = _refused(seals, PdfCertifyNotFirst, signed, certify=True)
    assert refusal.code == "pdf_certify_not_first"
    files = {"file": ("doc.pdf", signed, "application/pdf")}
    response = client.post("/v1/sign", headers=issuer, data={"seal_id": "demo-370000-sm2", "certify": "true"},
                           files=files)  # fmt: skip
    assert (response.status_code, response.json()["code"]) == (422, "pdf_certify_not_first")
    # the first signature may certify
    assert seals.verification.verifier().verify(_seal(seals, make_pdf(), certify=True)).result == PASSED


def test_batch_jobs_record_the_refusal(seals: Context) -> None:
    before = _events(seals)
    job = seals.jobs.submit(
        [BatchItem(name="a.pdf", data=ACTIVE["link-launch"][0]())],
        seal_id="demo-370000-sm2",
        caller=CALLER,
        placement=Placement(),
        level="B-B",
    )
    for _ in range(600):  # waits for the worker thread, at most a minute
        status = seals.jobs.status(job["id"], CALLER.actor)
        if status["state"] == "finished":
            break
        time.sleep(0.1)
    (item,) = status["items"]
    assert (item["state"], item["code"]) == ("failed", "pdf_active_content")
    assert _events(seals) == before
