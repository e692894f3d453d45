"""Reads never write (issue 12): GET /v1/cas/{ca}/crl, POST /v1/verify and OCSP answer from stored CRLs
and sign none, even with the clock past half a CRL's validity; the scheduler (api/app.py) makes the new
ones. A CA with no CRL answers 503 `crl_unavailable` rather than signing on a public request."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from api.app import _refresh_crls
from api.context import Context
from ca.crl import CRL_VALIDITY
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from store.models import CRL, CertificateAuthority, Event
from tests.fixtures import make_pdf


def _crl_counts(context: Context) -> tuple[int, int]:
    with context.db.session() as session:
        rows = session.scalar(select(func.count()).select_from(CRL)) or 0
        events = session.scalar(select(func.count()).select_from(Event).where(Event.type == "crl.published")) or 0
        return rows, events


def _ca_names(context: Context) -> list[str]:
    with context.db.session() as session:
        return list(session.scalars(select(CertificateAuthority.name).order_by(CertificateAuthority.name)))


@pytest.fixture
def later(context: Context) -> Iterator[datetime]:
    """The CRL clock moved past half the validity: every stored CRL is due for renewal."""
    moment = datetime.now(UTC) + CRL_VALIDITY / 2 + timedelta(hours=1)
    context.ca.crls.clock = lambda: moment
    try:
        yield moment
    finally:
        context.ca.crls.clock = lambda: datetime.now(UTC)


def test_public_reads_sign_no_crl_and_the_scheduler_does(
    client: TestClient, context: Context, seal_service: SealService, later: datetime
) -> None:
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    sealed = context.signing.seal_pdf(make_pdf(), seal_id="demo-530000-sm2", caller=caller, placement=Placement())
    names = _ca_names(context)
    before = _crl_counts(context)
    stored = {}
    with context.db.session() as session:
        for name in names:
            newest = session.scalars(select(CRL).where(CRL.ca_name == name).order_by(CRL.number.desc())).first()
            assert newest is not None
            stored[name] = newest.der
    for _ in range(3):
        for name in names:
            answer = client.get(f"/v1/cas/{name}/crl")
            assert answer.status_code == 200 and answer.content == stored[name]  # the newest stored, not a new one
        report = client.post("/v1/verify", files={"file": ("s.pdf", sealed.pdf, "application/pdf")})
        assert report.status_code == 200 and report.json()["result"] == "PASSED", report.text[:300]
    assert _crl_counts(context) == before  # no CRL row and no crl.published event from reads

    made = context.ca.refresh_due_crls()  # the scheduler's round: every CA is due at `later`
    assert sorted(made) == names
    assert _crl_counts(context) == (before[0] + len(names), before[1] + len(names))
    assert context.ca.refresh_due_crls() == {}  # fresh now: nothing more until half the new validity
    for name in names:
        assert client.get(f"/v1/cas/{name}/crl").content != stored[name]


def test_a_ca_without_a_crl_answers_503_and_the_scheduler_task_makes_one(client: TestClient, context: Context) -> None:
    with context.db.session() as session:
        session.execute(delete(CRL).where(CRL.ca_name == "cn-530000-p256"))
    before = _crl_counts(context)
    answer = client.get("/v1/cas/cn-530000-p256/crl")
    assert answer.status_code == 503 and answer.json()["code"] == "crl_unavailable"
    assert _crl_counts(context) == before

    async def one_round() -> None:
        task = asyncio.create_task(_refresh_crls(context, 0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if _crl_counts(context)[0] > before[0]:
                break
        task.cancel()

    asyncio.run(one_round())
    assert client.get("/v1/cas/cn-530000-p256/crl").status_code == 200
    assert client.get("/v1/cas/no-such-ca/crl").json()["code"] == "unknown_ca"
