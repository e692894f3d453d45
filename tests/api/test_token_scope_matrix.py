"""Every route × every kind of caller → the outcome its role and scope allow (issue 12).

The routes come from the app itself (tests/api/routes.py), and `ACCESS` must name each of them: a route
added later fails `test_every_route_is_classified` until someone decides who may call it. Callers:
issuer A (bound to Shandong's seal), issuer B (bound to Yunnan's), verifier, officer, auditor, admin, no
token, an unknown token, an expired admin token and a revoked admin token.

`test_roles_and_token_states` sends each route placeholder arguments: a caller outside the route's
roles gets 403 (a role code), a missing / unknown / expired / revoked token 401 with its own code,
and nothing at all changes; a caller inside gets past authorisation (whatever its arguments then
earn), never a 5xx. `test_issuer_b_cannot_reach_issuer_a` then uses A's real resources (seal,
licence, batch job, organisation, token): A succeeds, B is refused (403, or 404 where the resource is
not B's to know about), with nothing changed by B.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update

from api.app import create_app
from api.auth import ROLES, create_token, get_token, revoke_token
from api.context import Context
from api.problems import PROBLEM_JSON
from seal.demo import create_demo_seals
from store.models import ApiToken
from tests.api.routes import app_routes
from tests.fixtures import make_csr, make_pdf, table_snapshot

PUBLIC = frozenset({"public"})  # no token needed (DESIGN.md: what relying parties fetch, and the health probe)
ANY = frozenset(ROLES)
OFFICERS = frozenset({"officer", "admin"})
READERS = frozenset({"officer", "auditor", "admin"})
ADMIN = frozenset({"admin"})

# (method, path) → the roles that get past authorisation. Scope within a role (issuer A vs B, own
# token vs another's) is the second test's business.
ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/v1/health"): PUBLIC,
    ("GET", "/v1/cas"): PUBLIC,
    ("GET", "/v1/cas/{ca}"): PUBLIC,
    ("GET", "/v1/cas/{ca}/certificate"): PUBLIC,
    ("GET", "/v1/cas/{ca}/crl"): PUBLIC,
    ("GET", "/v1/cas/{ca}/certificate/{scope}"): PUBLIC,
    ("GET", "/v1/cas/{ca}/crl/{scope}"): PUBLIC,
    ("POST", "/v1/cas"): OFFICERS,
    ("POST", "/v1/cas/{ca}/cross-certify"): OFFICERS,
    ("POST", "/v1/cas/{ca}/withdraw"): OFFICERS,
    ("POST", "/v1/certificates"): frozenset({"issuer", "officer", "admin"}),
    ("GET", "/v1/certificates/{serial}"): PUBLIC,
    ("POST", "/v1/certificates/{serial}/revoke"): OFFICERS,
    ("POST", "/v1/ocsp"): PUBLIC,
    ("GET", "/v1/ocsp/{encoded}"): PUBLIC,
    ("GET", "/v1/trust-list"): PUBLIC,
    ("POST", "/v1/verify"): PUBLIC,
    ("POST", "/v1/tsa"): PUBLIC,
    ("POST", "/v1/witness/add-checkpoint"): PUBLIC,
    ("POST", "/v1/seals"): OFFICERS,
    ("GET", "/v1/seals"): ANY,
    ("GET", "/v1/seals/{seal_id}"): ANY,
    ("GET", "/v1/seals/{seal_id}/esl"): PUBLIC,
    ("GET", "/v1/seals/{seal_id}/image"): PUBLIC,
    ("GET", "/v1/seals/{seal_id}/status"): PUBLIC,
    ("POST", "/v1/seals/{seal_id}/suspend"): OFFICERS,
    ("POST", "/v1/seals/{seal_id}/resume"): OFFICERS,
    ("POST", "/v1/seals/{seal_id}/revoke"): OFFICERS,
    ("POST", "/v1/sign"): frozenset({"issuer"}),
    ("POST", "/v1/sign/jobs"): frozenset({"issuer"}),
    ("GET", "/v1/sign/jobs/{job_id}"): frozenset({"issuer"}),
    ("GET", "/v1/sign/jobs/{job_id}/files/{index}"): frozenset({"issuer"}),
    ("GET", "/v1/licences/{identifier}/status"): PUBLIC,
    ("GET", "/v1/licences/{identifier}"): frozenset({"issuer", "officer", "admin"}),  # no auditor: names its holder
    ("POST", "/v1/licences/{identifier}/status"): frozenset({"issuer", "officer", "admin"}),
    ("GET", "/v1/ledger/checkpoint"): PUBLIC,
    ("GET", "/v1/ledger/key"): PUBLIC,
    ("GET", "/v1/ledger/entries"): PUBLIC,
    ("GET", "/v1/ledger/proofs/inclusion"): PUBLIC,
    ("GET", "/v1/ledger/proofs/consistency"): PUBLIC,
    ("GET", "/v1/events"): READERS,
    ("GET", "/v1/approvals"): READERS,
    ("GET", "/v1/approvals/{approval_id}"): READERS,
    ("GET", "/v1/keys"): READERS,  # audit metadata: versions, algorithms, certificate expiry; no secret
    ("POST", "/v1/keys/{key}/rotate"): frozenset({"officer"}),
    ("POST", "/v1/approvals/{approval_id}/approve"): frozenset({"officer"}),  # admins request, never approve
    ("POST", "/v1/approvals/{approval_id}/reject"): OFFICERS,  # an admin its own request
    ("GET", "/v1/ceremonies"): READERS,  # the offline root's requests (ca/ceremony.py): what it must sign
    ("GET", "/v1/ceremonies/{request_id}"): READERS,
    ("POST", "/v1/ceremonies/{request_id}/import"): frozenset({"officer"}),
    ("POST", "/v1/ceremonies/{request_id}/cancel"): frozenset({"officer"}),
    ("POST", "/v1/tokens"): ADMIN,
    ("GET", "/v1/tokens"): ADMIN,
    ("GET", "/v1/tokens/me"): ANY,
    ("GET", "/v1/tokens/{ref}"): ADMIN,
    ("POST", "/v1/tokens/{ref}/revoke"): ADMIN,  # another's token; anyone its own (`me`): second test
    ("POST", "/v1/tokens/{ref}/rotate"): ADMIN,
}
ROLE_CODES = ("forbidden_role", "approval_role")
SHANDONG = "11370000MB00000015"  # the organisation of demo-370000-* (seal/demo.py)
SEAL_A, SEAL_B = "demo-370000-sm2", "demo-530000-sm2"


@dataclasses.dataclass(frozen=True)
class Caller:
    label: str
    role: str | None  # None: no valid token (none, unknown, expired, revoked)
    token: str | None
    refusal: str | None = None  # the 401 code a non-public route answers
    name: str = ""


@pytest.fixture(scope="module")
def app(context: Context) -> FastAPI:
    """No background integrator or CRL refresh: nothing writes while snapshots are compared."""
    create_demo_seals(context.seals, actor="test")
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    return create_app(Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def callers(app: FastAPI, context: Context) -> dict[str, Caller]:
    tag = secrets.token_hex(3)
    made = {}
    for label, seals in (("a", [SEAL_A]), ("b", [SEAL_B])):
        name = f"sys-{label}-{tag}"
        made[f"issuer-{label}"] = Caller(
            f"issuer-{label}", "issuer", create_token(context.db, "issuer", name, seals), name=name
        )
    for role in ("verifier", "officer", "auditor", "admin"):
        made[role] = Caller(role, role, create_token(context.db, role, f"mx-{role}-{tag}"), name=f"mx-{role}-{tag}")
    expired = create_token(context.db, "admin", f"mx-expired-{tag}")
    with context.db.session() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        session.execute(update(ApiToken).where(ApiToken.name == f"mx-expired-{tag}").values(expires_at=past))
    revoked = create_token(context.db, "admin", f"mx-revoked-{tag}")
    revoke_token(context.db, f"mx-revoked-{tag}", actor="test")
    made["no token"] = Caller("no token", None, None, "unauthenticated")
    made["unknown"] = Caller("unknown", None, "ts_" + secrets.token_urlsafe(32), "invalid_token")
    made["expired"] = Caller("expired", None, expired, "token_expired")
    made["revoked"] = Caller("revoked", None, revoked, "token_revoked")
    return made


def _headers(caller: Caller) -> dict[str, str]:
    return {} if caller.token is None else {"Authorization": f"Bearer {caller.token}"}


def _placeholder(path: str) -> str:
    """Path parameters filled with names of nothing: nothing can be changed by these requests."""
    for name in ("ca", "serial", "encoded", "seal_id", "job_id", "identifier", "approval_id", "ref", "scope"):
        path = path.replace("{" + name + "}", "matrix-none")
    return path.replace("{index}", "0")


def test_every_route_is_classified(app: FastAPI) -> None:
    served = {(m, p) for m, p in app_routes(app) if m != "HEAD"}  # HEAD is GET's
    assert served - set(ACCESS) == set(), "a new route: say in ACCESS who may call it"
    assert set(ACCESS) - served == set(), "a route is gone: remove it from ACCESS"


def _code(response: Response) -> str | None:
    if not response.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return None
    code = response.json().get("code")
    return None if code is None else str(code)


def test_roles_and_token_states(app: FastAPI, client: TestClient, context: Context, callers: dict[str, Caller]) -> None:
    routes = [(m, p) for m, p in app_routes(app) if m != "HEAD"]
    for _ in range(2):  # what public reads make on first use (trust list, its key), then its events logged
        for method, path in routes:
            if method == "GET" and ACCESS[(method, path)] == PUBLIC:
                client.get(_placeholder(path))
    before = table_snapshot(context.db)
    outcomes: list[str] = []
    for method, path in routes:
        allowed = ACCESS[(method, path)]
        for caller in callers.values():
            response = client.request(method, _placeholder(path), headers=_headers(caller), json={})
            status, code = response.status_code, _code(response)
            where = f"{method} {path} as {caller.label}: {status} {code}"
            assert status < 500, where
            if allowed == PUBLIC:
                # a public route ignores tokens, or checks one that is sent (GET /v1/certificates/{serial})
                assert status != 403, where
                assert status != 401 or caller.refusal is not None, where
            elif caller.role is None:
                assert (status, code) == (401, caller.refusal), where
            elif caller.role in allowed:
                assert status != 401 and not (status == 403 and code in ROLE_CODES), where
            else:
                assert status == 403 and code in ROLE_CODES, where
            outcomes.append(where)
    assert table_snapshot(context.db) == before  # placeholders and refusals change nothing
    assert len(outcomes) == len(routes) * len(callers) >= 50 * 10


# -- issuer A's resources against issuer B ----------------------------------------------------------


def _licence(number: str) -> dict[str, Any]:
    return {
        "type_code": SHANDONG + "001",
        "type_name": "营业执照",
        "number": number,
        "holder": {"name": "张三", "id": "370102199001011234", "id_type": "resident_id"},
        "issuer": {"name": "山东省市场监督管理局", "uscc": SHANDONG},
        "issue_date": "2026-11-22",
    }


def _sign(client: TestClient, caller: Caller, seal_id: str, licence: dict[str, Any] | None = None) -> Response:
    data = {"seal_id": seal_id} | ({"licence": json.dumps(licence)} if licence else {})
    files = {"file": ("doc.pdf", make_pdf(), "application/pdf")}
    return client.post("/v1/sign", headers=_headers(caller), data=data, files=files)


def _job(client: TestClient, caller: Caller, seal_id: str) -> Response:
    files = [("files", ("a.pdf", make_pdf(), "application/pdf"))]
    return client.post("/v1/sign/jobs", headers=_headers(caller), data={"seal_id": seal_id}, files=files)


def _refused(response: Response, status: int, code: str) -> None:
    assert (response.status_code, _code(response)) == (status, code), response.text


def _finished(client: TestClient, caller: Caller, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = client.get(f"/v1/sign/jobs/{job_id}", headers=_headers(caller)).json()
        if job["state"] == "finished" or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_issuer_b_cannot_reach_issuer_a(
    client: TestClient, context: Context, callers: dict[str, Caller], tmp_path: Path
) -> None:
    a, b = callers["issuer-a"], callers["issuer-b"]
    signed = _sign(client, a, SEAL_A, _licence(f"MX-{secrets.token_hex(3)}"))
    assert signed.status_code == 200, signed.text
    licence = signed.headers["X-Trustseal-Licence-Id"]
    job = _job(client, a, SEAL_A)
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    assert _finished(client, a, job_id)["done"] == 1
    csr = make_csr(
        tmp_path,
        algorithm="sm2",
        subject=f"/C=CN/O=Shandong AMR/organizationIdentifier={SHANDONG}/CN=Shandong AMR Seal",
    ).decode()
    certificate = {"csr_pem": csr, "profile": "org-seal", "ca": "cn-370000-sm2"}
    a_token_id = get_token(context.db, a.name).id

    before = table_snapshot(context.db)
    hb = _headers(b)
    _refused(_sign(client, b, SEAL_A), 403, "seal_not_permitted")  # sign with A's seal
    _refused(_job(client, b, SEAL_A), 403, "seal_not_permitted")  # a batch job with A's seal
    _refused(client.get(f"/v1/sign/jobs/{job_id}", headers=hb), 404, "job_not_found")  # A's batch job
    _refused(client.get(f"/v1/sign/jobs/{job_id}/files/0", headers=hb), 404, "job_not_found")
    _refused(client.get(f"/v1/licences/{licence}", headers=hb), 403, "licence_not_permitted")  # A's licence
    changed = client.post(f"/v1/licences/{licence}/status", json={"status": "03"}, headers=hb)
    _refused(changed, 403, "licence_not_permitted")
    _refused(client.get(f"/v1/seals/{SEAL_A}", headers=hb), 404, "seal_not_found")  # A's seal's record
    assert SEAL_A not in [s["id"] for s in client.get("/v1/seals", headers=hb).json()]
    _refused(client.post("/v1/certificates", json=certificate, headers=hb), 403, "uscc_not_permitted")  # A's org
    for ref in (str(a_token_id), a.name):  # A's token: not B's to read, revoke or rotate
        _refused(client.get(f"/v1/tokens/{ref}", headers=hb), 403, "forbidden_role")
        _refused(client.post(f"/v1/tokens/{ref}/revoke", headers=hb), 403, "forbidden_role")
        _refused(client.post(f"/v1/tokens/{ref}/rotate", headers=hb), 403, "forbidden_role")
    assert client.get("/v1/tokens/me", headers=hb).json()["name"] == b.name
    assert table_snapshot(context.db) == before

    # … while A reaches each of them
    ha = _headers(a)
    assert client.get(f"/v1/sign/jobs/{job_id}/files/0", headers=ha).content.startswith(b"%PDF")
    assert client.get(f"/v1/licences/{licence}", headers=ha).json()["identifier"] == licence
    assert client.post(f"/v1/licences/{licence}/status", json={"status": "02"}, headers=ha).json()["status"] == "02"
    assert client.get(f"/v1/seals/{SEAL_A}", headers=ha).json()["id"] == SEAL_A
    assert [s["id"] for s in client.get("/v1/seals", headers=ha).json()] == [SEAL_A]
    assert client.post("/v1/certificates", json=certificate, headers=ha).status_code == 201
    assert client.get("/v1/tokens/me", headers=ha).json()["id"] == a_token_id

    # A rotates its token: what A owns goes with the name to the new secret, and nothing to the old one
    rotated = client.post("/v1/tokens/me/rotate", headers=ha).json()["token"]
    _refused(client.get(f"/v1/licences/{licence}", headers=ha), 401, "token_revoked")
    callers["issuer-a"] = dataclasses.replace(a, token=rotated)  # (the fixture is shared: test order is free)
    hr = {"Authorization": f"Bearer {rotated}"}
    assert client.get(f"/v1/licences/{licence}", headers=hr).json()["identifier"] == licence
    assert client.get(f"/v1/sign/jobs/{job_id}", headers=hr).json()["id"] == job_id
