"""`GET /v1/events` and `trustseal events`: every filter, cursor pagination while events are appended
(no duplicates, no gaps), the role matrix, bad input as 400 problems that change nothing, and the CLI
locally (on the service's own database) and against a running service."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.app import create_app
from api.auth import create_token
from api.cli import app as cli_app
from api.context import Context
from api.problems import PROBLEM_JSON
from ledger.events import INSERT_EVENT, event_row, record_event
from ledger.search import decode_cursor, encode_cursor
from store.models import Event, LedgerNode

EVENT_KEYS = {"id", "ledger_index", "type", "time", "actor", "subject", "payload"}
T0 = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    # no background integrator here: these tests count waiting events and tree nodes to show a search
    # writes nothing, and decide themselves when a sequencer pass runs (tests/api/test_ledger_integrator.py
    # tests the integrator)
    context.settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0)
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(context: Context) -> dict[str, str]:
    roles = ("issuer", "verifier", "officer", "auditor", "admin")
    return {role: create_token(context.db, role, f"events-{role}") for role in roles}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _add(
    context: Context, type_: str, *, actor: str = "officer:t", subject: str | None = None, at: datetime | None = None
) -> int:
    with context.db.session() as session:
        if at is None:
            return record_event(session, type_, actor=actor, subject=subject, payload={"k": "v"})
        row = {**event_row(type_, actor=actor, subject=subject, payload={"k": "v"}), "created_at": at}
        return int(session.execute(INSERT_EVENT, row).inserted_primary_key[0])  # type: ignore[attr-defined]


def _get(client: TestClient, tokens: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/v1/events", params=params, headers=_auth(tokens["auditor"]))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"events", "next_cursor"}
    return body


def _ids(client: TestClient, tokens: dict[str, str], **params: Any) -> list[int]:
    return [event["id"] for event in _get(client, tokens, limit=1000, **params)["events"]]


def _state(context: Context) -> tuple[int, int, int]:
    with context.db.session() as session:
        return (
            session.execute(select(func.count()).select_from(Event)).scalar_one(),
            session.execute(select(func.count()).select_from(Event).where(Event.ledger_index.is_(None))).scalar_one(),
            session.execute(select(func.count()).select_from(LedgerNode)).scalar_one(),
        )


def test_role_matrix(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/v1/events")
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    assert response.headers["content-type"] == PROBLEM_JSON
    assert client.get("/v1/events", headers=_auth("ts_nope")).json()["code"] == "invalid_token"
    for role in ("issuer", "verifier"):
        response = client.get("/v1/events", headers=_auth(tokens[role]))
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role", role
        # the role is checked before the parameters: a bad query does not tell a verifier anything
        assert client.get("/v1/events?limit=0", headers=_auth(tokens[role])).status_code == 403
    for role in ("officer", "auditor", "admin"):
        response = client.get("/v1/events", headers=_auth(tokens[role]))
        assert response.status_code == 200, (role, response.text)


def test_event_shape_newest_first_and_ledger_index_once_sequenced(
    client: TestClient, context: Context, tokens: dict[str, str]
) -> None:
    first = _add(context, "shape.one", subject="s-shape")
    second = _add(context, "shape.two", subject="s-shape")
    before = _state(context)
    events = _get(client, tokens, subject="s-shape")["events"]
    assert _state(context) == before  # a read runs no sequencer pass and writes nothing
    assert [e["id"] for e in events] == [second, first]
    assert all(set(e) == EVENT_KEYS for e in events)
    assert events[0]["ledger_index"] is None and events[0]["type"] == "shape.two"
    assert events[0]["actor"] == "officer:t" and events[0]["payload"] == {"k": "v"}
    assert datetime.fromisoformat(events[0]["time"]).tzinfo is not None and events[0]["time"].endswith("Z")
    context.ledger.sequencer.run_pass()
    events = _get(client, tokens, subject="s-shape")["events"]
    assert isinstance(events[0]["ledger_index"], int) and isinstance(events[1]["ledger_index"], int)
    entries = client.get(
        "/v1/ledger/entries", params={"start": events[1]["ledger_index"], "end": 1 + events[1]["ledger_index"]}
    )
    assert entries.json()["entries"][0]["entry"]["type"] == "shape.one"
    # the demo hierarchy's events are there too, with their types
    assert _get(client, tokens, type="ca.created")["events"]


def test_type_exact_and_prefix(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    ids = {t: _add(context, t) for t in ("flt.a", "flt.a.b", "flt.ab", "flt_x.a", "fltxx.a", "flt.c")}
    assert _ids(client, tokens, type="flt.a") == [ids["flt.a"]]
    assert _ids(client, tokens, type="flt.a.") == [ids["flt.a.b"]]
    assert set(_ids(client, tokens, type="flt.")) == {ids[t] for t in ("flt.a", "flt.a.b", "flt.ab", "flt.c")}
    # `_` is a literal in a prefix, not SQL LIKE's one-character wildcard
    assert _ids(client, tokens, type="flt_x.") == [ids["flt_x.a"]]
    assert _ids(client, tokens, type="flt") == []  # no dot: an exact type


def test_actor_subject_and_combined(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    a = _add(context, "who.x", actor="officer:alice", subject="serial-1")
    b = _add(context, "who.y", actor="officer:bob", subject="serial-1")
    c = _add(context, "who.x", actor="officer:alice", subject="serial-2")
    assert _ids(client, tokens, actor="officer:alice") == [c, a]
    assert _ids(client, tokens, subject="serial-1") == [b, a]
    assert _ids(client, tokens, actor="officer:alice", subject="serial-1") == [a]
    assert _ids(client, tokens, type="who.", subject="serial-1", actor="officer:bob") == [b]
    assert _ids(client, tokens, actor="officer:alic") == []


def test_since_until_with_zones(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    ids = [_add(context, "tim.x", subject="tim", at=T0 + timedelta(hours=h)) for h in range(5)]
    assert _ids(client, tokens, subject="tim", since="2001-02-03T06:05:06Z") == ids[:1:-1]  # since is inclusive
    assert _ids(client, tokens, subject="tim", until="2001-02-03T06:05:06Z") == [ids[1], ids[0]]  # until is not
    # 05:05:06Z ≤ time < 07:05:06Z, written in China Standard Time
    assert _ids(
        client, tokens, subject="tim", since="2001-02-03T13:05:06+08:00", until="2001-02-03T15:05:06+08:00"
    ) == [ids[2], ids[1]]
    assert _ids(client, tokens, subject="tim", since="2001-02-03T05:05:06.000001Z") == ids[:1:-1]
    assert _ids(client, tokens, subject="tim", since="2001-02-03T04:05:06Z", until="2001-02-03T04:05:06Z") == []


def test_pages_while_events_are_appended(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    original = [_add(context, "pag.x", subject=f"p-{n}") for n in range(23)]
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    appended: list[int] = []
    while True:
        params: dict[str, Any] = {"type": "pag.", "limit": 5}
        if cursor is not None:
            params["cursor"] = cursor
        body = _get(client, tokens, **params)
        seen += [e["id"] for e in body["events"]]
        pages += 1
        appended += [_add(context, "pag.x", subject="late") for _ in range(3)]  # between pages
        if pages == 2:
            context.ledger.sequencer.run_pass()  # sequencing between pages changes nothing either
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert seen == sorted(original, reverse=True)  # each once, none missing, newest first
    assert len(set(seen)) == len(seen)
    # a new walk starts at the top, with what was appended meanwhile
    assert _ids(client, tokens, type="pag.") == sorted(original + appended, reverse=True)
    # a last page that is exactly full says so on the next request, not with a dangling cursor
    assert _get(client, tokens, subject="late", limit=len(appended))["next_cursor"] is None


def test_cursor_and_limit_bounds(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    for _ in range(3):
        _add(context, "lim.x")
    total = _state(context)[0]
    assert len(_get(client, tokens)["events"]) == min(100, total)  # the default page
    assert len(_get(client, tokens, limit=1000)["events"]) == min(1000, total)
    page = _get(client, tokens, type="lim.x", limit=1)
    assert len(page["events"]) == 1 and decode_cursor(page["next_cursor"]) == page["events"][0]["id"]
    assert encode_cursor(page["events"][0]["id"]) == page["next_cursor"]


BAD = [
    ({"since": "yesterday"}, "time_invalid"),
    ({"since": "2001-02-03T04:05:06"}, "time_invalid"),  # no zone
    ({"until": "2001-02-30T00:00:00Z"}, "time_invalid"),
    ({"since": "0001-01-01T00:00:00+01:00"}, "time_invalid"),
    ({"since": "2001-02-04T00:00:00Z", "until": "2001-02-03T00:00:00Z"}, "time_range_invalid"),
    ({"cursor": "garbage!"}, "cursor_invalid"),
    ({"cursor": base64.urlsafe_b64encode(b"v1:abc").decode().rstrip("=")}, "cursor_invalid"),
    ({"cursor": base64.urlsafe_b64encode(b"v1:0").decode().rstrip("=")}, "cursor_invalid"),
    ({"cursor": base64.urlsafe_b64encode(b"v2:12").decode().rstrip("=")}, "cursor_invalid"),
    ({"cursor": ""}, "cursor_invalid"),
    ({"limit": "0"}, "limit_out_of_range"),
    ({"limit": "1001"}, "limit_out_of_range"),
    ({"limit": "-1"}, "limit_invalid"),
    ({"limit": "ten"}, "limit_invalid"),
    ({"type": "Certificate.Issued"}, "type_invalid"),
    ({"type": "certificate.%"}, "type_invalid"),
    ({"type": ""}, "type_invalid"),
    ({"actor": ""}, "actor_invalid"),
    ({"subject": "x" * 129}, "subject_invalid"),
    ({"typ": "certificate.issued"}, "parameter_unknown"),  # a misspelt filter must not widen the search
    ({"order": "oldest"}, "parameter_unknown"),
]


@pytest.mark.parametrize(("params", "code"), BAD, ids=[code + "-" + "-".join(p) for p, code in BAD])
def test_bad_input_is_a_400_problem_that_changes_nothing(
    client: TestClient, context: Context, tokens: dict[str, str], params: dict[str, str], code: str
) -> None:
    _add(context, "bad.pending")  # an unsequenced event: a bad read must not sequence it either
    before = _state(context)
    response = client.get("/v1/events", params=params, headers=_auth(tokens["officer"]))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == code and response.json()["status"] == 400
    assert _state(context) == before


def test_repeated_parameter_is_refused(client: TestClient, tokens: dict[str, str]) -> None:
    response = client.get("/v1/events?type=a.b&type=c.d", headers=_auth(tokens["officer"]))
    assert response.status_code == 400 and response.json()["code"] == "parameter_repeated"


runner = CliRunner()


def _cli(context: Context, tmp_home: str, *args: str) -> tuple[int, str]:
    env = {
        "TRUSTSEAL_HOME": tmp_home,
        "TRUSTSEAL_DATABASE_URL": context.db.url,
        "TRUSTSEAL_KEY_PASSPHRASE": "test-passphrase",
    }
    result = runner.invoke(cli_app, ["events", *args], env=env)
    return result.exit_code, result.output


def test_cli_local(context: Context, tmp_path: Any) -> None:
    ids = [_add(context, "cli.local", actor="cli", subject=f"c-{n}", at=T0 + timedelta(minutes=n)) for n in range(4)]
    home = str(tmp_path)
    before = _state(context)
    code, out = _cli(context, home, "--type", "cli.", "--json")
    assert code == 0, out
    page = json.loads(out)
    assert [e["id"] for e in page["events"]] == ids[::-1] and page["next_cursor"] is None
    code, out = _cli(context, home, "--type", "cli.local", "--limit", "3", "--json")
    page = json.loads(out)
    assert code == 0 and [e["id"] for e in page["events"]] == ids[:0:-1]
    code, out = _cli(context, home, "--type", "cli.local", "--cursor", page["next_cursor"], "--json")
    assert code == 0 and [e["id"] for e in json.loads(out)["events"]] == ids[:1]
    code, out = _cli(context, home, "--subject", "c-2", "--actor", "cli", "--since", "2001-02-03T04:06:00Z",
                     "--until", "2001-02-03T04:08:00+00:00")  # fmt: skip
    assert code == 0 and out.count("\n") == 1 and "cli.local" in out and f"id={ids[2]}" in out, out
    code, out = _cli(context, home, "--since", "last tuesday")
    assert code == 1 and "time_invalid" in out and "Traceback" not in out
    code, out = _cli(context, home, "--limit", "5000")
    assert code == 1 and "limit_out_of_range" in out
    assert _state(context) == before


def test_cli_remote(context: Context, live_url: str, tokens: dict[str, str], tmp_path: Any) -> None:
    ids = [_add(context, "cli.remote", subject="r") for _ in range(3)]
    remote = ["--url", live_url, "--token", tokens["auditor"]]
    code, out = _cli(context, str(tmp_path), "--type", "cli.remote", "--json", *remote)
    assert code == 0, out
    assert [e["id"] for e in json.loads(out)["events"]] == ids[::-1]
    code, out = _cli(context, str(tmp_path), "--type", "cli.remote", "--limit", "2", *remote)
    assert code == 0 and out.count("cli.remote") == 2 and "more: --cursor" in out
    code, out = _cli(context, str(tmp_path), "--type", "cli.remote", "--url", live_url, "--token", tokens["issuer"])
    assert code == 1 and "forbidden_role" in out
    code, out = _cli(context, str(tmp_path), "--type", "cli.remote", "--url", live_url)
    assert code == 1 and "unauthenticated" in out
    code, out = _cli(context, str(tmp_path), "--until", "soon", *remote)
    assert code == 1 and "time_invalid" in out
