"""Approvals from the command line: `trustseal init` installs and records the default policy; the local CLI
is break-glass (works without approval, each dangerous operation recorded with `break_glass: true` and
actor `cli:<os user>`); remotely the CLI shows a pending approval and `trustseal approvals` decides it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.approvals import Approvals
from api.auth import authenticate, create_token
from api.cli import app
from api.context import Context, open_context
from api.operations import cli_actor
from api.settings import Settings
from gm.sm3 import sm3
from policies.approvals import default_policy_text, parse_policy
from seal.service import SealRequest
from store.models import Event

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("home")
    result = runner.invoke(app, ["init"], env={"TRUSTSEAL_HOME": str(path)})
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def local_context(home: Path) -> Iterator[Context]:
    context = open_context(Settings.from_env(home))
    yield context
    context.close()


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TRUSTSEAL_HOME": str(home)})
    return result.exit_code, result.output


def _events(context: Context, type_: str) -> list[Event]:
    with context.db.session() as session:
        return list(session.scalars(select(Event).where(Event.type == type_).order_by(Event.id)))


def test_init_installs_the_default_policy_and_records_it_once(home: Path, local_context: Context) -> None:
    assert (home / "approvals.yaml").read_text() == default_policy_text()
    assert local_context.approvals.required("ca.withdraw") == 2
    assert _run(home, "init", "--if-needed")[0] == 0
    loaded = _events(local_context, "approvals.policy_loaded")
    assert len(loaded) == 1 and loaded[0].actor == "init"
    assert loaded[0].payload["sm3"] == sm3(default_policy_text().encode()).hex()


def _break_glass(context: Context, operation: str) -> list[dict[str, Any]]:
    return [
        {"actor": e.actor, **e.payload}
        for e in _events(context, "approval.break_glass")
        if e.payload["operation"] == operation
    ]


def test_local_cli_is_break_glass_and_recorded(home: Path, local_context: Context) -> None:
    actor = cli_actor()
    before = len(_events(local_context, "approval.break_glass"))
    code, out = _run(home, "token", "create", "--role", "officer", "--name", "bg-officer")
    assert code == 0, out
    token = out.strip().splitlines()[-1]
    who = authenticate(local_context.db, token)
    assert who is not None and who.role == "officer" and who.name == "bg-officer"
    [event] = _break_glass(local_context, "token.create.officer")
    assert event["actor"] == actor and event["break_glass"] is True and event["outcome"] == "executed"
    assert token not in repr(event)

    code, out = _run(home, "ca", "withdraw", "cn-530000-p256", "--reason", "caCompromise")
    assert code == 0 and "withdrew cn-530000-p256" in out, out
    [withdrawn] = _events(local_context, "ca.withdrawn")
    assert withdrawn.actor == actor  # the operation's own event names the OS user too
    code, out = _run(home, "ca", "withdraw", "cn-530000-p256", "--reason", "caCompromise")
    assert code == 1 and "ca_already_withdrawn" in out
    outcomes = [(e["outcome"], e.get("code")) for e in _break_glass(local_context, "ca.withdraw")]
    assert outcomes == [("executed", None), ("failed", "ca_already_withdrawn")]

    code, out = _run(home, "seal", "create", "--name", "应急测试章", "--uscc", "11370000MB00000015", "--ca",
                     "cn-370000-sm2", "--id", "bg-seal")  # fmt: skip
    assert code == 0 and "bg-seal" in out, out
    assert _run(home, "seal", "suspend", "bg-seal")[0] == 0  # one officer's call: no break-glass record
    assert _run(home, "seal", "revoke", "bg-seal", "--reason", "test")[0] == 0
    assert [e["outcome"] for e in _break_glass(local_context, "seal.create")] == ["executed"]
    assert [e["outcome"] for e in _break_glass(local_context, "seal.revoke")] == ["executed"]
    recorded = _events(local_context, "approval.break_glass")[before:]
    assert [e.payload["operation"] for e in recorded] == [
        "token.create.officer",
        "ca.withdraw",
        "ca.withdraw",
        "seal.create",
        "seal.revoke",
    ]
    assert _run(home, "token", "create", "--role", "issuer", "--name", "bg-issuer")[0] == 0  # no approved operation
    assert len(_events(local_context, "approval.break_glass")) == before + 5


def test_local_rotation_of_an_officer_token_is_break_glass(home: Path, local_context: Context) -> None:
    """Over the API only its holder rotates an officer token (`rotation_needs_holder`); locally the
    operator gets the new secret, so it is break-glass and says so."""
    code, out = _run(home, "token", "create", "--role", "officer", "--name", "bg-rotated")
    assert code == 0, out
    before = _break_glass(local_context, "token.rotate.officer")
    code, out = _run(home, "token", "rotate", "bg-rotated")
    assert code == 0, out
    after = _break_glass(local_context, "token.rotate.officer")
    assert len(after) == len(before) + 1
    assert after[-1]["actor"] == cli_actor() and after[-1]["break_glass"] is True
    code, out = _run(home, "token", "create", "--role", "verifier", "--name", "plain-rotated")
    assert code == 0 and _run(home, "token", "rotate", "plain-rotated")[0] == 0
    assert _break_glass(local_context, "token.rotate.verifier") == []  # no privilege handed out


def test_local_ca_create_and_cross_certify_are_break_glass(home: Path, local_context: Context, tmp_path: Path) -> None:
    from tests.fixtures import openssl

    code, out = _run(home, "ca", "create", "bg-440000-p256", "--parent", "cn-root-p256", "--region", "440000",
                     "--algorithm", "p256")  # fmt: skip
    assert code == 0 and "created CA bg-440000-p256 under cn-root-p256" in out, out
    assert local_context.ca.ca_status("bg-440000-p256") == "active"
    code, out = _run(home, "ca", "create", "BAD", "--parent", "cn-root-p256", "--region", "440000")
    assert code == 1 and "invalid_ca_name" in out
    assert [(e["outcome"], e.get("code")) for e in _break_glass(local_context, "ca.create")] == [
        ("executed", None),
        ("failed", "invalid_ca_name"),
    ]

    key = tmp_path / "foreign.key"
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    foreign = tmp_path / "foreign.pem"
    openssl("req", "-x509", "-new", "-key", str(key), "-sha256", "-days", "30", "-subj", "/C=MO/O=Other/CN=Other Root",
            "-addext", "basicConstraints=critical,CA:TRUE", "-out", str(foreign))  # fmt: skip
    code, out = _run(home, "ca", "cross-certify", "cn-root-p256", "--certificate", str(foreign), "-o",
                     str(tmp_path / "cross.pem"))  # fmt: skip
    assert code == 0 and "cross-certified under cn-root-p256" in out, out
    assert (tmp_path / "cross.pem").read_text().startswith("-----BEGIN CERTIFICATE-----")
    [event] = _break_glass(local_context, "ca.cross_certify")
    assert event["outcome"] == "executed" and event["actor"] == cli_actor()


def test_a_broken_policy_stops_the_service_but_not_break_glass(home: Path, local_context: Context) -> None:
    from api.app import create_app
    from policies.approvals import PolicyError

    policy = home / "approvals.yaml"
    kept = policy.read_text()
    policy.write_text(kept.replace("ca.withdraw: 2", "ca.withdrew: 2"))  # a typo
    service = open_context(Settings.from_env(home))
    try:
        with pytest.raises(PolicyError, match=r"ca\.withdrew"):
            create_app(service)
        code, out = _run(home, "token", "create", "--role", "admin", "--name", "bg-admin")
        assert code == 0 and out.strip().splitlines()[-1].startswith("ts_"), out
        code, out = _run(home, "approvals", "list")
        assert code == 1 and "unknown operation 'ca.withdrew'" in out
    finally:
        policy.write_text(kept)
        service.close()
    assert [e["outcome"] for e in _break_glass(local_context, "token.create.admin")] == ["executed"]


def test_remote_cli_waits_for_approval_and_approves(context: Context, live_url: str, tmp_path: Path) -> None:
    context.approvals = Approvals(context.db, parse_policy(default_policy_text(), "test"))
    context.seals.create(
        SealRequest(
            name="远程测试章",
            organisation_name="Remote Test",
            organisation_uscc="11370000MB00000015",
            ca="cn-370000-sm2",
            seal_id="remote-seal",
        )
    )
    first = create_token(context.db, "officer", "remote-officer-1")
    second = create_token(context.db, "officer", "remote-officer-2")
    code, out = _run(tmp_path, "seal", "revoke", "remote-seal", "--url", live_url, "--token", first)
    assert code == 0 and "pending: seal.revoke needs 2 officers, has remote-officer-1" in out, out
    approval_id = re.search(r"approval (\S+) pending", out)
    assert approval_id is not None
    assert context.seals.get("remote-seal").status == "active"

    code, out = _run(tmp_path, "approvals", "list", "--status", "pending", "--url", live_url, "--token", second)
    assert code == 0 and approval_id.group(1) in out
    code, out = _run(tmp_path, "approvals", "approve", approval_id.group(1), "--url", live_url, "--token", first)
    assert code == 1 and "approval_own_request" in out
    code, out = _run(tmp_path, "approvals", "approve", approval_id.group(1), "--url", live_url, "--token", second)
    assert code == 0 and "executed" in out and '"status": "revoked"' in out, out
    assert context.seals.get("remote-seal").status == "revoked"

    admin = create_token(context.db, "admin", "remote-admin")
    code, out = _run(tmp_path, "token", "create", "--role", "admin", "--name", "remote-admin-2", "--url", live_url,
                     "--token", admin)  # fmt: skip
    assert code == 0 and "pending: token.create.admin" in out, out
    new = out.strip().splitlines()[-1]
    assert new.startswith("ts_") and authenticate(context.db, new) is None  # works once approved
    approval_id = re.search(r"approval (\S+) pending", out)
    assert approval_id is not None
    code, out = _run(tmp_path, "approvals", "reject", approval_id.group(1), "--reason", "no", "--url", live_url,
                     "--token", second)  # fmt: skip
    assert code == 0 and "rejected" in out
    assert authenticate(context.db, new) is None
