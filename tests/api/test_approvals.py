"""Four-eyes approvals (api/approvals.py, api/operations.py): every listed operation that exists today runs
only once a second officer approves, and then answers what its direct path answers; each refusal is a
4xx with its code and changes nothing; expiry follows an injected clock; officers approving at once
execute once; every request and decision is an event, in order.

Each test installs its own policy on the module's context (the app reads `context.approvals` per request).
"""

from __future__ import annotations

import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.approvals import Approvals, digest
from api.auth import create_token, rotate_token
from api.context import Context
from api.operations import execute
from api.problems import PROBLEM_JSON, Problem
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm
from policies.approvals import OPERATIONS, PolicyError, default_policy_text, load_policy, parse_policy
from store.models import ApiToken, Approval, CertificateAuthority, Event, Seal
from tests.fixtures import openssl


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _policy(context: Context, required: int, hours: float = 24) -> Clock:
    """Every listed operation needs `required` officers (1: none), on a clock the test moves."""
    lines = "".join(f"  {name}: {required}\n" for name in OPERATIONS)
    clock = Clock()
    text = f"version: 1\nexpires_after_hours: {hours}\noperations:\n{lines}"
    context.approvals = Approvals(context.db, parse_policy(text, "test"), clock)
    return clock


def _headers(context: Context, role: str, name: str | None = None) -> dict[str, str]:
    name = name or f"{role}-{secrets.token_hex(4)}"
    return {"Authorization": f"Bearer {create_token(context.db, role, name)}"}


@pytest.fixture
def officers(context: Context) -> list[dict[str, str]]:
    return [_headers(context, "officer") for _ in range(4)]


def _state(context: Context) -> tuple[Any, ...]:
    """Everything a refused decision must leave alone."""
    with context.db.session() as session:
        rows = session.scalars(select(Approval).order_by(Approval.id)).all()
        return (
            session.scalar(select(func.count()).select_from(Event)),
            [(r.id, r.status, list(r.approvals), r.version, r.result) for r in rows],
            session.scalar(select(func.count()).select_from(ApiToken)),
            sorted((s.id, s.status) for s in session.scalars(select(Seal))),
            sorted((c.name, c.status) for c in session.scalars(select(CertificateAuthority))),
        )


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    return body


def _pending(response: Any, operation: str, requester: str) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    approval: dict[str, Any] = response.json()["approval"]
    assert response.headers["location"] == f"/v1/approvals/{approval['id']}"
    assert approval["operation"] == operation and approval["status"] == "pending"
    assert approval["required"] == 2 and approval["approvals"] == [requester]
    assert datetime.fromisoformat(approval["expires_at"]) > datetime.now(UTC)
    return approval


def _name(headers: dict[str, str], context: Context) -> str:
    from api.auth import authenticate

    who = authenticate(context.db, headers["Authorization"].split()[1])
    assert who is not None
    return who.name


def _approve(client: TestClient, approval_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(f"/v1/approvals/{approval_id}/approve", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _events(context: Context, since: int) -> list[Event]:
    with context.db.session() as session:
        return list(session.scalars(select(Event).where(Event.id > since).order_by(Event.id)))


def _last_event_id(context: Context) -> int:
    with context.db.session() as session:
        return session.scalar(select(func.max(Event.id))) or 0


def _new_ca(context: Context, name: str) -> None:
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        region_name="Guangdong",
    )


# -- the policy -----------------------------------------------------------------------------------


def test_default_policy_needs_two_for_every_operation_and_typos_are_refused() -> None:
    policy = parse_policy(default_policy_text())
    assert {name: policy.required(name) for name in OPERATIONS} == dict.fromkeys(OPERATIONS, 2)
    assert policy.required("seal.suspend") == 1  # one officer suspends alone
    for bad in (
        "operations: {seal.suspend: 2}",  # not an approvable operation: suspension stays one officer's call
        "operations: {ca.withdrew: 2}",  # a typo must not leave ca.withdraw without approval
        "operations: {ca.withdraw: 0}",
        "operations: {ca.withdraw: true}",
        "operations: {ca.withdraw: 11}",
        "expires_after_hours: 0",
        "version: 2",
        "[1, 2]",
        "operations: {ca.withdraw: 2}\nextra: 1",
    ):
        with pytest.raises(PolicyError):
            parse_policy(bad)


def test_loading_records_the_policy_once_with_its_sm3(context: Context, tmp_path: Path) -> None:
    assert Approvals(context.db, load_policy(tmp_path / "none.yaml")).record_policy() is None  # no file, no claim
    path = tmp_path / "approvals.yaml"
    path.write_text(default_policy_text())
    before = _last_event_id(context)
    assert Approvals(context.db, load_policy(path)).record_policy() is not None
    assert Approvals(context.db, load_policy(path)).record_policy() is None  # the same policy: already recorded
    path.write_text(default_policy_text().replace("ca.withdraw: 2", "ca.withdraw: 3"))
    assert Approvals(context.db, load_policy(path)).record_policy() is not None
    events = [e for e in _events(context, before) if e.type == "approvals.policy_loaded"]
    assert len(events) == 2
    assert events[0].payload["sm3"] == sm3(default_policy_text().encode()).hex()
    assert events[0].payload["policy"]["operations"]["ca.withdraw"] == 2
    assert events[1].payload["policy"]["operations"]["ca.withdraw"] == 3
    assert events[1].payload["text"] == path.read_text()


def test_the_service_records_its_policy_at_start(context: Context) -> None:
    from api.app import create_app

    (context.settings.home / "approvals.yaml").write_text(default_policy_text().replace("24", "12"))
    context.__dict__.pop("approvals", None)  # read afresh, as a starting service does
    before = _last_event_id(context)
    try:
        create_app(context)
        [event] = [e for e in _events(context, before) if e.type == "approvals.policy_loaded"]
        assert event.payload["policy"]["expires_after_hours"] == 12
        assert event.payload["source"] == str(context.settings.home / "approvals.yaml")
    finally:
        (context.settings.home / "approvals.yaml").unlink()
        context.__dict__.pop("approvals", None)


# -- each operation: pending, approved, executed; the result is the direct path's -----------------


def test_withdraw_runs_once_a_second_officer_approves(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    _policy(context, 2)
    _new_ca(context, "appr-withdraw-1")
    before = _last_event_id(context)
    asked = client.post("/v1/cas/appr-withdraw-1/withdraw", json={"reason": "caCompromise"}, headers=officers[0])
    approval = _pending(asked, "ca.withdraw", _name(officers[0], context))
    assert context.ca.ca_status("appr-withdraw-1") == "active"  # nothing done yet
    listed = client.get("/v1/approvals", params={"status": "pending"}, headers=officers[1]).json()["approvals"]
    assert approval["id"] in [a["id"] for a in listed]

    done = _approve(client, approval["id"], officers[1])
    assert done["approval"]["status"] == "executed"
    assert done["approval"]["approvals"] == [_name(officers[0], context), _name(officers[1], context)]
    with context.db.session() as session:
        row = session.get(CertificateAuthority, "appr-withdraw-1")
        assert row is not None and row.status == "withdrawn"
        serial = row.certificate_serial
    result = done["result"]
    assert result["ca"] == "appr-withdraw-1" and result["status"] == "withdrawn"
    assert result["revoked_serial"] == serial

    # the same operation with no approval configured answers the same shape at once (200)
    _policy(context, 1)
    _new_ca(context, "appr-withdraw-2")
    direct = client.post("/v1/cas/appr-withdraw-2/withdraw", json={"reason": "caCompromise"}, headers=officers[0])
    assert direct.status_code == 200, direct.text
    assert set(direct.json()) == set(result) and direct.json()["status"] == "withdrawn"

    # the events, in order: the request, the approval, the operation's own, the execution
    types = [(e.type, e.subject) for e in _events(context, before)]
    flow = [t for t in types if t[1] in (approval["id"], "appr-withdraw-1")]
    assert [t[0] for t in flow] == ["approval.requested", "approval.approved", "ca.withdrawn", "approval.executed"]
    executed = next(e for e in _events(context, before) if e.type == "approval.executed")
    assert executed.payload["result_sm3"] == digest(result)


def test_seal_create_and_revoke_through_approval(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    _policy(context, 2)
    body = {"id": "appr-seal-1", "name": "审批测试章", "organisation_name": "Approval Test Bureau",
            "organisation_uscc": "11370000MB00000015", "ca": "cn-370000-sm2"}  # fmt: skip
    asked = client.post("/v1/seals", json=body, headers=officers[0])
    approval = _pending(asked, "seal.create", _name(officers[0], context))
    assert client.get("/v1/seals/appr-seal-1", headers=officers[0]).status_code == 404
    done = _approve(client, approval["id"], officers[2])
    assert done["approval"]["status"] == "executed"
    assert done["result"] == client.get("/v1/seals/appr-seal-1", headers=officers[0]).json()  # what a read says

    revoking = client.post("/v1/seals/appr-seal-1/revoke", json={"reason": "test"}, headers=officers[1])
    approval = _pending(revoking, "seal.revoke", _name(officers[1], context))
    assert client.get("/v1/seals/appr-seal-1/status").json()["status"] == "active"
    done = _approve(client, approval["id"], officers[0])
    assert done["result"]["status"] == "revoked"
    assert done["result"] == client.get("/v1/seals/appr-seal-1", headers=officers[0]).json()

    # suspension stays one officer's call whatever the policy
    body |= {"id": "appr-seal-2"}
    _policy(context, 1)
    direct = client.post("/v1/seals", json=body, headers=officers[0])
    assert direct.status_code == 201, direct.text
    assert set(direct.json()) == set(done["result"])
    _policy(context, 2)
    suspended = client.post("/v1/seals/appr-seal-2/suspend", json={}, headers=officers[0])
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"


def test_ca_create_and_cross_certify_through_approval(
    context: Context, client: TestClient, officers: list[dict[str, str]], tmp_path: Path
) -> None:
    _policy(context, 2)
    asked = client.post(
        "/v1/cas",
        json={"name": "appr-450000-p256", "parent": "cn-root-p256", "region": "450000", "algorithm": "p256"},
        headers=officers[0],
    )
    approval = _pending(asked, "ca.create", _name(officers[0], context))
    assert "appr-450000-p256" not in [c["name"] for c in client.get("/v1/cas").json()]
    done = _approve(client, approval["id"], officers[1])
    result = done["result"]
    assert result["name"] == "appr-450000-p256" and result["status"] == "active"
    assert result["certificate_pem"] == client.get("/v1/cas/appr-450000-p256/certificate?format=pem").text
    listed = client.get("/v1/trust-list").json()
    assert any(ca["name"] == "appr-450000-p256" for region in listed["regions"] for ca in region["cas"])

    _policy(context, 1)
    direct = client.post(
        "/v1/cas",
        json={"name": "appr-460000-p256", "parent": "cn-root-p256", "region": "460000", "algorithm": "p256"},
        headers=officers[0],
    )
    assert direct.status_code == 201, direct.text
    assert set(direct.json()) == set(result)

    # another hierarchy's root, made by OpenSSL, cross-certified by our P-256 root
    key = tmp_path / "foreign.key"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    foreign = openssl("req", "-x509", "-new", "-key", str(key), "-sha256", "-days", "365", "-subj",
                      "/C=HK/O=Foreign Gov/CN=Foreign Root", "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign").stdout.decode()  # fmt: skip
    _policy(context, 2)
    asked = client.post("/v1/cas/cn-root-p256/cross-certify", json={"certificate_pem": foreign}, headers=officers[2])
    approval = _pending(asked, "ca.cross_certify", _name(officers[2], context))
    done = _approve(client, approval["id"], officers[3])
    assert done["approval"]["status"] == "executed"
    assert set(done["result"]) == {"serial", "certificate_pem", "chain_pem"}
    crossed = client.get("/v1/trust-list").json()["cross_certificates"]
    assert done["result"]["certificate_pem"] in [c["certificate"] for c in crossed]


def test_officer_token_needs_approval_and_its_secret_reaches_the_requester_only(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    _policy(context, 2)
    admin = _headers(context, "admin", "appr-admin")
    asked = client.post("/v1/tokens", json={"role": "officer", "name": "appr-new-officer"}, headers=admin)
    approval = _pending(asked, "token.create.officer", "appr-admin")
    token = asked.json()["token"]
    assert client.get("/v1/approvals", headers={"Authorization": f"Bearer {token}"}).status_code == 401  # not yet
    _problem(client.post(f"/v1/approvals/{approval['id']}/approve", headers=admin), 403, "approval_role")
    done = _approve(client, approval["id"], officers[0])
    result = done["result"]
    assert {k: result[k] for k in ("name", "role", "seal_ids", "status")} == {
        "name": "appr-new-officer",
        "role": "officer",
        "seal_ids": [],
        "status": "active",
    }
    assert client.get("/v1/approvals", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    with context.db.session() as session:  # the secret is in no approval row and no event
        stored = [repr((a.params, a.result)) for a in session.scalars(select(Approval))]
        stored += [repr(e.payload) for e in session.scalars(select(Event))]
    assert not any(token in text or token[3:] in text for text in stored)

    # an issuer token is no approved operation; with no approval configured an officer token is direct
    issuer = client.post("/v1/tokens", json={"role": "issuer", "name": "appr-issuer"}, headers=admin)
    assert issuer.status_code == 201 and issuer.json()["token"].startswith("ts_")
    _policy(context, 1)
    taken = client.post("/v1/tokens", json={"role": "officer", "name": "appr-new-officer"}, headers=admin)
    _problem(taken, 409, "token_name_taken")
    direct = client.post("/v1/tokens", json={"role": "officer", "name": "appr-direct-officer"}, headers=admin)
    assert direct.status_code == 201
    assert set(direct.json()) - {"token"} == set(done["result"])  # the same result, approved or direct
    _problem(
        client.post("/v1/tokens", json={"role": "officer", "name": "x"}, headers=officers[0]), 403, "forbidden_role"
    )


# -- refusals: a code each, nothing changed ------------------------------------------------------


def test_refusals_have_codes_and_change_nothing(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    _policy(context, 3)
    _new_ca(context, "appr-refuse-1")
    asked = client.post("/v1/cas/appr-refuse-1/withdraw", json={"reason": "superseded"}, headers=officers[0])
    assert asked.status_code == 202
    approval_id = asked.json()["approval"]["id"]
    assert _approve(client, approval_id, officers[1])["approval"]["approvals"][1] == _name(officers[1], context)

    def refused(headers: dict[str, str], status: int, code: str, verb: str = "approve", target: str = "") -> None:
        before = _state(context)
        _problem(client.post(f"/v1/approvals/{target or approval_id}/{verb}", headers=headers), status, code)
        assert _state(context) == before

    refused(officers[0], 403, "approval_own_request")
    refused(officers[1], 409, "approval_already_given")
    refused(_headers(context, "admin"), 403, "approval_role")
    refused(_headers(context, "auditor"), 403, "forbidden_role")
    refused(_headers(context, "auditor"), 403, "forbidden_role", "reject")
    refused(officers[2], 404, "approval_not_found", target="no-such-approval")
    refused(officers[2], 404, "approval_not_found", "reject", target="no-such-approval")
    # the requester's token rotated (a new token, the same name: names are unique among live tokens) is
    # still the requester
    officers[0] = {"Authorization": f"Bearer {rotate_token(context.db, _name(officers[0], context))[0]}"}
    refused(officers[0], 403, "approval_own_request")
    assert context.ca.ca_status("appr-refuse-1") == "active"

    # rejected: final, nobody approves it afterwards
    rejected = client.post(f"/v1/approvals/{approval_id}/reject", json={"reason": "no"}, headers=officers[2])
    assert rejected.status_code == 200 and rejected.json()["approval"]["status"] == "rejected"
    refused(officers[3], 409, "approval_not_pending")
    refused(officers[3], 409, "approval_not_pending", "reject")
    assert context.ca.ca_status("appr-refuse-1") == "active"

    # a request that could never run opens no approval
    for path, body, status, code in (
        ("/v1/cas/no-such-ca/withdraw", {"reason": "superseded"}, 404, "unknown_ca"),
        ("/v1/cas/appr-refuse-1/withdraw", {"reason": "whatever"}, 400, "invalid_revocation_reason"),
        ("/v1/seals/no-such-seal/revoke", {}, 404, "seal_not_found"),
        ("/v1/cas", {"name": "x", "parent": "cn-root-p256", "region": "450000", "algorithm": "p256"}, 422,
         "invalid_ca_name"),
        ("/v1/cas", {"name": "appr-bad", "parent": "cn-root-sm2", "region": "450000", "algorithm": "p256"}, 422,
         "ca_algorithm_mismatch"),
        ("/v1/cas/cn-root-p256/cross-certify", {"certificate_pem": "junk"}, 422, "certificate_malformed"),
    ):  # fmt: skip
        before = _state(context)
        _problem(client.post(path, json=body, headers=officers[0]), status, code)
        assert _state(context) == before


def test_executed_approval_cannot_be_approved_again(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    _policy(context, 2)
    admin = _headers(context, "admin")
    asked = client.post("/v1/tokens", json={"role": "admin", "name": "appr-admin-2"}, headers=admin)
    approval_id = asked.json()["approval"]["id"]
    _approve(client, approval_id, officers[0])
    before = _state(context)
    body = _problem(
        client.post(f"/v1/approvals/{approval_id}/approve", headers=officers[1]), 409, "approval_not_pending"
    )
    assert body["approval_status"] == "executed"
    assert _state(context) == before


def test_expired_approval_is_refused_and_marked_expired(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    clock = _policy(context, 2, hours=1)
    _new_ca(context, "appr-expire-1")
    asked = client.post("/v1/cas/appr-expire-1/withdraw", json={}, headers=officers[0])
    approval_id = asked.json()["approval"]["id"]
    clock.now += timedelta(minutes=59)
    assert client.get(f"/v1/approvals/{approval_id}", headers=officers[1]).json()["approval"]["status"] == "pending"
    clock.now += timedelta(minutes=1)
    assert client.get(f"/v1/approvals/{approval_id}", headers=officers[1]).json()["approval"]["status"] == "expired"
    before = _last_event_id(context)
    _problem(client.post(f"/v1/approvals/{approval_id}/approve", headers=officers[1]), 409, "approval_expired")
    assert context.ca.ca_status("appr-expire-1") == "active"  # the operation did not run
    assert [e.type for e in _events(context, before)] == ["approval.expired"]
    with context.db.session() as session:
        row = session.get(Approval, approval_id)
        assert row is not None and row.status == "expired" and row.approvals == [_name(officers[0], context)]
    _problem(client.post(f"/v1/approvals/{approval_id}/approve", headers=officers[2]), 409, "approval_not_pending")
    expired = client.get("/v1/approvals?status=expired", headers=officers[1]).json()["approvals"]
    assert approval_id in [a["id"] for a in expired]


def test_failed_operation_fails_the_approval_with_its_code(
    context: Context, client: TestClient, officers: list[dict[str, str]]
) -> None:
    """The CA is withdrawn (break-glass, say) between request and approval: the approved run is refused by
    the operation itself, nothing half-done, and the approval is failed for good with that code."""
    _policy(context, 2)
    _new_ca(context, "appr-fail-1")
    asked = client.post("/v1/cas/appr-fail-1/withdraw", json={}, headers=officers[0])
    approval_id = asked.json()["approval"]["id"]
    execute(context)("ca.withdraw", {"ca": "appr-fail-1", "reason": None, "invalidity_date": None}, "test")
    before = _last_event_id(context)
    body = _problem(
        client.post(f"/v1/approvals/{approval_id}/approve", headers=officers[1]), 409, "ca_already_withdrawn"
    )
    assert body["approval"]["status"] == "failed" and body["approval"]["error"]["code"] == "ca_already_withdrawn"
    assert [e.type for e in _events(context, before)] == ["approval.approved", "approval.failed"]
    _problem(client.post(f"/v1/approvals/{approval_id}/approve", headers=officers[2]), 409, "approval_not_pending")


# -- concurrency --------------------------------------------------------------------------------


def test_officers_approving_at_once_execute_once(context: Context) -> None:
    from api.auth import Principal, new_token

    _policy(context, 2)
    requester = Principal(name="race-admin", role="admin")
    _, token_hash = new_token()
    params = {"role": "officer", "name": "race-officer", "seal_ids": [], "token_sha256": token_hash}
    approval = context.approvals.request("token.create.officer", params, requester, "race-officer")
    runs: list[int] = []
    run = execute(context)

    def counted(operation: str, p: dict[str, Any], actor: str) -> dict[str, Any]:
        runs.append(1)
        return run(operation, p, actor)

    barrier = threading.Barrier(6)
    outcomes: list[Any] = []

    def approve(n: int) -> None:
        barrier.wait()
        try:
            outcomes.append(context.approvals.approve(approval["id"], Principal(f"race-{n}", "officer"), counted))
        except Problem as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    executed = [o for o in outcomes if isinstance(o, tuple)]
    assert len(outcomes) == 6 and len(executed) == 1 and len(runs) == 1
    assert executed[0][0]["status"] == "executed" and executed[0][1]["name"] == "race-officer"
    assert sorted(o for o in outcomes if isinstance(o, str)) == ["approval_not_pending"] * 5
    with context.db.session() as session:
        assert session.scalar(select(func.count()).where(ApiToken.token_hash == token_hash)) == 1
        kinds = session.scalars(select(Event.type).where(Event.subject == approval["id"]).order_by(Event.id)).all()
    assert kinds == ["approval.requested", "approval.approved", "approval.executed"]


def test_the_compare_and_swap_refuses_a_stale_write(context: Context) -> None:
    """Beside the lock, every change is conditional on the version it read: a decision made on a stale
    read changes nothing (approval_conflict)."""
    from api.auth import Principal

    _policy(context, 3)
    approval = context.approvals.request(
        "ca.withdraw",
        {"ca": "cn-root-p256", "reason": None, "invalidity_date": None},
        Principal("cas-a", "officer"),
        None,
    )
    with context.db.write_connection() as connection:
        stale = context.approvals._locked(connection, approval["id"])
    context.approvals.approve(approval["id"], Principal("cas-b", "officer"), _never)
    with pytest.raises(Problem) as refused, context.db.write_connection() as connection:
        context.approvals._swap(connection, stale, approvals=["cas-a", "cas-c"])
    assert refused.value.code == "approval_conflict"
    assert context.approvals.get(approval["id"])["approvals"] == ["cas-a", "cas-b"]


def _never(operation: str, params: dict[str, Any], actor: str) -> dict[str, Any]:
    raise AssertionError("not complete yet: nothing runs")
