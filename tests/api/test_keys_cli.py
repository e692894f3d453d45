"""`trustseal keys list / rotate` locally on a fresh $TRUSTSEAL_HOME (the remote forms are in
test_key_rotation.py): the inventory as text and JSON, an officer-only rotation run directly, a ledger
rotation as break-glass (no approval, an `approval.break_glass` event), refusals with their code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from api.context import open_context
from api.settings import Settings
from store.models import Event

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    result = runner.invoke(app, ["init"], env={"TRUSTSEAL_HOME": str(path)})
    assert result.exit_code == 0, result.output
    return path


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TRUSTSEAL_HOME": str(home)})
    return result.exit_code, result.output


def test_keys_list(home: Path) -> None:
    code, out = _run(home, "keys", "list", "--json")
    assert code == 0, out
    rows = {row["key"]: row for row in json.loads(out)}
    assert rows["cn-root-sm2"]["kind"] == "ca" and rows["ledger.sm2"]["kind"] == "ledger"
    assert rows["trust-list.sm2"]["certificate"]["not_after"]
    code, out = _run(home, "keys", "list")
    assert code == 0 and any(line.startswith("ledger.sm2 ") and "until" in line for line in out.splitlines()), out


def test_keys_rotate_locally(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = _run(home, "keys", "rotate", "cn-370000-sm2.seal-maker")
    assert code == 0 and "rotated cn-370000-sm2.seal-maker: version 1 -> 2" in out, out
    code, out = _run(home, "keys", "rotate", "ledger.sm2")
    assert code == 0 and "break-glass" in out and "rotated ledger.sm2: version 1 -> 2" in out, out
    code, out = _run(home, "keys", "rotate", "nope.sm2")
    assert code == 1 and "key_not_found" in out, out
    code, out = _run(home, "keys", "rotate", "ledger.pii-hmac")
    assert code == 1 and "key_not_rotatable" in out, out
    monkeypatch.setenv("TRUSTSEAL_HOME", str(home))
    context = open_context(Settings.from_env())
    try:
        with context.db.session() as session:
            glass = session.scalars(select(Event).where(Event.type == "approval.break_glass")).all()
            maker = session.scalars(select(Event).where(Event.type == "seal_maker.rotated")).one()
        assert [(e.subject, e.payload["outcome"]) for e in glass] == [("ledger.sm2", "executed")]
        assert maker.actor is not None and maker.actor.startswith("cli:")
    finally:
        context.close()


def test_a_ca_key_rolls_over_locally_as_break_glass(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`trustseal keys rotate cn-530000-p256` on the home: the CA rolls over (an approved operation, so
    break-glass here) and `cn-530000-p256.ocsp` gets a new signer (an officer's alone)."""
    code, out = _run(home, "keys", "rotate", "cn-530000-p256")
    assert code == 0 and "break-glass" in out and "rotated cn-530000-p256: version 1 -> 2" in out, out
    code, out = _run(home, "keys", "rotate", "cn-530000-p256.ocsp")
    assert code == 0 and "rotated cn-530000-p256.ocsp: version 2 -> 3" in out, out
    old, new = home / "old.crl", home / "new.crl"
    assert _run(home, "ca", "crl", "cn-530000-p256", "-o", str(old))[0] == 0
    assert _run(home, "ca", "crl", "cn-530000-p256", "--scope", "k2", "-o", str(new))[0] == 0
    assert old.read_bytes() != new.read_bytes()
    code, out = _run(home, "ca", "crl", "cn-530000-p256", "--scope", "k9", "-o", str(new))
    assert code == 1 and "unknown_crl_scope" in out, out
    monkeypatch.setenv("TRUSTSEAL_HOME", str(home))
    context = open_context(Settings.from_env())
    try:
        with context.db.session() as session:
            rolled = session.scalars(select(Event).where(Event.type == "ca.rolled_over")).one()
            glass = session.scalars(
                select(Event).where(Event.type == "approval.break_glass", Event.subject == "cn-530000-p256")
            ).one()
        assert rolled.payload["ca"] == "cn-530000-p256" and rolled.actor is not None and rolled.actor.startswith("cli:")
        assert glass.payload["outcome"] == "executed"
        entry = context.ca.snapshot().get("cn-530000-p256")
        assert len(entry.generations) == 2 and entry.crl_scope == "k2"
    finally:
        context.close()
