"""`GET /v1/ledger/checkpoint` is a public read: while the background integrator runs it serves the
integrator's latest checkpoint and writes nothing — no sequencer pass, no signature — however many
events wait; only a service without an integrator makes one on demand. (Its own module: no other app
with an integrator may share the database while a test counts what a read changed.)"""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient

from api.app import create_app
from api.context import Context
from tests.api.test_ledger_api import _activity, _state


def _context_with(context: Context, integrate_seconds: float) -> Context:
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=integrate_seconds)
    return Context(settings=settings, db=context.db, custody=context.custody, ca=context.ca)


def test_the_public_checkpoint_read_writes_nothing_while_the_integrator_runs(context: Context) -> None:
    """With an integrator running (here one whose next round is an hour away), the public GET serves the
    checkpoint it published at start: no sequencer pass, no signature, however many events wait."""
    quiet = _context_with(context, 3600)
    with TestClient(create_app(quiet), raise_server_exceptions=False) as client:
        assert quiet.integrator is not None and quiet.integrator.alive
        published = quiet.ledger.published()
        assert published is not None  # published before the first request
        _activity(context, 2)
        before = _state(context)
        assert before[1] == 2  # waiting for the next round
        for _ in range(3):
            response = client.get("/v1/ledger/checkpoint")
            assert response.status_code == 200 and response.json() == published.to_json()
        assert _state(context) == before and quiet.ledger.published() is published


def test_without_an_integrator_the_checkpoint_is_made_on_demand(context: Context) -> None:
    """TRUSTSEAL_LEDGER_INTEGRATE_SECONDS=0: nobody else would cover the waiting events, so the read
    runs a pass and signs, as before."""
    bare = _context_with(context, 0)
    with TestClient(create_app(bare), raise_server_exceptions=False) as client:
        assert bare.integrator is None
        _activity(context, 2)
        body = client.get("/v1/ledger/checkpoint").json()
        events, waiting, _ = _state(context)
        assert waiting == 0 and body["size"] == events
