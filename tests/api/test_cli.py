"""The `trustseal` CLI, locally on a fresh $TRUSTSEAL_HOME and remotely against a running service."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from asn1crypto import crl, pem, x509
from typer.testing import CliRunner

from api.auth import create_token
from api.cli import app
from api.context import Context
from tests.fixtures import ORG_SUBJECT, make_csr

runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`trustseal init` on an empty home (SQLite + local keystore with a generated demo passphrase)."""
    path = tmp_path_factory.mktemp("home")
    result = runner.invoke(app, ["init"], env={"TRUSTSEAL_HOME": str(path)})
    assert result.exit_code == 0, result.output
    for name in ("cn-root-sm2", "cn-370000-sm2", "cn-530000-sm2", "cn-root-p256", "cn-370000-p256", "cn-530000-p256"):
        assert f"created CA {name}" in result.output
    return path


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TRUSTSEAL_HOME": str(home)})
    return result.exit_code, result.output


def test_init_writes_demo_tokens_and_is_idempotent(home: Path) -> None:
    tokens = json.loads((home / "demo-tokens.json").read_text())
    assert set(tokens) == {"issuer", "verifier", "officer", "auditor", "admin"}
    assert all(t.startswith("ts_") for t in tokens.values())
    assert (home / "demo-tokens.json").stat().st_mode & 0o077 == 0
    assert (home / "demo-passphrase.txt").exists()
    code, out = _run(home, "init", "--if-needed")
    assert code == 0 and "is initialised" in out
    assert "documentation arc 1.3.6.1.4.1.32473" in out  # the demo says which OID arc it uses
    assert json.loads((home / "demo-tokens.json").read_text()) == tokens
    # the keystore holds no plaintext key material
    for file in (home / "keystore").rglob("*"):
        if file.is_file():
            assert b"PRIVATE KEY" not in file.read_bytes()


def test_local_issue_revoke_crl_certificate(home: Path, tmp_path: Path) -> None:
    code, out = _run(home, "ca", "list")
    assert code == 0 and "cn-370000-sm2" in out and "region=370000" in out
    csr_file = tmp_path / "req.csr"
    csr_file.write_bytes(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT))
    cert_file = tmp_path / "cert.pem"
    code, out = _run(home, "ca", "issue", "--csr", str(csr_file), "--profile", "org-seal", "--ca", "cn-370000-sm2",
                     "-o", str(cert_file))  # fmt: skip
    assert code == 0, out
    serial = re.search(r"issued ([0-9a-f]+)", out)
    assert serial is not None
    blocks = [der for _, _, der in pem.unarmor(cert_file.read_bytes(), multiple=True)]
    assert len(blocks) == 3 and format(x509.Certificate.load(blocks[0]).serial_number, "x") == serial.group(1)

    code, out = _run(home, "ca", "revoke", serial.group(1), "--reason", "keyCompromise")
    assert code == 0, out
    code, out = _run(home, "ca", "revoke", serial.group(1))
    assert code == 1 and "certificate_already_revoked" in out

    crl_file = tmp_path / "crl.der"
    assert _run(home, "ca", "crl", "cn-370000-sm2", "-o", str(crl_file))[0] == 0
    revoked = crl.CertificateList.load(crl_file.read_bytes())["tbs_cert_list"]["revoked_certificates"]
    assert int(serial.group(1), 16) in {e["user_certificate"].native for e in revoked}

    code, out = _run(home, "ca", "certificate", "cn-root-sm2")
    assert code == 0 and x509.Certificate.load(pem.unarmor(out.encode())[2]).self_signed == "maybe"


def test_local_errors_are_one_line_not_tracebacks(home: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(b"not a CSR")
    code, out = _run(home, "ca", "issue", "--csr", str(garbage), "--profile", "org-seal", "--ca", "cn-370000-sm2")
    assert code == 1 and "csr_malformed" in out and "Traceback" not in out
    assert _run(home, "ca", "crl", "cn-000000-sm2", "-o", str(tmp_path / "x"))[0] == 1
    code, out = _run(home, "ca", "certificate", "cn-000000-sm2")
    assert code == 1 and "unknown_ca" in out
    code, out = _run(home, "token", "create", "--role", "emperor", "--name", "x")
    assert code == 2 and "unknown role" in out


def test_local_issue_refuses_infrastructure_profiles(home: Path, tmp_path: Path) -> None:
    csr_file = tmp_path / "req.csr"
    csr_file.write_bytes(make_csr(tmp_path, algorithm="p256", subject="/CN=Delegated OCSP responder"))
    for profile in ("ocsp-signer", "tsa", "seal-maker", "trust-list-signer", "regional-ca"):
        code, out = _run(home, "ca", "issue", "--csr", str(csr_file), "--profile", profile, "--ca", "cn-370000-p256")
        assert code == 1 and "profile_not_for_csr" in out and "Traceback" not in out, out


def test_local_revoke_refuses_a_ca_certificate(home: Path) -> None:
    code, out = _run(home, "ca", "list")
    serial = re.search(r"cn-370000-sm2 .* serial=([0-9a-f]+)", out)
    assert code == 0 and serial is not None, out
    code, out = _run(home, "ca", "revoke", serial.group(1), "--reason", "keyCompromise")
    assert code == 1 and "ca_certificate_not_revocable" in out and "revoked" not in out.split(":", 1)[0], out


def test_token_create_prints_a_working_token(home: Path) -> None:
    code, out = _run(
        home, "token", "create", "--role", "issuer", "--name", "licence-system", "--seal", "demo-370000-sm2"
    )
    assert code == 0
    assert re.fullmatch(r"ts_[A-Za-z0-9_-]{40,}\n", out)


def test_token_revoke_disables_it_and_names_an_unknown_one(home: Path) -> None:
    code, token = _run(home, "token", "create", "--role", "verifier", "--name", "cli-revoked")
    assert code == 0
    code, out = _run(home, "token", "revoke", "cli-revoked")
    assert code == 0 and re.fullmatch(r"revoked token \d+ \(cli-revoked, verifier\)\n", out), out
    code, out = _run(home, "token", "revoke", "cli-revoked")
    assert code == 1 and out == "error: token_not_found: no enabled token named 'cli-revoked'\n", out
    code, out = _run(home, "events", "--type", "token.", "--subject", "cli-revoked", "--json")
    assert code == 0, out
    kinds = [event["type"] for event in json.loads(out)["events"]]
    assert kinds == ["token.revoked", "token.created"], out
    assert token.strip() not in out


def test_token_list_rotate_and_refusals_locally(home: Path) -> None:
    code, out = _run(home, "token", "list", "--json")
    assert code == 0, out
    demo = {row["name"]: row for row in json.loads(out) if row["name"].startswith("demo-")}
    assert set(demo) == {f"demo-{role}" for role in ("issuer", "verifier", "officer", "auditor", "admin")}
    assert all(row["expires_at"] is None and row["status"] == "active" for row in demo.values())  # a demo home
    assert "token_hash" not in out
    code, out = _run(home, "token", "create", "--role", "issuer", "--name", "cli-bad-seal", "--seal", "nosuchseal")
    assert code == 1 and out == "error: seal_not_found: no seal 'nosuchseal'\n", out
    code, old = _run(home, "token", "create", "--role", "issuer", "--name", "cli-rot", "--seal", "demo-370000-sm2")
    assert code == 0
    code, out = _run(home, "token", "create", "--role", "verifier", "--name", "cli-rot")
    assert code == 1 and out.startswith("error: token_name_taken: "), out
    code, out = _run(home, "token", "rotate", "cli-rot", "--expires-days", "10")
    assert code == 0, out
    new = out.strip().splitlines()[-1]
    assert re.fullmatch(r"ts_[A-Za-z0-9_-]{40,}", new) and new != old.strip()
    code, out = _run(home, "token", "list", "--json")
    rows = [row for row in json.loads(out) if row["name"] == "cli-rot"]
    assert [(r["status"], r["seal_ids"]) for r in rows] == [
        ("revoked", ["demo-370000-sm2"]),
        ("active", ["demo-370000-sm2"]),
    ]
    assert rows[0]["revoked_by"].startswith("cli:")
    code, out = _run(home, "token", "list", "--status", "revoked")
    assert code == 0 and re.search(rf"^\s*{rows[0]['id']}\s+cli-rot\s+issuer\s+revoked ", out, re.M), out
    code, out = _run(home, "token", "revoke", str(rows[1]["id"]))
    assert code == 0 and out == f"revoked token {rows[1]['id']} (cli-rot, issuer)\n"
    code, out = _run(home, "token", "rotate", str(rows[1]["id"]))
    assert code == 1 and out.startswith("error: token_already_revoked: "), out


def test_token_commands_remotely(context: Context, live_url: str, tmp_path: Path) -> None:
    from seal.demo import create_demo_seals

    create_demo_seals(context.seals, actor="test")
    admin = ["--url", live_url, "--token", create_token(context.db, "admin", "cli-token-admin")]
    code, secret = _run(tmp_path, "token", "create", "--role", "issuer", "--name", "cli-remote-issuer",
                        "--seal", "demo-530000-sm2", *admin)  # fmt: skip
    assert code == 0, secret
    code, out = _run(tmp_path, "token", "list", "--json", *admin)
    assert code == 0 and "cli-remote-issuer" in out and secret.strip() not in out
    # the holder rotates its own token (`me`), then an admin rotates it, then revokes it by name
    code, out = _run(tmp_path, "token", "rotate", "me", "--url", live_url, "--token", secret.strip())
    assert code == 0, out
    mine = out.strip().splitlines()[-1]
    code, out = _run(tmp_path, "token", "list", "--url", live_url, "--token", mine)
    assert code == 1 and "forbidden_role" in out
    code, out = _run(tmp_path, "token", "rotate", "me", "--url", live_url, "--token", secret.strip())
    assert code == 1 and "token_revoked" in out
    assert _run(tmp_path, "token", "rotate", "cli-remote-issuer", *admin)[0] == 0
    code, out = _run(tmp_path, "token", "revoke", "cli-remote-issuer", *admin)
    assert code == 0 and "(cli-remote-issuer, issuer)" in out
    code, out = _run(tmp_path, "token", "create", "--role", "issuer", "--name", "cli-x", "--seal", "nosuch", *admin)
    assert code == 1 and "seal_not_found" in out


def test_init_leaves_no_key_for_reconciliation(home: Path) -> None:
    """Every key init made went through the recording custody: `init` again finds none missing."""
    code, out = _run(home, "init", "--if-needed")
    assert code == 0 and "key event(s) the log was missing" not in out, out
    code, out = _run(home, "events", "--type", "key.created", "--json")
    assert code == 0
    created = {event["subject"] for event in json.loads(out)["events"]}
    assert {"cn-root-sm2", "cn-370000-sm2.ocsp", "seal.demo-370000-sm2", "ledger.pii-hmac"} <= created


def test_remote_mode_against_running_service(context: Context, live_url: str, tmp_path: Path) -> None:
    token = create_token(context.db, "officer", "cli-remote")
    csr_file = tmp_path / "req.csr"
    csr_file.write_bytes(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT))
    remote = ["--url", live_url, "--token", token]
    code, out = _run(tmp_path, "ca", "list", "--url", live_url)
    assert code == 0 and "cn-530000-p256" in out
    code, out = _run(tmp_path, "ca", "issue", "--csr", str(csr_file), "--profile", "org-seal", "--ca", "cn-370000-p256",
                     "-o", str(tmp_path / "c.pem"), *remote)  # fmt: skip
    assert code == 0, out
    serial = out.split()[1]
    assert context.ca.get_certificate(serial).issuer_ca == "cn-370000-p256"
    assert _run(tmp_path, "ca", "revoke", serial, "--reason", "superseded", *remote)[0] == 0
    assert context.ca.get_certificate(serial).status == "revoked"
    code, out = _run(tmp_path, "ca", "revoke", serial, "--url", live_url, "--token", "ts_wrong")
    assert code == 1 and "invalid_token" in out
    assert _run(tmp_path, "ca", "crl", "cn-370000-p256", "-o", str(tmp_path / "r.der"), "--url", live_url)[0] == 0
    assert crl.CertificateList.load((tmp_path / "r.der").read_bytes())["tbs_cert_list"]["issuer"] == (
        x509.Certificate.load(context.ca.ca_certificate("cn-370000-p256").dump()).subject
    )


def test_init_makes_demo_seals_and_cli_seals_pdfs(home: Path, tmp_path: Path) -> None:
    from tests.fixtures import make_pdf

    code, out = _run(home, "seal", "list")
    assert code == 0
    for seal_id in ("demo-370000-sm2", "demo-530000-sm2", "demo-370000-p256", "demo-530000-p256"):
        assert seal_id in out and "active" in out
    tokens = json.loads((home / "demo-tokens.json").read_text())
    from api.auth import authenticate
    from api.context import open_context
    from api.settings import Settings

    context = open_context(Settings.from_env(home))
    try:
        issuer = authenticate(context.db, tokens["issuer"])
        assert issuer is not None and "demo-370000-sm2" in issuer.seal_ids
    finally:
        context.close()

    docs = []
    for n in range(3):
        doc = tmp_path / f"licence-{n}.pdf"
        doc.write_bytes(make_pdf([f"Licence {n}", "Jinan Market Regulation Bureau"]))
        docs.append(str(doc))
    code, out = _run(home, "sign", *docs, "--seal", "demo-370000-sm2", "-o", str(tmp_path / "out"), "--level", "B-LT")
    assert code == 0 and "sealed 3 of 3" in out, out
    for n in range(3):
        sealed = (tmp_path / "out" / f"licence-{n}.pdf").read_bytes()
        assert sealed.startswith(b"%PDF") and b"/DSS" in sealed
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf")
    code, out = _run(home, "sign", str(bad), "--seal", "demo-370000-sm2", "-o", str(tmp_path / "bad-out.pdf"))
    assert code == 1 and "pdf_malformed" in out and not (tmp_path / "bad-out.pdf").exists()

    code, out = _run(home, "seal", "create", "--name", "测试专用章", "--uscc", "11370000MB00000015", "--ca",
                     "cn-370000-sm2", "--id", "cli-seal", "--shape", "square")  # fmt: skip
    assert code == 0 and "cli-seal" in out, out
    assert _run(home, "seal", "image", "cli-seal", "-o", str(tmp_path / "s.png"))[0] == 0
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
    assert _run(home, "seal", "revoke", "cli-seal", "--reason", "test")[0] == 0
    code, out = _run(home, "seal", "resume", "cli-seal")
    assert code == 1 and "invalid_seal_transition" in out


def test_local_withdraw(home: Path) -> None:
    code, out = _run(home, "ca", "withdraw", "cn-530000-p256", "--reason", "caCompromise")
    assert code == 0 and re.search(r"withdrew cn-530000-p256 from \S+, certificate [0-9a-f]+ revoked", out), out
    code, out = _run(home, "ca", "withdraw", "cn-530000-p256", "--reason", "caCompromise")
    assert code == 1 and "ca_already_withdrawn" in out
    code, out = _run(home, "ca", "withdraw", "cn-530000-sm2", "--reason", "x", "--invalidity-date", "soon")
    assert code == 2
    code, out = _run(home, "ca", "withdraw", "cn-000000-sm2", "--reason", "caCompromise")
    assert code == 1 and "unknown_ca" in out


def test_remote_withdraw(context: Context, live_url: str, tmp_path: Path) -> None:
    token = create_token(context.db, "officer", "cli-withdraw")
    code, out = _run(tmp_path, "ca", "withdraw", "cn-530000-sm2", "--reason", "superseded",
                     "--invalidity-date", "2026-01-01T00:00:00+08:00", "--url", live_url, "--token", token)  # fmt: skip
    assert code == 0 and "withdrew cn-530000-sm2 from 2025-12-31T16:00:00+00:00" in out, out
    assert context.ca.ca_status("cn-530000-sm2") == "withdrawn"


def test_cli_seals_active_content_only_when_asked(home: Path, tmp_path: Path) -> None:
    from tests.pdf_builders import ACTIVE

    document = tmp_path / "scripted.pdf"
    document.write_bytes(ACTIVE["open-action-javascript"][0]())
    target = tmp_path / "scripted-sealed.pdf"
    code, out = _run(home, "sign", str(document), "--seal", "demo-370000-sm2", "-o", str(target))
    assert code == 1 and "pdf_active_content" in out and "/OpenAction (JavaScript)" in out
    assert not target.exists()
    code, out = _run(home, "sign", str(document), "--seal", "demo-370000-sm2", "-o", str(target),
                     "--allow-active-content")  # fmt: skip
    assert code == 0 and target.read_bytes().startswith(b"%PDF"), out


def test_init_makes_the_ledger_key_and_its_certificate_once(home: Path) -> None:
    """`trustseal init` provisions `ledger.sm2` and its certificate (not the first request); again with
    --if-needed it finds the same key, and `ledger verify --pin` trusts it against the local export."""
    code, out = _run(home, "init", "--if-needed")
    assert code == 0, out
    found = re.findall(r"ledger key ledger\.sm2@(\d+) key_id ([0-9a-f]{64})", out)
    assert found and found[0][0] == "1"
    stored = json.loads((home / "keystore" / "ledger.sm2.key.json").read_text())
    assert [v["version"] for v in stored["versions"]] == [1]  # one key, made by the first init
    from asn1crypto import keys as asn1_keys

    from gm.sm3 import sm3

    spki = asn1_keys.PublicKeyInfo.load(base64.b64decode(stored["versions"][0]["public_key"]))
    assert sm3(spki.dump()).hex() == found[0][1]
    code, out = _run(home, "ledger", "export", "-o", str(home / "export.jsonl"))
    assert code == 0, out
    code, out = _run(home, "ledger", "verify", "--export", str(home / "export.jsonl"), "--pin", found[0][1])
    assert code == 0 and out.startswith("VERIFIED"), out
    assert (home / "ledger-state.json").exists()  # the default state: under $TRUSTSEAL_HOME


def test_init_makes_a_private_demo_home_that_serves_in_demo_mode(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run` unchanged (init, then serve): a demo home, private, served with a loud warning; and
    the same home refused where production is declared."""
    from api import home as home_at_rest
    from api.settings import Settings

    settings = Settings.from_env(home)
    assert home_at_rest.exposed(settings) == [] and settings.demo_marker_file.exists()
    assert (home / "trustseal.db").stat().st_mode & 0o777 == 0o600
    binary = str(Path(sys.executable).parent / "trustseal")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTSEAL_")} | {"TRUSTSEAL_HOME": str(home)}

    def no_server(*_: object, **__: object) -> None:
        raise AssertionError("serve went on to start the server")

    monkeypatch.setattr("uvicorn.run", no_server)  # for the refusals, in this process
    refused = runner.invoke(app, ["serve"], env={"TRUSTSEAL_HOME": str(home), "TRUSTSEAL_ENV": "production"})
    assert refused.exit_code == 1 and "is a demo home" in refused.output, refused.output
    # a home as older versions left it: a 0644 database, no demo marker; `make run` runs init --if-needed first
    (home / "trustseal.db").chmod(0o644)
    settings.demo_marker_file.unlink()
    code, out = _run(home, "serve")
    assert code == 1 and f"chmod 600 {home / 'trustseal.db'}" in out, out
    code, out = _run(home, "init", "--if-needed")
    assert code == 0 and f"tightened {home / 'trustseal.db'} (was 0644" in out, out
    assert settings.demo_marker_file.exists() and home_at_rest.exposed(settings) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = home.parent / f"serve-{port}.log"
    with open(log, "wb") as sink:
        server = subprocess.Popen(
            [binary, "serve", "--port", str(port)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(30)
    assert "WARNING: DEMO MODE" in log.read_text()
