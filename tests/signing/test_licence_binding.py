"""A seal issues licences of its own organisation only (issue 10, fail-open 7).

Before: an issuer holding the Shandong seal registered a licence whose issuer segment was a bank's
USCC; its public status said "valid", verification PASSED, and the bank could no longer issue that
identifier (409 licence_exists). Now the licence's issuer USCC must be the organizationIdentifier of
the seal's certificate and its type the issuer's own (or one listed for the seal), else 403 with
nothing written: no licence row, no event, no PDF.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from api.app import create_app
from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from policies import licence_id
from policies.seals import load_licence_type_codes, may_issue_licence_type
from policies.uscc import check_character
from seal.demo import create_demo_seals
from seal.service import SealRequest
from signing.licences import LicenceRequest, LicenceTypeNotAllowed
from signing.pdf import Placement
from signing.service import Caller
from store.models import Event, Licence
from tests.fixtures import make_pdf

SHANDONG = "11370000MB00000015"  # demo-370000-*
BANK = "91370000MA3C00000" + check_character("91370000MA3C00000")
NATIONAL = "11100000MB0143028" + check_character("11100000MB0143028")  # a national department
BANK_SEAL = "bank-370000-sm2"


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    create_demo_seals(context.seals, actor="test")
    context.seals.create(
        SealRequest(name="某银行", organisation_name="某银行股份有限公司", organisation_uscc=BANK, ca="cn-370000-sm2",
                    seal_id=BANK_SEAL),
        actor="test",
    )  # fmt: skip
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def token(context: Context) -> str:
    return create_token(context.db, "issuer", "licence-system", ["*"])


def _licence(issuer: str = SHANDONG, type_code: str | None = None, number: str = "BIND-1") -> dict[str, Any]:
    return {
        "type_code": type_code or issuer + "001",
        "type_name": "开户许可证",
        "number": number,
        "holder": {"name": "赵六", "id": "370102199001011234", "id_type": "resident_id"},
        "issuer": {"name": "某银行股份有限公司", "uscc": issuer},
        "issue_date": "2026-11-22",
    }


def _sign(client: TestClient, token: str, seal_id: str, licence: dict[str, Any]) -> Response:
    return client.post(
        "/v1/sign",
        headers={"Authorization": f"Bearer {token}"},
        data={"seal_id": seal_id, "licence": json.dumps(licence)},
        files={"file": ("doc.pdf", make_pdf(), "application/pdf")},
    )


def _written(context: Context) -> tuple[int, int]:
    with context.db.session() as session:
        events = session.scalar(select(func.count()).select_from(Event)) or 0
        licences = session.scalar(select(func.count()).select_from(Licence)) or 0
        return events, licences


def _problem(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


def test_another_organisations_identifier_cannot_be_registered(
    client: TestClient, context: Context, token: str
) -> None:
    bank_licence = _licence(BANK, number="LOCKOUT-1")
    identifier = LicenceRequest.from_json(bank_licence).identifier
    before = _written(context)
    _problem(_sign(client, token, "demo-370000-sm2", bank_licence), 403, "licence_issuer_mismatch")
    assert _written(context) == before
    _problem(client.get(f"/v1/licences/{identifier}/status"), 404, "licence_not_found")
    # so the real owner is not locked out: the bank's own seal issues it
    response = _sign(client, token, BANK_SEAL, bank_licence)
    assert response.status_code == 200, response.text
    assert response.headers["X-Trustseal-Licence-Id"] == identifier
    assert client.get(f"/v1/licences/{identifier}/status").json()["issuer_uscc"] == BANK


def test_the_seal_organisation_may_not_borrow_another_issuer_for_its_own_type(
    client: TestClient, context: Context, token: str
) -> None:
    """The issuer segment decides, not the type: Shandong's type with the bank as issuer is refused too."""
    before = _written(context)
    licence = _licence(BANK, type_code=SHANDONG + "001", number="LOCKOUT-2")
    _problem(_sign(client, token, "demo-370000-sm2", licence), 403, "licence_issuer_mismatch")
    assert _written(context) == before


def test_a_type_of_another_department_needs_the_seals_policy(client: TestClient, context: Context, token: str) -> None:
    licence = _licence(SHANDONG, type_code=NATIONAL + "001", number="TYPE-1")
    before = _written(context)
    _problem(_sign(client, token, "demo-370000-sm2", licence), 403, "licence_type_not_allowed")
    assert _written(context) == before
    saved = context.signing.licence_type_codes
    context.signing.licence_type_codes = {"demo-370000-sm2": frozenset({NATIONAL + "001"})}
    try:
        assert _sign(client, token, "demo-370000-sm2", licence).status_code == 200
        # listed for one seal, not for another seal of the same organisation
        other = {**licence, "number": "TYPE-2"}
        _problem(_sign(client, token, "demo-370000-p256", other), 403, "licence_type_not_allowed")
    finally:
        context.signing.licence_type_codes = saved


def test_the_rule_holds_in_batch_jobs_and_the_service(context: Context, client: TestClient, token: str) -> None:
    caller = Caller(role="issuer", name="licence-system", seal_ids=("*",))
    request = LicenceRequest.from_json(_licence(SHANDONG, type_code=NATIONAL + "002", number="TYPE-3"))
    with pytest.raises(LicenceTypeNotAllowed):
        context.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=caller, placement=Placement(),
                                 licence=request)  # fmt: skip
    before = _written(context)
    headers = {"Authorization": f"Bearer {token}"}
    response = client.post(
        "/v1/sign/jobs",
        headers=headers,
        data={"seal_id": "demo-370000-sm2", "licences": json.dumps([_licence(BANK, number="BATCH-1")])},
        files=[("files", ("a.pdf", make_pdf(), "application/pdf"))],
    )
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 60
    while job["state"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
        job = client.get(f"/v1/sign/jobs/{job['id']}", headers=headers).json()
    assert job["state"] == "finished" and job["items"][0]["code"] == "licence_issuer_mismatch"
    assert _written(context)[1] == before[1]  # no licence row


def test_licence_type_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "licence-types.yaml"
    assert load_licence_type_codes(path) == {}
    path.write_text(f"demo-370000-sm2:\n  - {NATIONAL.lower()}001\n", encoding="utf-8")
    codes = load_licence_type_codes(path)
    assert codes == {"demo-370000-sm2": frozenset({NATIONAL + "001"})}
    assert may_issue_licence_type(issuer_uscc=SHANDONG, type_code=NATIONAL + "001",
                                  allowed_type_codes=codes["demo-370000-sm2"])  # fmt: skip
    assert not may_issue_licence_type(issuer_uscc=SHANDONG, type_code=NATIONAL + "002",
                                      allowed_type_codes=codes["demo-370000-sm2"])  # fmt: skip
    for bad in ("- a list\n", "demo: 11370000MB00000015001\n", "demo:\n  - 11370000MB00000016001\n"):
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ValueError):
            load_licence_type_codes(path)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(SHANDONG, SHANDONG), ("NTRCN-" + SHANDONG, SHANDONG), (" ntrcn-" + SHANDONG.lower(), SHANDONG), (None, None)],
)
def test_organisation_identifier_prefixes(value: str | None, expected: str | None) -> None:
    assert licence_id.organisation_uscc(value) == expected
