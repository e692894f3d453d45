"""Auditor tokens read the log and nothing else may they change (issue 11, "Officers and auditors").

The matrix is built from the app's own routes, so a route added later is in it at once: every method
that is not a read is either refused to an auditor (403 `forbidden_role`, every table unchanged) or is
one of the public operations listed below with the reason it is public. The log's reads
(`/v1/events`, `/v1/ledger/*`) answer an auditor; a new GET under them must be added to the reads."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Route

from api.app import create_app
from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from store.models import Base

# Public by design (DESIGN.md): anyone may call them without a token, so an auditor's token adds nothing.
PUBLIC_WRITES = {
    ("POST", "/v1/verify"): "public verification; `at=` needs a reading role; it stores nothing",
    ("POST", "/v1/ocsp"): "the public OCSP responder (RFC 6960 over POST)",
    ("POST", "/v1/tsa"): "the public RFC 3161 timestamp authority",
    ("POST", "/v1/witness/add-checkpoint"): "C2SP tlog-witness, signed by the log",
}
AUDITOR_READS = {
    "/v1/events": {"limit": "5"},
    "/v1/ledger/checkpoint": {},
    "/v1/ledger/key": {},
    "/v1/ledger/entries": {"start": "0", "end": "1"},
    "/v1/ledger/proofs/inclusion": {"index": "0", "size": "1"},
    "/v1/ledger/proofs/consistency": {"first": "1", "second": "1"},
}
LOG_PREFIXES = ("/v1/events", "/v1/ledger")


@pytest.fixture(scope="module")
def app(context: Context) -> FastAPI:
    """The app with no background integrator: nothing writes while a snapshot is compared."""
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    return create_app(Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auditor(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'auditor', 'matrix-auditor')}"}


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI ≥ 0.165 keeps included routers nested
        if inner is not None:
            yield from _walk(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif isinstance(route, Route) and route.methods:
            for method in route.methods:
                yield method, re.sub(r":\w+\}", "}", prefix + route.path)  # {encoded:path} as OpenAPI writes it


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves; cross-checked with its OpenAPI document, so that a change of
    FastAPI's internals cannot empty the matrix."""
    found = sorted(set(_walk(app.routes)))
    documented = {(method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item}
    assert documented <= set(found), documented - set(found)
    return found


def _snapshot(context: Context) -> dict[str, list[str]]:
    """Every row of every table: 'nothing changed' means exactly that."""
    with context.db.engine.connect() as connection:
        return {
            table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            for table in Base.metadata.sorted_tables
        }


def test_the_matrix_covers_every_route(app: FastAPI) -> None:
    routes = _routes(app)
    writes = [(m, p) for m, p in routes if m not in ("GET", "HEAD")]
    assert len(writes) >= 11, writes  # certificates, revoke, withdraw, seals (4), licence status, sign, jobs, …
    assert set(PUBLIC_WRITES) <= set(writes), "a listed public operation is gone: update PUBLIC_WRITES"
    log_reads = {p for m, p in routes if m == "GET" and p.startswith(LOG_PREFIXES)}
    assert log_reads == set(AUDITOR_READS), "a log read was added or removed: update AUDITOR_READS"


def test_an_auditor_reads_the_log(client: TestClient, auditor: dict[str, str]) -> None:
    client.get("/v1/ledger/checkpoint")  # (made on demand here: no integrator) so that entry 0 exists
    for path, params in AUDITOR_READS.items():
        response = client.get(path, params=params, headers=auditor)
        assert response.status_code == 200, (path, response.text)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path).replace("{", "").replace("}", "")


def test_an_auditor_changes_nothing(
    app: FastAPI, client: TestClient, context: Context, auditor: dict[str, str]
) -> None:
    writes = [(m, p) for m, p in _routes(app) if m not in ("GET", "HEAD") and (m, p) not in PUBLIC_WRITES]
    before = _snapshot(context)
    for method, path in writes:
        url = _concrete(path)
        response = client.request(method, url, headers=auditor, json={})
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["code"] == "forbidden_role", (method, path, response.json())
        anonymous = client.request(method, url, json={})
        assert anonymous.status_code == 401, (method, path, anonymous.text)  # not open to all either
    assert _snapshot(context) == before
    for method, path in PUBLIC_WRITES:
        assert (method, path) in _routes(app)
