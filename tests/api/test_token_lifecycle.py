"""Token lifecycle (issue 12): unique names, checked seals, expiry, last use, list / revoke / rotate over
the API, each refusal a 4xx with its code and nothing changed.

Before: tokens could not be listed or disabled over the API, two could share a name (and so share a
licence owner or an approval identity), `--seal nosuchseal` was accepted, and a token lived forever.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

import api.auth
from api.app import create_app
from api.approvals import Approvals
from api.auth import TokenError, create_token, get_token, list_tokens
from api.context import Context
from api.problems import PROBLEM_JSON
from policies.approvals import parse_policy
from seal.demo import create_demo_seals
from store.models import ApiToken, Approval, Event
from tests.fixtures import table_snapshot


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    """No background integrator: nothing writes while snapshots are compared."""
    create_demo_seals(context.seals, actor="test")
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    app = create_app(Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def admin(context: Context) -> dict[str, str]:
    return _auth(create_token(context.db, "admin", "life-admin"))


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(response: Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code, response.json()


def _events(context: Context, subject: str) -> list[tuple[str, dict[str, Any]]]:
    with context.db.session() as session:
        rows = session.scalars(select(Event).where(Event.subject == subject).order_by(Event.id))
        return [(e.type, dict(e.payload)) for e in rows]


BAD_CREATES = [
    ({"role": "issuer", "name": "life-seal", "seal_ids": ["nosuchseal"]}, 422, "seal_not_found"),
    ({"role": "issuer", "name": "life-seal", "seal_ids": ["demo-370000-sm2", "nosuchseal"]}, 422, "seal_not_found"),
    ({"role": "verifier", "name": "life-seal", "seal_ids": ["demo-370000-sm2"]}, 400, "seals_only_for_issuers"),
    ({"role": "issuer", "name": "life-seal", "seal_ids": ["*", "demo-370000-sm2"]}, 400, "invalid_seals"),
    ({"role": "verifier", "name": "12345"}, 400, "invalid_token_name"),  # would read as an id
    ({"role": "verifier", "name": "me"}, 400, "invalid_token_name"),  # /v1/tokens/me
    ({"role": "verifier", "name": "a b"}, 400, "invalid_token_name"),
    ({"role": "verifier", "name": "officer:x"}, 400, "invalid_token_name"),  # actors are role:name
    ({"role": "verifier", "name": "life-admin"}, 409, "token_name_taken"),
    ({"role": "root", "name": "life-x"}, 400, "invalid_request"),
    ({"role": "verifier", "name": "life-x", "expires_days": 0}, 400, "invalid_request"),
    ({"role": "verifier", "name": "life-x", "expires_days": 3651}, 400, "invalid_request"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_CREATES)
def test_bad_creations_change_nothing(
    client: TestClient, context: Context, admin: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    before = table_snapshot(context.db)
    _problem(client.post("/v1/tokens", json=body, headers=admin), status, code)
    assert table_snapshot(context.db) == before


def test_a_taken_name_is_refused_before_an_approval_is_opened(
    client: TestClient, context: Context, admin: dict[str, str]
) -> None:
    saved = context.approvals
    context.approvals = Approvals(context.db, parse_policy("operations:\n  token.create.officer: 2\n", "test"))
    try:
        before = table_snapshot(context.db)
        taken = client.post("/v1/tokens", json={"role": "officer", "name": "life-admin"}, headers=admin)
        _problem(taken, 409, "token_name_taken")
        unknown = client.post("/v1/tokens", json={"role": "issuer", "name": "x1", "seal_ids": ["nope"]}, headers=admin)
        _problem(unknown, 422, "seal_not_found")
        assert table_snapshot(context.db) == before
        with context.db.session() as session:
            assert session.scalars(select(Approval)).first() is None
    finally:
        context.approvals = saved


def test_create_list_and_read_never_show_a_secret(client: TestClient, context: Context, admin: dict[str, str]) -> None:
    made = client.post(
        "/v1/tokens", json={"role": "issuer", "name": "life-list", "seal_ids": ["demo-370000-sm2"]}, headers=admin
    )
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["id"]
    created = datetime.fromisoformat(made.json()["created_at"])
    expires = datetime.fromisoformat(made.json()["expires_at"])
    assert expires - created == timedelta(days=90)  # the issuer default
    listed = client.get("/v1/tokens", headers=admin)
    assert listed.status_code == 200
    row = next(r for r in listed.json() if r["id"] == token_id)
    assert {k: row[k] for k in ("name", "role", "seal_ids", "status", "last_used_at", "revoked_at")} == {
        "name": "life-list",
        "role": "issuer",
        "seal_ids": ["demo-370000-sm2"],
        "status": "active",
        "last_used_at": None,
        "revoked_at": None,
    }
    digest = hashlib.sha256(secret.encode()).hexdigest()
    for text in (listed.text, client.get(f"/v1/tokens/{token_id}", headers=admin).text):
        assert secret not in text and secret[3:] not in text and digest not in text
    assert client.get("/v1/tokens/life-list", headers=admin).json()["id"] == token_id
    assert all(r["status"] == "active" for r in client.get("/v1/tokens?status=active", headers=admin).json())
    _problem(client.get("/v1/tokens?status=lost", headers=admin), 400, "invalid_request")
    _problem(client.get("/v1/tokens/999999", headers=admin), 404, "token_not_found")
    created_events = [p for t, p in _events(context, "life-list") if t == "token.created"]
    assert created_events[-1]["token_id"] == token_id and created_events[-1]["expires_at"] == row["expires_at"]
    people = create_token(context.db, "auditor", "life-auditor")
    info = client.get("/v1/tokens/me", headers=_auth(people)).json()
    assert datetime.fromisoformat(info["expires_at"]) - datetime.fromisoformat(info["created_at"]) == timedelta(days=30)


def test_revoke_is_at_once_and_final(client: TestClient, context: Context, admin: dict[str, str]) -> None:
    token = create_token(context.db, "verifier", "life-revoke")
    assert client.get("/v1/tokens/me", headers=_auth(token)).status_code == 200  # now in the auth cache
    token_id = get_token(context.db, "life-revoke").id
    done = client.post(f"/v1/tokens/{token_id}/revoke", headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "revoked" and done.json()["revoked_by"] == "admin:life-admin"
    _problem(client.get("/v1/tokens/me", headers=_auth(token)), 401, "token_revoked")  # the cache forgot it
    before = table_snapshot(context.db)
    _problem(client.post(f"/v1/tokens/{token_id}/revoke", headers=admin), 409, "token_already_revoked")
    _problem(client.post(f"/v1/tokens/{token_id}/rotate", headers=admin), 409, "token_already_revoked")
    _problem(client.post("/v1/tokens/life-revoke/revoke", headers=admin), 404, "token_not_found")  # no live one
    assert table_snapshot(context.db) == before
    [(_, payload)] = [e for e in _events(context, "life-revoke") if e[0] == "token.revoked"]
    assert payload == {"token_id": token_id, "name": "life-revoke", "role": "verifier"}
    # the name is free again
    assert client.post("/v1/tokens", json={"role": "verifier", "name": "life-revoke"}, headers=admin).status_code == 201
    # a holder may revoke its own token
    own = create_token(context.db, "issuer", "life-self-revoke", ["demo-530000-sm2"])
    assert client.post("/v1/tokens/me/revoke", headers=_auth(own)).json()["status"] == "revoked"
    _problem(client.get("/v1/tokens/me", headers=_auth(own)), 401, "token_revoked")


def test_rotation_keeps_the_identity_and_kills_the_old_secret(
    client: TestClient, context: Context, admin: dict[str, str]
) -> None:
    old = create_token(context.db, "issuer", "life-rotate", ["demo-370000-sm2"], days=5)
    old_id = get_token(context.db, "life-rotate").id
    assert client.get("/v1/tokens/me", headers=_auth(old)).status_code == 200
    rotated = client.post("/v1/tokens/life-rotate/rotate", headers=admin)
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["rotated_from"] == old_id and body["id"] != old_id
    assert (body["name"], body["role"], body["seal_ids"]) == ("life-rotate", "issuer", ["demo-370000-sm2"])
    assert datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(body["created_at"]) == timedelta(days=90)
    _problem(client.get("/v1/tokens/me", headers=_auth(old)), 401, "token_revoked")
    assert client.get("/v1/tokens/me", headers=_auth(body["token"])).json()["id"] == body["id"]
    events = [e for e in _events(context, "life-rotate") if e[1].get("token_id") in (old_id, body["id"])]
    assert [(t, p["token_id"]) for t, p in events] == [
        ("token.created", old_id),
        ("token.revoked", old_id),
        ("token.created", body["id"]),
    ]
    assert events[1][1]["reason"] == "rotated" and events[1][1]["replaced_by"] == body["id"]
    assert events[2][1]["rotated_from"] == old_id
    assert body["token"] not in repr(events)
    # the holder rotates its own token, any role, with its own choice of lifetime
    officer = create_token(context.db, "officer", "life-officer")
    mine = client.post("/v1/tokens/me/rotate", json={"expires_days": 7}, headers=_auth(officer))
    assert mine.status_code == 200 and mine.json()["name"] == "life-officer"
    assert datetime.fromisoformat(mine.json()["expires_at"]) - datetime.fromisoformat(mine.json()["created_at"]) == (
        timedelta(days=7)
    )


def test_who_may_rotate_what(client: TestClient, context: Context, admin: dict[str, str]) -> None:
    """An admin never obtains an officer's or another admin's secret without approval; nobody else
    touches another's token, and learns nothing about it (403 before any lookup)."""
    create_token(context.db, "officer", "life-other-officer")
    create_token(context.db, "admin", "life-other-admin")
    verifier = create_token(context.db, "verifier", "life-verifier")
    before = table_snapshot(context.db)
    for name in ("life-other-officer", "life-other-admin"):
        _problem(client.post(f"/v1/tokens/{name}/rotate", headers=admin), 403, "rotation_needs_holder")
    for ref in ("life-other-officer", "life-admin", "999999"):
        _problem(client.post(f"/v1/tokens/{ref}/rotate", headers=_auth(verifier)), 403, "forbidden_role")
        _problem(client.post(f"/v1/tokens/{ref}/revoke", headers=_auth(verifier)), 403, "forbidden_role")
    _problem(client.post("/v1/tokens/nobody/rotate", headers=admin), 404, "token_not_found")
    _problem(
        client.post("/v1/tokens/life-verifier/rotate", json={"expires_days": 0}, headers=admin), 400, "invalid_request"
    )
    assert table_snapshot(context.db) == before


def test_an_expired_token_is_refused_even_from_the_cache(client: TestClient, context: Context) -> None:
    token = create_token(context.db, "verifier", "life-expiring")
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    with context.db.session() as session:
        session.execute(update(ApiToken).where(ApiToken.name == "life-expiring").values(expires_at=soon))
    assert client.get("/v1/tokens/me", headers=_auth(token)).status_code == 200  # cached for ≤ 0.5 s, not 5
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    _problem(client.get("/v1/tokens/me", headers=_auth(token)), 401, "token_expired")
    assert get_token(context.db, "life-expiring").status == "expired"


def test_an_admin_rotates_an_expired_system_token(client: TestClient, context: Context, admin: dict[str, str]) -> None:
    old = create_token(context.db, "issuer", "life-lapsed", ["demo-530000-sm2"])
    with context.db.session() as session:
        past = datetime.now(UTC) - timedelta(days=1)
        session.execute(update(ApiToken).where(ApiToken.name == "life-lapsed").values(expires_at=past))
    _problem(client.get("/v1/tokens/me", headers=_auth(old)), 401, "token_expired")
    assert [t.status for t in list_tokens(context.db, "expired") if t.name == "life-lapsed"] == ["expired"]
    renewed = client.post("/v1/tokens/life-lapsed/rotate", headers=admin)
    assert renewed.status_code == 200 and renewed.json()["status"] == "active", renewed.text
    assert client.get("/v1/tokens/me", headers=_auth(renewed.json()["token"])).json()["name"] == "life-lapsed"
    _problem(client.get("/v1/tokens/me", headers=_auth(old)), 401, "token_revoked")


def test_last_use_is_written_at_most_once_a_minute(client: TestClient, context: Context) -> None:
    token = create_token(context.db, "verifier", "life-used")
    assert get_token(context.db, "life-used").last_used_at is None
    client.get("/v1/tokens/me", headers=_auth(token))
    first = get_token(context.db, "life-used").last_used_at
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    api.auth._cache.clear()  # a cache miss reads the row again: within the minute, no write
    client.get("/v1/tokens/me", headers=_auth(token))
    assert get_token(context.db, "life-used").last_used_at == first
    with context.db.session() as session:
        session.execute(
            update(ApiToken).where(ApiToken.name == "life-used").values(last_used_at=first - timedelta(minutes=2))
        )
    api.auth._cache.clear()
    client.get("/v1/tokens/me", headers=_auth(token))
    assert get_token(context.db, "life-used").last_used_at > first  # type: ignore[operator]


def test_concurrent_creations_of_one_name_give_one_token(context: Context) -> None:
    """Both may pass the name check; the database's unique index on live names decides (PostgreSQL
    blocks the second insert until the first commits, then refuses it): one token, one 409, no 500."""
    barrier = threading.Barrier(4)

    def create(_: int) -> str:
        barrier.wait()
        try:
            create_token(context.db, "verifier", "life-race")
        except TokenError as exc:
            return exc.code
        return "created"

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(create, range(4)))
    assert outcomes == ["created", "token_name_taken", "token_name_taken", "token_name_taken"]
    assert len([t for t in list_tokens(context.db) if t.name == "life-race"]) == 1
    assert len([e for e in _events(context, "life-race") if e[0] == "token.created"]) == 1
