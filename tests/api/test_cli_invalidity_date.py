"""`trustseal ca revoke --invalidity-date` (issue 12): the date reaches the CRL the CLI writes out; an
unreadable one exits 2 and a future one is refused, the certificate staying good."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl
from typer.testing import CliRunner

from api.cli import app
from tests.fixtures import ORG_SUBJECT, make_csr

runner = CliRunner()


def _run(home: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"TRUSTSEAL_HOME": str(home)})
    return result.exit_code, result.output


def _issue(home: Path, tmp_path: Path, name: str) -> str:
    csr_file = tmp_path / f"{name}.csr"
    csr_file.write_bytes(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT))
    code, out = _run(home, "ca", "issue", "--csr", str(csr_file), "--profile", "org-seal", "--ca", "cn-370000-p256",
                     "-o", str(tmp_path / f"{name}.pem"))  # fmt: skip
    assert code == 0, out
    found = re.search(r"issued ([0-9a-f]+)", out)
    assert found is not None
    return found.group(1)


def test_cli_revocation_with_an_invalidity_date(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _run(home, "init")[0] == 0
    serial = _issue(home, tmp_path, "a")
    code, out = _run(home, "ca", "revoke", serial, "--reason", "keyCompromise", "--invalidity-date", "soon")
    assert code == 2 and "--invalidity-date" in out
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    code, out = _run(home, "ca", "revoke", serial, "--invalidity-date", future)
    assert code == 1 and "invalid_invalidity_date" in out

    code, out = _run(home, "ca", "revoke", serial, "--reason", "keyCompromise",
                     "--invalidity-date", "2026-03-04T05:06:07+08:00")  # fmt: skip
    assert code == 0, out
    crl_file = tmp_path / "crl.der"
    assert _run(home, "ca", "crl", "cn-370000-p256", "-o", str(crl_file))[0] == 0
    entries = crl.CertificateList.load(crl_file.read_bytes())["tbs_cert_list"]["revoked_certificates"]
    (entry,) = [e for e in entries if e["user_certificate"].native == int(serial, 16)]
    assert entry.invalidity_date_value.native == datetime(2026, 3, 3, 21, 6, 7, tzinfo=UTC)
    assert entry.crl_reason_value.native == "key_compromise"
