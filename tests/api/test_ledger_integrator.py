"""The background integrator (ledger/integrator.py) with the real app running (TestClient lifespan):
events that no request waits for — a certificate issued and revoked through the CA service, a plain
event — are under a signed checkpoint within 1 s without anybody asking; the app's shutdown stops the
thread; a failing round is logged and retried.

Coverage is watched through `Ledger.published()`, the checkpoint the integrator last signed, and not
by polling `GET /v1/ledger/checkpoint`: that read runs a pass itself when events wait, so it would
cover them whether or not the integrator works. Once they are covered, the GET must answer the very
checkpoint the integrator signed (same signature: it needed no pass and signed nothing)."""

from __future__ import annotations

import logging
import random
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.context import Context
from ledger.checkpoint import Checkpoint, verify_checkpoint
from ledger.events import record_event
from ledger.integrator import Integrator
from store.models import Event
from tests.fixtures import ORG_SUBJECT, make_csr
from tests.ledger.rfc9162 import Reference, sm3

BOUND = 1.0  # DESIGN / issue 11: a signed checkpoint covers every committed entry within 1 s
POLL = 10.0  # generous: a slow machine fails the bound below, not by timing out here

ISSUER = "cn-370000-sm2"


@pytest.fixture
def client(context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


def _events(context: Context) -> int:
    with context.db.session() as session:
        return session.execute(select(func.count()).select_from(Event)).scalar_one()


def _covering(context: Context, size: int, since: float) -> tuple[Checkpoint, float]:
    """Poll the integrator's published checkpoint (never running a pass) until it covers `size`."""
    deadline = since + POLL
    while True:
        published = context.ledger.published()
        if published is not None and published.size >= size:
            return published, time.monotonic() - since
        assert time.monotonic() < deadline, f"no checkpoint covers {size} entries after {POLL} s: {published}"
        time.sleep(0.005)


def _settled(context: Context) -> None:
    """Whatever earlier tests committed is under a checkpoint before a round is timed."""
    _covering(context, _events(context), time.monotonic())


def _non_waiting_activity(context: Context, tmp_path: Path, n: int) -> None:
    """Events committed by calls that do not wait for their ledger index."""
    issued = context.ca.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", ISSUER, actor="t")
    context.ca.revoke(issued.serial, "superseded", actor="test")
    with context.db.session() as session:
        record_event(session, "test.integrator", actor="test", subject=f"round-{n}", payload={"n": n})


def test_a_signed_checkpoint_covers_events_nobody_waited_for_within_a_second(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    assert context.integrator is not None and context.integrator.alive
    _settled(context)
    latencies = []
    for n in range(5):
        time.sleep(random.uniform(0, context.integrator.every))  # commits at any phase of the period
        _non_waiting_activity(context, tmp_path, n)
        committed = time.monotonic()  # after the last commit of the round
        size = _events(context)  # every event ever committed is an entry: the size to cover
        published, latency = _covering(context, size, committed)
        latencies.append(latency)
        assert published.size == size  # nothing else writes: exactly the committed events

    print(
        f"\ncommit → covering checkpoint ({context.db.engine.dialect.name}, period "
        f"{context.integrator.every} s): " + ", ".join(f"{1000 * t:.0f}" for t in latencies) + " ms; median "
        f"{1000 * statistics.median(latencies):.0f} ms, max {1000 * max(latencies):.0f} ms"
    )
    assert max(latencies) <= BOUND, latencies

    # The checkpoint is a real one: signed by the ledger key, its root that of the events' leaves.
    assert context.ledger.published() == published
    served = client.get("/v1/ledger/checkpoint")
    assert served.status_code == 200, served.text
    assert served.json() == published.to_json()  # the integrator's own checkpoint, no pass by the GET
    verify_checkpoint(served.json(), context.ledger.signer().certificate_der)
    with context.db.session() as session:
        rows = session.execute(select(Event.leaf_input).order_by(Event.ledger_index))
        leaves = [bytes(leaf) for (leaf,) in rows if leaf is not None]
        waiting = session.execute(select(func.count()).where(Event.ledger_index.is_(None))).scalar_one()
    assert waiting == 0 and len(leaves) == published.size
    assert Reference(leaves, sm3).mth(0, published.size) == published.root_hash


def test_the_app_shutdown_stops_the_integrator(context: Context) -> None:
    with TestClient(create_app(context)):
        integrator = context.integrator
        assert integrator is not None and integrator.alive
    assert not integrator.alive
    assert context.integrator is None
    assert not [t for t in threading.enumerate() if t.name == "ledger-integrator"]


def test_a_failing_round_is_logged_and_retried(
    client: TestClient, context: Context, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    integrator = context.integrator
    assert integrator is not None
    _settled(context)
    real = context.ledger.sequencer.run_pass
    calls = []

    def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise ConnectionError("injected: the database went away")
        return real()

    monkeypatch.setattr(context.ledger.sequencer, "run_pass", flaky)
    with caplog.at_level(logging.WARNING, logger="trustseal.ledger"):
        with context.db.session() as session:
            record_event(session, "test.integrator", actor="test", subject="flaky", payload={})
        size = _events(context)
        _covering(context, size, time.monotonic())
    assert len(calls) == 3  # two failed rounds, the third integrated
    assert integrator.alive and integrator.failures == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("ledger integration failed (1 in a row)" in m for m in messages), messages
    assert any("recovered after 2 failed rounds" in m for m in messages), messages
    assert not any("(2 in a row)" in m for m in messages)  # a failing streak does not flood the log


def test_a_round_that_raises_never_escapes_the_thread() -> None:
    rounds: list[int] = []

    def always_fails() -> None:
        rounds.append(1)
        raise RuntimeError("injected")

    integrator = Integrator(always_fails, every=0.01).start()
    try:
        deadline = time.monotonic() + 10
        while len(rounds) < 5:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert integrator.alive and integrator.failures >= 5
    finally:
        integrator.stop()
    assert not integrator.alive
    with pytest.raises(ValueError):
        Integrator(always_fails, every=0)
